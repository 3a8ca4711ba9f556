/**
 * Watches the config file for changes and asks for a reload. The file's directory is
 * watched, not the file, because editors and Kubernetes ConfigMaps replace files by
 * renaming (a ConfigMap swaps a `..data` symlink), which a watch on the old file misses.
 * Bursts of events are coalesced, and a reload happens only when the content changed.
 */
import { basename, dirname } from "node:path";
import { getLogger } from "@logtape/logtape";

const log = getLogger(["tollgate", "config"]);
const DEBOUNCE_MS = 150;

export interface ConfigWatcher {
  close(): void;
}

async function digest(path: string): Promise<string | undefined> {
  try {
    const bytes = await Deno.readFile(path);
    return Array.from(new Uint8Array(await crypto.subtle.digest("SHA-256", bytes)), (b) => b.toString(16))
      .join("");
  } catch {
    return undefined; // mid-replacement or deleted: the next event will tell
  }
}

/**
 * Calls `reload` after the file at `path` changes. `reload` runs one at a time; a change
 * during a reload triggers another once it finishes.
 */
export async function watchConfig(path: string, reload: () => Promise<void>): Promise<ConfigWatcher> {
  const watcher = Deno.watchFs(dirname(path), { recursive: false });
  const name = basename(path);
  let last = await digest(path);
  let timer: ReturnType<typeof setTimeout> | undefined;
  let running: Promise<void> = Promise.resolve();

  const check = () => {
    running = running.then(async () => {
      const current = await digest(path);
      if (current === undefined || current === last) return;
      last = current;
      await reload();
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
      clearTimeout(timer);
      watcher.close();
    },
  };
}
