/**
 * Reproduction: resident memory of an HTTP/2 server on Deno as short connections come and
 * go, for a bare `node:http2` server, a bare grpc-js server and Tollgate's ext_proc server,
 * each in its own process with the engine's V8 flags and a full garbage collection every
 * second (so what remains is held, not garbage). Results: docs/performance.md.
 *
 *   deno run -A scripts/repro/h2_connection_memory.ts [--connections 20000] [--kinds bare,grpc,extproc]
 *
 * (Tollgate itself is measured by tests/integration/connection_memory_test.ts; `extproc`
 * here is its server class on an empty route table, without admin, Python or config.)
 */
import http2 from "node:http2";
import { join } from "node:path";
import { parseArgs } from "node:util";
import * as grpc from "@grpc/grpc-js";
import { memory } from "../bench/proc_stats.ts";
import { churnConnections } from "./connection_churn.ts";

type Kind = "bare" | "grpc" | "extproc";
const V8_FLAGS = "--v8-flags=--max-semi-space-size=4,--expose-gc";

async function serve(kind: Kind, socket: string): Promise<void> {
  if (kind === "bare") {
    const server = http2.createServer();
    server.on("stream", (stream: http2.ServerHttp2Stream) => {
      stream.on("data", () => {});
      stream.on("end", () => {
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(socket, resolve));
  } else if (kind === "grpc") {
    // No service: every call is answered UNIMPLEMENTED, after a full session and stream.
    const server = new grpc.Server({ "grpc.enable_channelz": 0 });
    await new Promise<void>((resolve, reject) =>
      server.bindAsync(
        `unix:${socket}`,
        grpc.ServerCredentials.createInsecure(),
        (e) => e ? reject(e) : resolve(),
      )
    );
  } else {
    const { ExtProcServer } = await import("../../src/extproc/server.ts");
    const { Kernel, RouteTable } = await import("../../src/kernel/routes.ts");
    const { parseConfig } = await import("../../src/config/load.ts");
    const config = parseConfig("routes: []\n", "<repro>", {}, { pythonInterpreter: "", pythonHome: "" });
    await ExtProcServer.start({
      kernel: new Kernel(new RouteTable(config, new Map())),
      listen: { kind: "unix", socket, socketMode: 0o600, transport: "grpc-js" },
      connections: config.connections,
      maxMessageBytes: 4 * 1024 * 1024,
    });
  }
  // Full collections, so that what stays is memory the runtime still holds, not garbage.
  setInterval(() => (globalThis as { gc?: () => void }).gc?.(), 1000);
  console.log("ready");
}

async function measure(kind: Kind, connections: number): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "h2-memory-" });
  const socket = join(dir, "s.sock");
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", V8_FLAGS, new URL(import.meta.url).pathname, "--serve", kind, "--socket", socket],
    stdout: "piped",
  }).spawn();
  const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  await reader.read();
  const mib = async () => ((await memory(child.pid)).rss / 1048576).toFixed(0);
  const row = [`${kind.padEnd(8)} start ${await mib()} MiB`];
  const started = performance.now();
  await churnConnections(socket, connections, {
    every: connections / 4,
    progress: async (done) => void row.push(`${done}: ${await mib()}`),
  });
  const seconds = (performance.now() - started) / 1000;
  await new Promise((resolve) => setTimeout(resolve, 5000));
  row.push(`idle 5 s: ${await mib()} MiB (${(connections / seconds).toFixed(0)} connections/s)`);
  console.log(row.join(" | "));
  child.kill("SIGKILL");
  await child.status;
  await Deno.remove(dir, { recursive: true });
}

const { values } = parseArgs({
  args: Deno.args,
  options: {
    connections: { type: "string", default: "20000" },
    kinds: { type: "string", default: "bare,grpc,extproc" },
    serve: { type: "string" },
    socket: { type: "string" },
  },
});
if (values.serve) {
  await serve(values.serve as Kind, values.socket!);
} else {
  for (const kind of values.kinds.split(",") as Kind[]) await measure(kind, Number(values.connections));
}
