/**
 * Reproduction: does replacing the Deno Worker that runs a `node:http2` server return the
 * memory its accepted connections keep? A server process runs a bare HTTP/2 server in a
 * Worker; this script churns `--per` connections (one ext_proc call each) against it, has
 * it terminate the worker and start a new one on the same socket, and prints the server's
 * RSS before and after each replacement. Results: docs/performance.md (connection churn).
 *
 *   deno run -A scripts/repro/worker_replacement_memory.ts [--connections 20000] [--per 5000]
 */
import http2 from "node:http2";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { memory } from "../bench/proc_stats.ts";
import { churnConnections } from "./connection_churn.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    connections: { type: "string", default: "20000" },
    per: { type: "string", default: "5000" },
    role: { type: "string" },
    socket: { type: "string" },
  },
});

/** In the Worker: a bare HTTP/2 server answering every stream with grpc-status 0. */
function serveInWorker(): void {
  const scope = self as unknown as {
    onmessage: (e: MessageEvent<string>) => void;
    postMessage(m: string): void;
  };
  scope.onmessage = ({ data: socket }) => {
    try {
      Deno.removeSync(socket);
    } catch {
      // not there yet
    }
    const server = http2.createServer();
    server.on("stream", (stream: http2.ServerHttp2Stream) => {
      stream.on("data", () => {});
      stream.on("end", () => {
        stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
        stream.on("wantTrailers", () => stream.sendTrailers({ "grpc-status": "0" }));
        stream.end();
      });
    });
    server.listen(socket, () => scope.postMessage("ready"));
  };
}

/** The server process: one Worker at a time; a line on stdin replaces it. */
async function serverProcess(socket: string): Promise<void> {
  let worker: Worker | undefined;
  const start = () =>
    new Promise<void>((resolve) => {
      worker = new Worker(`${import.meta.url}#worker`, { type: "module" });
      worker.onmessage = () => resolve();
      worker.postMessage(socket);
    });
  await start();
  console.log("ready");
  for await (const _ of Deno.stdin.readable.pipeThrough(new TextDecoderStream())) {
    worker?.terminate();
    await new Promise((resolve) => setTimeout(resolve, 200));
    await start();
    console.log("ready");
  }
}

async function measure(total: number, per: number): Promise<void> {
  const dir = await Deno.makeTempDir({ prefix: "worker-replacement-" });
  const socket = join(dir, "s.sock");
  const child = new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      "--unstable-worker-options",
      "--v8-flags=--max-semi-space-size=4",
      new URL(import.meta.url).pathname,
      "--role",
      "server",
      "--socket",
      socket,
    ],
    stdin: "piped",
    stdout: "piped",
  }).spawn();
  const lines = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
  const writer = child.stdin.getWriter();
  const mib = async () => Math.round((await memory(child.pid)).rss / 2 ** 20);
  try {
    await lines.read();
    console.log(`start: ${await mib()} MiB`);
    for (let done = per; done <= total; done += per) {
      await churnConnections(socket, per);
      const before = await mib();
      await writer.write(new TextEncoder().encode("replace\n"));
      await lines.read();
      await new Promise((resolve) => setTimeout(resolve, 1000));
      console.log(`${done} connections: ${before} MiB, after replacing the worker ${await mib()} MiB`);
    }
  } finally {
    child.kill("SIGKILL");
    await child.status;
    await Deno.remove(dir, { recursive: true });
  }
}

if (
  import.meta.url.endsWith("#worker") || (globalThis as { WorkerGlobalScope?: unknown }).WorkerGlobalScope
) {
  serveInWorker();
} else if (values.role === "server") {
  await serverProcess(values.socket!);
} else {
  await measure(Number(values.connections), Number(values.per));
}
