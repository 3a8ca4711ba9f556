/**
 * The permission scope the engine runs with (the same flags as the compiled binary): what is
 * outside it is refused, and a config that needs more than it allows is rejected up front.
 */
import assert from "node:assert/strict";
import { EngineProcess } from "../support/engine_process.ts";
import { ExtProcClient, requestHeaders } from "../support/extproc_client.ts";

Deno.test("a policy reading a file outside the allowed paths is refused (and denied by its rule)", async () => {
  const engine = await EngineProcess.start({
    config: {
      routes: [
        {
          name: "outside",
          policies: [{ name: "read-file", version: "v1", parameters: { path: "/etc/hostname" } }],
        },
      ],
    },
  });
  const client = new ExtProcClient(`unix:${engine.layout.extprocSocket}`);
  try {
    const stream = client.open();
    const response = await stream.exchange(requestHeaders("outside", "/x"));
    assert.equal(response.response.case, "immediateResponse");
    const immediate = response.response.case === "immediateResponse" ? response.response.value : undefined;
    assert.equal(immediate?.status?.code, 500);
    assert.match(new TextDecoder().decode(immediate?.body), /"policy":"read-file:v1"/);
    await stream.finish();
    assert.ok(engine.lines.some((l) => l.includes("read-file:v1") && l.includes("Requires read access")));
  } finally {
    client.close();
    assert.equal(await engine.stop(), 0);
  }
});

Deno.test("a TypeScript policy cannot start a process, not even the Python interpreter the engine may run", async () => {
  const base = await EngineProcess.layout();
  const engine = await EngineProcess.start({
    layout: base,
    config: {
      routes: [
        {
          name: "run",
          // The one program the process's --allow-run names (for the Python executor).
          policies: [{ name: "run-command", version: "v1", parameters: { command: base.layout.python } }],
        },
        { name: "fine", policies: [{ name: "echo", version: "v1" }] },
      ],
    },
  });
  const client = new ExtProcClient(`unix:${engine.layout.extprocSocket}`);
  try {
    const stream = client.open();
    const response = await stream.exchange(requestHeaders("run", "/x"));
    assert.equal(response.response.case, "immediateResponse");
    const immediate = response.response.case === "immediateResponse" ? response.response.value : undefined;
    assert.equal(immediate?.status?.code, 500);
    assert.match(new TextDecoder().decode(immediate?.body), /"policy":"run-command:v1"/);
    await stream.finish();
    assert.ok(
      engine.lines.some((l) => l.includes("run-command:v1") && l.includes("Requires run access")),
      engine.lines.join("\n"),
    );
    // Everything else still runs.
    const other = client.open();
    const passed = await other.exchange(requestHeaders("fine", "/y"));
    assert.equal(passed.response.case, "requestHeaders");
    await other.finish();
  } finally {
    client.close();
    assert.equal(await engine.stop(), 0);
  }
});

Deno.test("a config needing more than the permissions allow is rejected at startup with exit 2", async () => {
  const engine = await EngineProcess.start({
    config: {},
    env: { TOLLGATE_ADMIN_ADDRESS: "127.0.0.1:1" },
    noWait: true,
  });
  assert.equal(await engine.exited(), 2, engine.lines.join("\n"));
  const output = engine.lines.join("\n");
  assert.match(output, /admin\.address: 127\.0\.0\.1:1 is outside the permissions this engine runs with/);
  await Deno.remove(engine.dir, { recursive: true });
});

Deno.test("a policy writing outside the allowed directories fails the chain build naming the parameter", async () => {
  const outside = await Deno.makeTempDir({ prefix: "tollgate-not-granted-" });
  const engine = await EngineProcess.start({
    config: {
      routes: [{
        name: "audited",
        policies: [{
          name: "audit-log",
          version: "v1",
          parameters: { sink: "file", path: `${outside}/a.jsonl` },
        }],
      }],
    },
    noWait: true,
  });
  assert.equal(await engine.exited(), 2, engine.lines.join("\n"));
  assert.match(
    engine.lines.join("\n"),
    /parameters\.path: directory \S+ \(to write \S+a\.jsonl\) is outside the permissions this engine runs with/,
  );
  await Deno.remove(engine.dir, { recursive: true });
  await Deno.remove(outside, { recursive: true });
});
