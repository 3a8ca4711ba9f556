/**
 * The engine under load without Envoy, for profiling: starts Tollgate (the test build under
 * the production permission flags, plus any `--flags`, e.g. `--cpu-prof --cpu-prof-dir=DIR`,
 * which also profiles each data-plane worker) and drives its ext_proc socket with a bare
 * HTTP/2 client: `--inflight` streams at a time over `--conns` connections, each stream the
 * messages of one request of a bench scenario without bodies (`headers-5ts`: request headers,
 * then response headers; `empty-chain`, `jwt-rs256`: the request headers alone, as the
 * chain's mode override tells Envoy), with the scenario's policies and request headers. Prints
 * engine CPU µs per stream and RSS per round, as JSON lines, after a line for the idle engine;
 * each line also splits RSS into anonymous and file-backed memory and gives each isolate's V8
 * heap (used / committed + external MiB, from the admin endpoint).
 *
 *   deno run -A scripts/bench/direct_load.ts [--scenario headers-5ts|empty-chain|jwt-rs256] [--rounds 3]
 *
 * Not part of the tests or the bench: numbers depend on the machine and its load.
 */
import { fromBinary } from "@bufbuild/protobuf";
import http2 from "node:http2";
import net from "node:net";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { stringify } from "yaml";
import { engineFlags } from "../lib/permissions.ts";
import { repoRoot } from "../lib/venv.ts";
import { EngineProcess } from "../../tests/support/engine_process.ts";
import { requestHeaders, responseHeaders } from "../../tests/support/extproc_client.ts";
import { waitFor } from "../../tests/support/ports.ts";
import { PROCESS_PATH, RawGrpcClient, requestFrame } from "../../tests/support/raw_grpc.ts";
import { ProcessingMode_HeaderSendMode as HeaderMode } from "../../src/gen/proto/envoy/extensions/filters/http/ext_proc/v3/processing_mode_pb.ts";
import {
  type ProcessingResponse,
  ProcessingResponseSchema,
} from "../../src/gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";
import { cpuSeconds, memory } from "./proc_stats.ts";
import { requestHeaders as benchHeaders, ROUTE, SCENARIOS } from "./scenarios.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    scenario: { type: "string", default: "headers-5ts" },
    streams: { type: "string", default: "15000" },
    warmup: { type: "string", default: "3000" },
    inflight: { type: "string", default: "32" },
    conns: { type: "string", default: "2" },
    rounds: { type: "string", default: "1" },
    flags: { type: "string", default: "" },
  },
});
const found = SCENARIOS.find((s) => s.name === values.scenario);
if (!found || found.server !== "tollgate" || found.bodyBytes || found.upstream) {
  throw new Error(
    "--scenario must be a Tollgate scenario without bodies (headers-5ts, empty-chain, jwt-rs256, …)",
  );
}
const scenario = found.prepare ? (await found.prepare()).scenario : found;
const policies = scenario.policies ?? [];
/** The engine's answer to one message on its own stream (the first framed message of the body). */
async function answerOf(socket: string, message: Uint8Array): Promise<ProcessingResponse> {
  const client = new RawGrpcClient(socket);
  try {
    const { body } = await client.call([message]).result;
    const length = new DataView(body.buffer, body.byteOffset).getUint32(1);
    return fromBinary(ProcessingResponseSchema, body.subarray(5, 5 + length));
  } finally {
    client.close();
  }
}

