/**
 * The config watcher reads a file only once it is stable: a writer that truncates it and
 * writes it in parts (as `echo >` of a big file does) is never read half-way.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { readWhenStable, watchConfig } from "../../src/config/watch.ts";

const delay = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const utf8 = new TextEncoder();

/** Truncates `path` and writes `text` in `parts` pieces with `pauseMs` between them. */
async function writeInParts(path: string, text: string, parts: number, pauseMs: number): Promise<void> {
  const file = await Deno.open(path, { write: true, truncate: true, create: true });
  try {
    const bytes = utf8.encode(text);
    const size = Math.ceil(bytes.length / parts);
    for (let offset = 0; offset < bytes.length; offset += size) {
      await delay(pauseMs);
      let chunk = bytes.subarray(offset, offset + size);
      while (chunk.length > 0) chunk = chunk.subarray(await file.write(chunk));
    }
  } finally {
    file.close();
  }
}

Deno.test("readWhenStable waits out a writer that pauses between parts", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "c.yaml");
  const text = "routes:\n" + "  - name: r\n".repeat(2000);
  try {
    await Deno.writeTextFile(path, "routes: []\n");
    const writing = writeInParts(path, text, 5, 60);
    await delay(10);
    const bytes = await readWhenStable(path, { checks: 3, intervalMs: 100 });
    await writing;
    assert.equal(new TextDecoder().decode(bytes), text);
    assert.equal(await readWhenStable(join(dir, "missing.yaml"), { checks: 2, intervalMs: 10 }), undefined);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("the watcher reloads once, with the complete file, after a truncate-and-write in parts", async () => {
  const dir = await Deno.makeTempDir();
  const path = join(dir, "c.yaml");
  const final = "# v2\nroutes:\n" + "  - name: r\n".repeat(3000);
  await Deno.writeTextFile(path, "routes: []\n");
  const seen: string[] = [];
  const watcher = await watchConfig(path, (text) => {
    seen.push(text);
    return Promise.resolve();
  });
  try {
    // Pauses longer than the old 150 ms debounce, shorter than the stability window.
    await writeInParts(path, final, 4, 200);
    const deadline = Date.now() + 5000;
    while (seen.length === 0 && Date.now() < deadline) await delay(50);
    await delay(800); // room for a second, wrong reload to show up
    assert.deepEqual(seen.map((t) => t.length), [final.length], "one reload, of the whole file");
    assert.equal(seen[0], final);
  } finally {
    watcher.close();
    await Deno.remove(dir, { recursive: true });
  }
});
