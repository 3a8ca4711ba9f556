/**
 * Memory per connection: Envoy may open and close many connections over a day. The engine
 * (a child process under its production flags) takes a few thousand short connections,
 * each carrying one ext_proc call, and its resident memory must stay bounded.
 *
 * What the bounds guard: Deno 2.9.3's `node:http2` server never frees a closed session (a
 * V8 global handle in the runtime keeps its objects and native state alive), about 20-25 KB
 * per connection (docs/performance.md, "Memory per connection"). grpc-js runs on it, so its
 * bound allows that and fails only on a leak of our own at the scale of a stream's buffers.
 * The lean transport runs on Tollgate's own HTTP/2 layer over Deno sockets and keeps nothing
 * per closed connection: its bound fails if a per-connection leak of even a third of that
 * size comes back (what it grows by here is the heap settling into its working size).
 */
import assert from "node:assert/strict";
import { memory } from "../../scripts/bench/proc_stats.ts";
import { churnConnections } from "../../scripts/repro/connection_churn.ts";
import { EngineProcess } from "../support/engine_process.ts";
import type { ListenTransport } from "../../src/config/types.ts";

const TRANSPORTS: readonly ListenTransport[] = ["lean", "grpc-js"];

/**
 * Per transport: connections to warm up with (code compiled, pools filled, the heap grown to
 * its working size, which on the lean transport takes ~10,000 connections: measured in
 * docs/performance.md, "Own HTTP/2"), connections measured, and the bound per connection.
 */
const CHURN: Record<ListenTransport, { warmUp: number; connections: number; boundBytes: number }> = {
  "lean": { warmUp: 10_000, connections: 10_000, boundBytes: 8 * 1024 },
  "grpc-js": { warmUp: 1000, connections: 3000, boundBytes: 64 * 1024 },
};

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
    const { warmUp, connections, boundBytes: bound } = CHURN[transport];
    await churnConnections(socket, warmUp);
    const before = (await memory(engine.pid)).rss;
    await churnConnections(socket, connections);
    const after = (await memory(engine.pid)).rss;
    const perConnection = (after - before) / connections;
    console.log(
      `engine RSS ${(before / 1048576).toFixed(0)} → ${
        (after / 1048576).toFixed(0)
      } MiB over ${connections} ` +
        `connections: ${(perConnection / 1024).toFixed(1)} KB per connection`,
    );
    assert.ok(
      perConnection < bound,
      `${(perConnection / 1024).toFixed(1)} KB per connection, bound ${bound / 1024} KB`,
    );
    assert.ok((await fetch(`${engine.adminUrl}/healthz`)).ok, "the engine still serves");
  } finally {
    assert.equal(await engine.stop(), 0, engine.lines.slice(-20).join("\n"));
  }
}

for (const transport of TRANSPORTS) Deno.test(boundedMemory(transport));