const { dir, layout } = await EngineProcess.layout();
await Deno.mkdir(layout.configDir!, { recursive: true });
const configFile = join(layout.configDir!, "tollgate.yaml");
const config = {
  routes: [{ name: ROUTE, policies }],
  log: { level: "warning" },
  shutdown: { gracePeriod: "1s" },
};
await Deno.writeTextFile(configFile, stringify(EngineProcess.fullConfig(layout, config)));
const extra = values.flags ? values.flags.split(" ") : [];
// Extra V8 flags replace the engine's (Deno takes one --v8-flags).
const flags = engineFlags(layout).filter((f) =>
  !(f.startsWith("--v8-flags") && extra.some((e) => e.startsWith("--v8-flags")))
);
const child = new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "--quiet",
    ...flags,
    ...extra,
    join(repoRoot, "tests/support/test_main.ts"),
    "serve",
    "--config",
    configFile,
  ],
  cwd: repoRoot,
  stdout: "inherit",
  stderr: "inherit",
}).spawn();
try {
  await waitFor("Tollgate to be ready", async () => {
    try {
      return (await fetch(`http://${layout.adminAddress}/readyz`)).ok;
    } catch {
      return false;
    }
  }, 30_000);
  const mib = (bytes: number) => Math.round(bytes / 2 ** 20);
  // Each isolate's heap (used / committed) and external memory, labelled `worker` (main, 0, …)
  // by the engine's runtime metrics.
  const heaps = async () => {
    const text = await (await fetch(`http://${layout.adminAddress}/metrics`)).text();
    const bytes: Record<string, Record<string, number>> = {};
    for (
      const [, kind, worker, value] of text.matchAll(
        /^nodejs_(heap_size_used|heap_size_total|external_memory)_bytes\{worker="([^"]+)"\} (\S+)$/gm,
      )
    ) (bytes[worker] ??= {})[kind] = Number(value);
    return Object.fromEntries(
      Object.entries(bytes).map(([worker, b]) => [
        worker,
        `${mib(b.heap_size_used)} / ${mib(b.heap_size_total)} + ${mib(b.external_memory)}`,
      ]),
    );
  };
  const memoryLine = async () => {
    const { rss, peak, anon, file } = await memory(child.pid);
    return {
      rssMiB: mib(rss),
      peakMiB: mib(peak),
      anonMiB: mib(anon),
      fileMiB: mib(file),
      heapMiB: await heaps(),
    };
  };
  console.log(JSON.stringify({ scenario: values.scenario, idle: true, ...await memoryLine() }));
  const socket = layout.extprocSocket!;
  const headerLine = (line: string): [string, string] => {
    const at = line.indexOf(":");
    return [line.slice(0, at).trim().toLowerCase(), line.slice(at + 1).trim()];
  };
  const request = requestFrame(
    requestHeaders(ROUTE, "/bench", [
      ...benchHeaders(scenario).map(headerLine),
      ["x-request-id", "direct-load"],
    ], true),
  );
  const response = requestFrame(
    responseHeaders(200, [["content-type", "application/json"], ["x-upstream", "1"]]),
  );
  // Envoy sends the response headers only when the request answer's mode asks for them.
  const probe = await answerOf(layout.extprocSocket!, request);
  const twoMessages = probe.modeOverride?.responseHeaderMode !== HeaderMode.SKIP;
  const sessions = Array.from(
    { length: Number(values.conns) },
    () => http2.connect("http://tollgate", { createConnection: () => net.connect(socket) }),
  );
  const oneStream = (session: http2.ClientHttp2Session) =>
    new Promise<void>((resolve, reject) => {
      const stream = session.request({
        ":method": "POST",
        ":path": PROCESS_PATH,
        "content-type": "application/grpc",
        te: "trailers",
      });
      stream.once("data", () => twoMessages && stream.end(response));
      stream.on("error", reject);
      stream.on("close", () => resolve());
      if (twoMessages) stream.write(request);
      else stream.end(request);
    });
  const load = async (count: number) => {
    let started = 0;
    await Promise.all(Array.from({ length: Number(values.inflight) }, async (_, i) => {
      while (started < count) {
        started++;
        await oneStream(sessions[i % sessions.length]);
      }
    }));
  };
  for (let round = 0; round < Number(values.rounds); round++) {
    await load(Number(values.warmup));
    const streams = Number(values.streams);
    const cpuBefore = await cpuSeconds(child.pid);
    const startedAt = performance.now();
    await load(streams);
    const cpu = await cpuSeconds(child.pid) - cpuBefore;
    const seconds = (performance.now() - startedAt) / 1000;
    console.log(JSON.stringify({
      scenario: values.scenario,
      cpuUsPerStream: Math.round((cpu * 1e6) / streams),
      streamsPerSecond: Math.round(streams / seconds),
      ...await memoryLine(),
    }));
  }
  for (const session of sessions) session.close();
} finally {
  child.kill("SIGTERM");
  await child.status;
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}
