/**
 * The engine process: its socket (permissions, stale files, ownership), startup errors and
 * graceful shutdown, all under the production permission flags.
 */
import assert from "node:assert/strict";
import { EngineProcess } from "../support/engine_process.ts";
import { ExtProcClient, mutationLines, requestHeaders } from "../support/extproc_client.ts";

const slowRoute = {
  routes: [{ name: "slow", policies: [{ name: "slow", version: "v1", parameters: { delayMs: 700 } }] }],
};

/** A socket file whose owner is gone, as a crashed engine leaves it. */
async function deadSocket(path: string): Promise<void> {
  const bind = `import socket; socket.socket(socket.AF_UNIX).bind(${JSON.stringify(path)})`;
  assert.ok((await new Deno.Command("python3", { args: ["-c", bind] }).output()).success);
  assert.ok((await Deno.lstat(path)).isSocket);
}

Deno.test("the ext_proc socket is created 0660 and removed on shutdown", async () => {
  const engine = await EngineProcess.start({ config: {} });
  const socket = engine.layout.extprocSocket!;
  assert.equal((await Deno.stat(socket)).mode! & 0o777, 0o660);
  assert.equal(await engine.stop(), 0);
  await assert.rejects(Deno.stat(socket), Deno.errors.NotFound);
});

Deno.test("a stale socket left by a dead process is replaced", async () => {
  const fresh = await EngineProcess.layout();
  await Deno.mkdir(fresh.layout.runtimeDirs[0], { recursive: true });
  await deadSocket(fresh.layout.extprocSocket!);
  const engine = await EngineProcess.start({ config: {}, layout: fresh });
  try {
    assert.ok(engine.lines.some((line) => line.includes("ext_proc listening")));
  } finally {
    assert.equal(await engine.stop(), 0);
  }
});

Deno.test("a second engine refuses a socket owned by a live one, and a path that is not a socket", async () => {
  const first = await EngineProcess.start({ config: {} });
  try {
    const second = await EngineProcess.start({ config: {}, layout: first, noWait: true });
    assert.equal(await second.exited(), 1);
    assert.match(second.lines.join("\n"), /extproc\.sock is in use by another live process/);
    const client = new ExtProcClient(`unix:${first.layout.extprocSocket}`);
    const stream = client.open();
    assert.equal(
      (await stream.exchange(requestHeaders("none", "/still-served"))).response.case,
      "requestHeaders",
    );
    await stream.finish();
    client.close();
  } finally {
    assert.equal(await first.stop(), 0);
  }
  const fresh = await EngineProcess.layout();
  const { dir, layout } = fresh;
  await Deno.mkdir(layout.runtimeDirs[0], { recursive: true });
  await Deno.writeTextFile(layout.extprocSocket!, "not a socket");
  const blocked = await EngineProcess.start({ config: {}, layout: fresh, noWait: true });
  assert.equal(await blocked.exited(), 1, blocked.lines.join("\n"));
  assert.match(blocked.lines.join("\n"), /exists and is not a socket; refusing to replace it/);
  assert.equal(await Deno.readTextFile(layout.extprocSocket!), "not a socket", "the file was left alone");
  await Deno.remove(dir, { recursive: true });
});

Deno.test("an invalid config stops startup with exit code 2 naming the file, the path and the reason", async () => {
  const engine = await EngineProcess.start({
    config: { routes: [{ name: "r", policies: [{ name: "set-headers", version: "1" }] }] },
    noWait: true,
  });
  assert.equal(await engine.exited(), 2);
  const output = engine.lines.join("\n");
  assert.match(
    output,
    new RegExp(
      `${
        engine.configFile.replaceAll("/", "\\/")
      }:\\d+:\\d+: routes\\[0\\]\\.policies\\[0\\]\\.version: "1" is not a version: versions are written vMAJOR`,
    ),
  );
  await Deno.remove(engine.dir, { recursive: true });
});

Deno.test("SIGTERM lets an in-flight stream finish, then exits 0 and removes the socket", async () => {
  const engine = await EngineProcess.start({ config: { ...slowRoute, shutdown: { gracePeriod: "5s" } } });
  const client = new ExtProcClient(`unix:${engine.layout.extprocSocket}`);
  try {
    const stream = client.open();
    stream.send(requestHeaders("slow", "/in-flight"));
    await new Promise((resolve) => setTimeout(resolve, 100));
    const exit = engine.stop("SIGTERM");
    const response = await stream.next(5000);
    assert.deepEqual(mutationLines(response), ["x-slow=700"], "the in-flight request completed");
    stream.call.end();
    assert.equal(await exit, 0);
    assert.ok(engine.lines.some((line) => line.includes("shutting down")));
  } finally {
    client.close();
  }
  await assert.rejects(Deno.stat(engine.layout.extprocSocket!), Deno.errors.NotFound);
});

Deno.test("the engine can serve on TCP instead of a socket", async () => {
  const engine = await EngineProcess.start({ config: {}, tcp: true });
  const client = new ExtProcClient(engine.layout.extprocAddress!);
  try {
    const stream = client.open();
    assert.equal((await stream.exchange(requestHeaders(undefined, "/tcp"))).response.case, "requestHeaders");
    await stream.finish();
  } finally {
    client.close();
    assert.equal(await engine.stop(), 0);
  }
});
