/**
 * A data-plane worker (a Deno Worker with the narrowest permissions, no run, no FFI): the
 * ext_proc server, the kernel and its chains, TypeScript policies and the Python bridge
 * client. It answers the control plane's requests (./messages.ts); config arrives as text
 * the control plane has validated, is built here, and swaps in only on "commit".
 */
/// <reference lib="deno.worker" />
import { parseConfig } from "../config/load.ts";
import { ProblemsError } from "../config/problem.ts";
import type { EngineConfig } from "../config/types.ts";
import { workerListen } from "../config/worker_listen.ts";
import { compileCondition } from "../chain/condition.ts";
import { type ExtProcTransport, startExtProcServer } from "../extproc/transport.ts";
import { buildRouteTable, type ChainBuildContext } from "../kernel/build.ts";
import { droppedProtection } from "../kernel/dropped.ts";
import { closeChains, Kernel, type RouteTable } from "../kernel/routes.ts";
import { configureLogging } from "../observe/log.ts";
import { Metrics } from "../observe/metrics.ts";
import { runtimeMetrics } from "../observe/runtime_metrics.ts";
import type { Tracing } from "../observe/tracing.ts";
import { type GeneratedPolicy, PolicyRegistry } from "../registry/registry.ts";
import type {
  ConfigText,
  FailedPython,
  FromWorker,
  ToWorker,
  WorkerRequest,
  WorkerStatus,
} from "./messages.ts";
import { FailureQuarantine } from "./failure_quarantine.ts";
import { LivenessWriter } from "./liveness.ts";
import { DataPlaneObserver } from "./observer.ts";
import { WorkerPython } from "./python.ts";
import { quarantineReason } from "./quarantine.ts";
import { describeRoutes } from "./routes_view.ts";

/** Slack over the body limit for the headers and framing of one ext_proc message. */
const MESSAGE_OVERHEAD_BYTES = 1024 * 1024;
/** How long a stopping worker waits for its last spans to be exported. */
const TRACING_FLUSH_MS = 1500;

interface Serving {
  readonly kernel: Kernel;
  readonly server: ExtProcTransport;
  readonly build: ChainBuildContext;
  readonly python: WorkerPython | undefined;
  readonly metrics: Metrics;
  /** This thread's heap and event-loop metrics (./runtime_metrics.ts). */
  readonly runtime: ReturnType<typeof runtimeMetrics>;
  readonly quarantine: FailureQuarantine;
  /** Set when the config it started with has `tracing` (a restart-only setting). */
  readonly tracing: Tracing | undefined;
  /** A table built for a config the control plane has yet to commit or abort. */
  pending?: RouteTable;
}

let serving: Serving | undefined;
/** Policy label → until when it is quarantined (from the control plane). */
let quarantined = new Map<string, number>();

const parse = (config: ConfigText): EngineConfig =>
  parseConfig(config.text, config.source, config.env, config.defaults);

async function start(request: Extract<WorkerRequest, { type: "start" }>): Promise<void> {
  const config = parse(request.config);
  await configureLogging(config.log.level, config.log.format);
  const { generatedPolicies } = await import(request.registryModule) as {
    generatedPolicies: readonly GeneratedPolicy[];
  };
  const registry = new PolicyRegistry(generatedPolicies);
  quarantined = new Map(request.quarantine);
  const liveness = new LivenessWriter(request.liveness, (label) => quarantineReason(quarantined, label));
  liveness.start(request.heartbeatMs);
  // Settings come from the table in service, so a reload changes them.
  const current = () => serving?.kernel.table.config ?? config;
  const quarantine = new FailureQuarantine(() => current().quarantine);
  const metrics = new Metrics();
  metrics.quarantined = (route, label) =>
    quarantine.has(route, label) || quarantineReason(quarantined, label) !== undefined;
  // The server's observer: metrics, the quarantine, the access log, and the watchdog's view of every policy call.
  const observer = new DataPlaneObserver(metrics, liveness, quarantine, () => current().log.requests);
  const python = request.python ? new WorkerPython(config, observer, request.pythonHealthy) : undefined;
  if (python) python.failed = new Map(request.failedPython);
  const build: ChainBuildContext = {
    registry,
    factoryFor: (p) => p.definition.runtime === "python" ? python?.factoryFor(p) : p.factory,
    compileCondition,
  };
  const kernel = new Kernel(await buildRouteTable(config, build));
  metrics.track(kernel.table);
  // Imported only when configured: without `tracing` the OpenTelemetry SDK is never loaded.
  const tracing = config.tracing &&
    (await import("../observe/tracing.ts")).Tracing.start(config.tracing, request.index);
  const server = await startExtProcServer({
    kernel,
    listen: workerListen(config.listen, request.index, request.workers),
    connections: config.connections,
    maxMessageBytes: Math.max(
      4 * 1024 * 1024,
      Math.max(config.limits.maxBodyBytes, config.limits.maxChunkBytes) + MESSAGE_OVERHEAD_BYTES,
    ),
    observer,
    tracing,
  });
  serving = {
    kernel,
    server,
    build,
    python,
    metrics,
    runtime: runtimeMetrics(String(request.index)),
    quarantine,
    tracing,
  };
}

