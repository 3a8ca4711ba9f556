/**
 * Watches the config file for changes and asks for a reload. The file's directory is
 * watched, not the file, because editors and Kubernetes ConfigMaps replace files by
 * renaming (a ConfigMap swaps a `..data` symlink), which a watch on the old file misses.
 * Bursts of events are coalesced; the file is read only once it is stable (a writer that
 * truncates and writes in parts, as `echo >` does, must not be read half-way), and a reload
 * happens only when the content changed.
 */
import { basename, dirname } from "node:path";
import { getLogger } from "@logtape/logtape";

const log = getLogger(["tollgate", "config"]);
const DEBOUNCE_MS = 150;

/** How long the file must stay unchanged before it is read. */
export interface Stability {
  /** Successive identical looks at the file's size, mtime, ctime and inode. */
  readonly checks: number;
  readonly intervalMs: number;
}

/** Unchanged over 300 ms (after the 150 ms debounce): longer than the pauses of a writer in parts. */
export const DEFAULT_STABILITY: Stability = { checks: 3, intervalMs: 150 };

export interface ConfigWatcher {
  close(): void;
}

/** Size, times and inode: what changes when the file is written or replaced. */
async function stamp(path: string): Promise<string | undefined> {
  try {
    const info = await Deno.stat(path);
    return `${info.size}:${info.mtime?.getTime()}:${info.ctime?.getTime()}:${info.ino}`;
  } catch {
    return undefined; // mid-replacement or deleted: the next event will tell
  }
}

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The file's bytes once it is stable: the same stamp at `checks` looks `intervalMs` apart,
 * and still the same after reading. Undefined if it disappears or `stopped()` turns true.
 */
export async function readWhenStable(
  path: string,
  stability: Stability,
  stopped: () => boolean = () => false,
): Promise<Uint8Array<ArrayBuffer> | undefined> {
  let previous = await stamp(path);
  let same = 1;
  while (previous !== undefined && !stopped()) {
    if (same >= stability.checks) {
      const bytes = await Deno.readFile(path).catch(() => undefined);
      const after = await stamp(path);
      if (bytes !== undefined && after === previous) return bytes;
      previous = after; // written to while we read: wait for it again
      same = 1;
      continue;
    }
    await delay(stability.intervalMs);
    const current = await stamp(path);
    if (current === previous) same++;
    else [previous, same] = [current, 1];
  }
  return undefined;
}

async function digest(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)), (b) => b.toString(16))
    .join("");
}

/**
 * Calls `reload` with the file's text after the file at `path` changes and settles.
 * `reload` runs one at a time; a change during a reload triggers another once it finishes.
 */
export async function watchConfig(
  path: string,
  reload: (text: string) => Promise<void>,
  stability: Stability = DEFAULT_STABILITY,
): Promise<ConfigWatcher> {
  const watcher = Deno.watchFs(dirname(path), { recursive: false });
  const name = basename(path);
  const initial = await Deno.readFile(path).catch(() => undefined);
  let last = initial && await digest(initial);
  let closed = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> = Promise.resolve();

  const check = () => {
    running = running.then(async () => {
      const bytes = await readWhenStable(path, stability, () => closed);
      if (bytes === undefined) return;
      const current = await digest(bytes);
      if (current === last) return;
      last = current;
      await reload(new TextDecoder().decode(bytes));
    }).catch((error) => log.error("config reload failed: {error}", { error: String(error) }));
  };

  (async () => {
    for await (const event of watcher) {
      // A ConfigMap update touches `..data`, not the file itself; any other file is noise.
      if (!event.paths.some((p) => basename(p) === name || basename(p).startsWith(".."))) continue;
      clearTimeout(timer);
      timer = setTimeout(check, DEBOUNCE_MS);
    }
  })().catch((error) => log.error("config watch stopped: {error}", { error: String(error) }));

  log.info("watching {path} for changes", { path });
  return {
    close() {
      closed = true;
      clearTimeout(timer);
      watcher.close();
    },
  };
}
