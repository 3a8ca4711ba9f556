/**
 * Unix socket files: taking over a stale one safely, refusing to steal a live one, and
 * restricting who may connect.
 */
import { dirname } from "node:path";

/** Thrown when a socket path cannot be used; the message says why and what to do. */
export class SocketInUseError extends Error {
  override name = "SocketInUseError";
}

async function isLive(path: string): Promise<boolean> {
  try {
    const conn = await Deno.connect({ transport: "unix", path });
    conn.close();
    return true;
  } catch (error) {
    if (error instanceof Deno.errors.ConnectionRefused || error instanceof Deno.errors.NotFound) return false;
    throw error;
  }
}

/**
 * Refuses to go on when another live process serves on `path` (or the path is not a
 * socket), after creating its directory (mode 0750) if missing. Leaves a stale socket for
 * whoever binds it. The engine checks every socket it will use this way before starting
 * anything, so that a second instance never touches a running one's sockets.
 */
export async function refuseLiveSocket(path: string): Promise<void> {
  await Deno.mkdir(dirname(path), { recursive: true, mode: 0o750 });
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return;
    throw error;
  }
  if (!info.isSocket) {
    throw new SocketInUseError(`${path} exists and is not a socket; refusing to replace it`);
  }
  if (await isLive(path)) {
    throw new SocketInUseError(`${path} is in use by another live process (is another Tollgate running?)`);
  }
}

/**
 * Makes `path` ready to bind: creates its directory (mode 0750) if missing, removes a stale
 * socket left by a crashed process, and refuses when another live process serves on it or
 * when the path is not a socket at all.
 */
export async function prepareSocketPath(path: string): Promise<void> {
  await refuseLiveSocket(path);
  await removeSocketFile(path);
}

/** Removes a socket file we created; a missing file is fine. */
export async function removeSocketFile(path: string): Promise<void> {
  await Deno.remove(path).catch((error) => {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  });
}
