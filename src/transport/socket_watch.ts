/**
 * Noticing that a listening Unix socket file is gone: a `/tmp` cleaner or an operator may
 * remove it (or its directory) while the server still listens on the unlinked inode, and
 * then every new connection fails while the process looks healthy.
 */

/** The identity of a socket file: its inode, or undefined when the path does not exist. */
export async function socketInode(path: string): Promise<number | undefined> {
  try {
    const info = await Deno.lstat(path);
    return info.isSocket ? info.ino ?? undefined : undefined;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

export interface SocketWatch {
  stop(): void;
}

/**
 * Checks every `intervalMs` that `path` is still the socket with inode `inode()`; when it is
 * missing or another file, awaits `onLost()` (which recreates it, and must not throw) before
 * checking again.
 */
export function watchSocket(
  path: string,
  intervalMs: number,
  inode: () => number | undefined,
  onLost: () => Promise<void>,
): SocketWatch {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let stopped = false;
  const check = async () => {
    // A path that cannot be examined counts as lost: onLost reports why it cannot recreate it.
    const current = await socketInode(path).catch(() => undefined);
    if (!stopped && (current === undefined || current !== inode())) await onLost();
    if (!stopped) timer = setTimeout(check, intervalMs);
  };
  timer = setTimeout(check, intervalMs);
  return {
    stop() {
      stopped = true;
      clearTimeout(timer);
    },
  };
}