async function buildPending(config: ConfigText, failedPython: FailedPython): Promise<void> {
  const s = running();
  await abort();
  if (s.python) s.python.failed = new Map(failedPython);
  s.pending = await buildRouteTable(parse(config), s.build);
}

async function commit(): Promise<string[]> {
  const s = running();
  const table = s.pending;
  if (!table) throw new Error("no built config to commit");
  s.pending = undefined;
  const dropped = droppedProtection(s.kernel.table, table);
  const previous = s.kernel.swap(table);
  s.metrics.track(table);
  previous.retire();
  const { log } = table.config;
  if (log.level !== previous.config.log.level || log.format !== previous.config.log.format) {
    await configureLogging(log.level, log.format);
  }
  return dropped;
}

async function abort(): Promise<void> {
  const s = running();
  const table = s.pending;
  s.pending = undefined;
  if (table) await closeChains(table.allChains());
}

function status(): WorkerStatus {
  const s = running();
  const reason = s.server.unreadyReason();
  const quarantinedPolicies = s.quarantine.list();
  const unready = reason === undefined ? [] : [reason];
  if (s.kernel.table.config.quarantine.affectsReadiness) {
    for (const q of quarantinedPolicies) {
      unready.push(`policy ${q.policy} of route ${q.route} is quarantined: ${q.reason}`);
    }
  }
  return { unready, routes: describeRoutes(s.kernel), quarantined: quarantinedPolicies };
}

async function stop(graceMs: number): Promise<void> {
  const s = running();
  await s.server.shutdown(graceMs);
  // Streams cut at the end of the grace period never release the table: close it directly.
  await closeChains(s.kernel.table.allChains());
  await abort();
  s.python?.close();
  s.quarantine.close();
  // The spans of the drained exchanges go out before the worker ends.
  await s.tracing?.shutdown(TRACING_FLUSH_MS);
}

function running(): Serving {
  if (!serving) throw new Error("the worker is not serving");
  return serving;
}

async function answer(request: WorkerRequest): Promise<unknown> {
  switch (request.type) {
    case "start":
      return await start(request);
    case "build":
      return await buildPending(request.config, request.failedPython);
    case "commit":
      return await commit();
    case "abort":
      return await abort();
    case "metrics": {
      const s = running();
      return [...await s.metrics.registry.getMetricsAsJSON(), ...await s.runtime.getMetricsAsJSON()];
    }
    case "status":
      return status();
    case "python-replaced":
      return await running().python?.replaced(request.index);
    case "stop":
      return await stop(request.graceMs);
  }
}

self.onmessage = async (event: MessageEvent<ToWorker>) => {
  const message = event.data;
  if (!("id" in message)) {
    if (message.type === "python-ready") serving?.python?.ready(message.index);
    else if (message.type === "python-down") serving?.python?.down(message.index);
    else quarantined = new Map(message.list);
    return;
  }
  let reply: FromWorker;
  try {
    reply = { id: message.id, ok: true, value: await answer(message.request) };
  } catch (error) {
    reply = {
      id: message.id,
      ok: false,
      error: error instanceof ProblemsError
        ? { message: error.message, summary: error.summary, problems: error.problems }
        : { message: error instanceof Error ? error.message : String(error) },
    };
  }
  self.postMessage(reply);
};
