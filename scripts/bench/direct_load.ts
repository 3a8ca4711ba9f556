/**
 * The engine under load without Envoy, for profiling: starts Tollgate (the test build under
 * the production permission flags, plus any `--flags`, e.g. `--cpu-prof --cpu-prof-dir=DIR`,
 * which also profiles each data-plane worker) and drives its ext_proc socket with a bare
 * HTTP/2 client: `--inflight` streams at a time over `--conns` connections, each stream the
 * messages of one `headers-5ts` request (request headers, then response headers) or of one
 * `empty-chain` request. Prints engine CPU µs per stream and RSS per round, as JSON lines, after
 * a line for the idle engine; each line also splits RSS into anonymous and file-backed memory
 * and gives each isolate's V8 heap (used / committed + external MiB, from the admin endpoint).
 *
 *   deno run -A scripts/bench/direct_load.ts [--scenario headers-5ts|empty-chain] [--rounds 3]
 *
 * Not part of the tests or the bench: numbers depend on the machine and its load.
 */
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
import { PROCESS_PATH, requestFrame } from "../../tests/support/raw_grpc.ts";
import { cpuSeconds, memory } from "./proc_stats.ts";

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
const five = values.scenario === "headers-5ts";
if (!five && values.scenario !== "empty-chain") {
  throw new Error("--scenario must be headers-5ts or empty-chain");
}

const setHeaders = (request: string, response: string) => ({
  name: "set-headers",
  version: "v1",
  parameters: {
    requestHeaders: [{ name: request, value: "bench" }],
    responseHeaders: [{ name: response, value: "bench" }],
  },
});
const removeHeaders = (request: string, response: string) => ({
  name: "remove-headers",
  version: "v1",
  parameters: { requestHeaders: [{ name: request }], responseHeaders: [{ name: response }] },
});
// The chain of the bench's headers-5ts (scripts/bench/scenarios.ts).
const policies = five
  ? [
    setHeaders("x-bench-1", "x-bench-r1"),
    removeHeaders("x-client-debug", "x-upstream"),
    setHeaders("x-bench-2", "x-bench-r2"),
    removeHeaders("x-bench-1", "x-bench-r1"),
    setHeaders("x-bench-3", "x-bench-r3"),
  ]
  : [];

const { dir, layout } = await EngineProcess.layout();
await Deno.mkdir(layout.configDir!, { recursive: true });
const configFile = join(layout.configDir!, "tollgate.yaml");
const config = {
  routes: [{ name: "bench", policies }],
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
  const request = requestFrame(
    requestHeaders("bench", "/bench", [["x-client-debug", "1"], ["x-request-id", "direct-load"]], true),
  );
  const response = requestFrame(
    responseHeaders(200, [["content-type", "application/json"], ["x-upstream", "1"]]),
  );
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
      stream.once("data", () => five && stream.end(response));
      stream.on("error", reject);
      stream.on("close", () => resolve());
      if (five) stream.write(request);
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
