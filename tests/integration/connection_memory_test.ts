/**
 * Memory per connection: Envoy may open and close many connections over a day. The engine
 * (a child process under its production flags) takes a few thousand short connections,
 * each carrying one ext_proc call, and its resident memory must stay bounded.
 *
 * What the bound guards: Deno 2.9.3's `node:http2` server never frees a closed session (a
 * V8 global handle in the runtime keeps its objects and native state alive), about 25 KB
 * per connection for a bare `node:http2` server and for Tollgate alike (docs/performance.md,
 * scripts/repro/h2_connection_memory.ts). That cannot be fixed in this code, so the test
 * allows it and fails on anything Tollgate would add on top at the scale of a stream's
 * buffers (64 KB per connection): a per-connection or per-stream leak of our own. The
 * lean transport (issue 11) is where the runtime's share goes; then tighten the bound.
 */
import assert from "node:assert/strict";
import { memory } from "../../scripts/bench/proc_stats.ts";
import { churnConnections } from "../../scripts/repro/connection_churn.ts";
import { EngineProcess } from "../support/engine_process.ts";
import type { ListenTransport } from "../../src/config/types.ts";

const TRANSPORTS: readonly ListenTransport[] = ["lean", "grpc-js"];

const WARM_UP = 1000;
const CONNECTIONS = 3000;
const BOUND_BYTES_PER_CONNECTION = 64 * 1024;

const boundedMemory = (transport: ListenTransport): Deno.TestDefinition => ({
  name: `the engine's memory stays bounded over thousands of short connections (${transport} transport)`,
  fn: () => churns(transport),
});

async function churns(transport: ListenTransport) {
  const engine = await EngineProcess.start({
    config: {
      listen: { transport },
      routes: [{ name: "churn", policies: [{ name: "trace", version: "v1", parameters: { label: "c" } }] }],
    },
  });
  try {
    const socket = engine.layout.extprocSocket!;
    await churnConnections(socket, WARM_UP); // code paths compiled, pools and caches filled
    const before = (await memory(engine.pid)).rss;
    await churnConnections(socket, CONNECTIONS);
    const after = (await memory(engine.pid)).rss;
    const perConnection = (after - before) / CONNECTIONS;
    console.log(
      `engine RSS ${(before / 1048576).toFixed(0)} → ${
        (after / 1048576).toFixed(0)
      } MiB over ${CONNECTIONS} ` +
        `connections: ${(perConnection / 1024).toFixed(1)} KB per connection`,
    );
    assert.ok(
      perConnection < BOUND_BYTES_PER_CONNECTION,
      `${(perConnection / 1024).toFixed(1)} KB per connection, bound ${BOUND_BYTES_PER_CONNECTION / 1024} KB`,
    );
    assert.ok((await fetch(`${engine.adminUrl}/healthz`)).ok, "the engine still serves");
  } finally {
    assert.equal(await engine.stop(), 0, engine.lines.slice(-20).join("\n"));
  }
}

for (const transport of TRANSPORTS) Deno.test(boundedMemory(transport));
