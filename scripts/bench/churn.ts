/**
 * Memory under connection churn: starts Tollgate (the test build under the production
 * permission flags) and opens and closes many HTTP/2 connections to its ext_proc socket,
 * each carrying one ext_proc exchange, sampling the engine's resident memory from /proc as
 * it goes. A server that keeps state per accepted connection shows RSS growing in step
 * with the count; one that does not levels off after the first thousands.
 *
 *   deno run -A scripts/bench/churn.ts [--transport lean|grpc-js] [--connections 20000]
 *
 * Prints one JSON object (samples and growth per connection) on stdout. Not part of the
 * tests: numbers depend on the machine and its load.
 */
import { parseArgs } from "node:util";
import type { ListenTransport } from "../../src/config/types.ts";
import { EngineProcess } from "../../tests/support/engine_process.ts";
import { requestHeaders } from "../../tests/support/extproc_client.ts";
import { RawGrpcClient, requestFrame } from "../../tests/support/raw_grpc.ts";
import { childrenOf, memory } from "./proc_stats.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    transport: { type: "string", default: "lean" },
    connections: { type: "string", default: "20000" },
    parallel: { type: "string", default: "8" },
  },
});
const transport = values.transport as ListenTransport;
if (transport !== "lean" && transport !== "grpc-js") throw new Error("--transport must be lean or grpc-js");
const total = Number(values.connections);
const parallel = Number(values.parallel);
/** Connections before the first sample, so start-up allocations are not counted as growth. */
const WARMUP = Math.min(1000, total);
const SAMPLES = 10;

/** One connection: handshake, one pass-through exchange, close. Resolves whether it got grpc-status 0. */
async function oneConnection(socket: string): Promise<boolean> {
  const client = new RawGrpcClient(socket);
  try {
    const { trailers } = await client.call([requestFrame(requestHeaders("churn", "/churn"))]).result;
    return trailers["grpc-status"] === "0";
  } finally {
    await new Promise<void>((resolve) => client.session.close(() => resolve()));
  }
}

async function churn(socket: string, count: number): Promise<number> {
  let next = 0;
  let failures = 0;
  await Promise.all(Array.from({ length: parallel }, async () => {
    while (next < count) {
      next++;
      if (!await oneConnection(socket)) failures++;
    }
  }));
  return failures;
}

const engine = await EngineProcess.start({
  config: {
    listen: { transport },
    routes: [{ name: "churn", policies: [] }],
    log: { level: "warning" },
    shutdown: { gracePeriod: "2s" },
  },
});
try {
  const [pid] = await childrenOf(Deno.pid, engine.configFile);
  if (pid === undefined) throw new Error("Tollgate started but its process was not found in /proc");
  const [socket] = (engine.extproc as { sockets: string[] }).sockets;
  let failures = await churn(socket, WARMUP);
  const samples: { connections: number; rssMiB: number; peakMiB: number }[] = [];
  const sample = async (connections: number) => {
    const { rss, peak } = await memory(pid);
    samples.push({ connections, rssMiB: rss / 2 ** 20, peakMiB: peak / 2 ** 20 });
  };
  await sample(WARMUP);
  const step = Math.ceil((total - WARMUP) / SAMPLES);
  for (let done = WARMUP; done < total; done += step) {
    failures += await churn(socket, Math.min(step, total - done));
    await sample(Math.min(done + step, total));
  }
  const first = samples[0];
  const last = samples[samples.length - 1];
  console.log(JSON.stringify(
    {
      transport,
      connections: total,
      failures,
      rssBeforeMiB: first.rssMiB,
      rssAfterMiB: last.rssMiB,
      growthPercent: (last.rssMiB / first.rssMiB - 1) * 100,
      bytesPerConnection: ((last.rssMiB - first.rssMiB) * 2 ** 20) /
        Math.max(1, last.connections - first.connections),
      samples,
    },
    null,
    2,
  ));
} finally {
  await engine.stop();
}
