/**
 * A second engine on the same sockets is refused before it starts anything, so the running
 * engine keeps both its sockets and its executor; the runtime directory the engine creates
 * is 0750.
 */
import assert from "node:assert/strict";
import { dirname } from "node:path";
import { EngineProcess } from "../support/engine_process.ts";
import { ExtProcClient, mutationLines, requestHeaders } from "../support/extproc_client.ts";

const config = { routes: [{ name: "python", policies: [{ name: "add-python-header", version: "v1" }] }] };

async function pythonHeader(socket: string): Promise<string[]> {
  const client = new ExtProcClient(`unix:${socket}`);
  try {
    const stream = client.open();
    const lines = mutationLines(await stream.exchange(requestHeaders("python", "/python")));
    await stream.finish();
    return lines;
  } finally {
    client.close();
  }
}

const identity = async (path: string) => {
  const info = await Deno.lstat(path);
  assert.ok(info.isSocket, `${path} is a socket`);
  return info.ino;
};

Deno.test("a refused second engine leaves the first one's ext_proc and executor sockets intact", async () => {
  const first = await EngineProcess.start({ config });
  const { extprocSocket, pythonSocket } = first.layout;
  try {
    assert.deepEqual(await pythonHeader(extprocSocket!), ["x-python-policy=hello-from-python"]);
    const before = [await identity(extprocSocket!), await identity(pythonSocket)];

    const second = await EngineProcess.start({ config, layout: first, noWait: true });
    assert.equal(await second.exited(), 1);
    const output = second.lines.join("\n");
    assert.match(output, /extproc\.sock is in use by another live process/);
    assert.doesNotMatch(output, /started the Python executor/, "nothing was started");

    assert.deepEqual([await identity(extprocSocket!), await identity(pythonSocket)], before);
    assert.deepEqual(await pythonHeader(extprocSocket!), ["x-python-policy=hello-from-python"]);
  } finally {
    assert.equal(await first.stop(), 0);
  }
});

Deno.test("a second engine sharing only the executor socket is refused too", async () => {
  const first = await EngineProcess.start({ config });
  const other = await EngineProcess.layout();
  try {
    const before = await identity(first.layout.pythonSocket);
    const second = await EngineProcess.start({
      config,
      noWait: true,
      layout: {
        dir: other.dir,
        layout: {
          ...other.layout,
          runtimeDirs: [...other.layout.runtimeDirs, dirname(first.layout.pythonSocket)],
          pythonSocket: first.layout.pythonSocket,
        },
      },
    });
    assert.equal(await second.exited(), 1);
    assert.match(second.lines.join("\n"), /python\.sock is in use by another live process/);
    assert.equal(await identity(first.layout.pythonSocket), before);
    assert.deepEqual(await pythonHeader(first.layout.extprocSocket!), ["x-python-policy=hello-from-python"]);
  } finally {
    assert.equal(await first.stop(), 0);
    await Deno.remove(other.dir, { recursive: true }).catch(() => {});
  }
});

Deno.test("the runtime directory the engine creates is 0750", async () => {
  const engine = await EngineProcess.start({ config });
  try {
    assert.equal((await Deno.stat(engine.layout.runtimeDirs[0])).mode! & 0o777, 0o750);
  } finally {
    assert.equal(await engine.stop(), 0);
  }
});
