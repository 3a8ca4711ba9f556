/**
 * Everything one scenario runs: its ext_proc server (Tollgate through the integration
 * tests' EngineProcess, i.e. the test build under the production permission flags; the
 * pass-through server under the same flags; the compiled Go reference; or nothing) and
 * Envoy in front of it. Knows
 * the processes' ids for /proc sampling and stops them all.
 */
import { join } from "node:path";
import { EngineProcess } from "../../tests/support/engine_process.ts";
import { freePort, waitFor } from "../../tests/support/ports.ts";
import { engineFlags } from "../lib/permissions.ts";
import { repoRoot } from "../lib/venv.ts";
import type { Envoy } from "../../tests/support/envoy.ts";
import type { ListenTransport } from "../../src/config/types.ts";
import { startBenchEnvoy } from "./envoy.ts";
import { goReferencePath } from "./go_reference.ts";
import { childrenOf } from "./proc_stats.ts";
import { killChild } from "./running.ts";
import { ROUTE, type Scenario } from "./scenarios.ts";

/** How long a stopping process gets before it is killed. */
const STOP_TIMEOUT_MS = 10_000;

/** A process of the stack, by role: envoy, server (Tollgate or pass-through), executor (Python). */
export type Role = "envoy" | "server" | "executor";

interface Server {
  /** Its ext_proc sockets: one per data-plane worker. */
  readonly sockets: readonly string[];
  readonly pid: number;
  /** Tollgate's admin URL (for /metrics); undefined for the pass-through server. */
  readonly adminUrl?: string;
  stop(): Promise<void>;
}

function killPid(pid: number): void {
  try {
    Deno.kill(pid, "SIGKILL");
  } catch {
    // already gone
  }
}

/** Runs `stop`; if it has not finished within the timeout, calls `kill` and waits for `stop` again. */
async function stopWithin(what: string, stop: () => Promise<unknown>, kill: () => void): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const stopping = stop();
  const timeout = new Promise<"timeout">((resolve) =>
    timer = setTimeout(() => resolve("timeout"), STOP_TIMEOUT_MS)
  );
  const result = await Promise.race([stopping, timeout]);
  clearTimeout(timer);
  if (result === "timeout") {
    console.error(`bench: ${what} did not stop within ${STOP_TIMEOUT_MS} ms; killing it`);
    kill();
    await stopping;
  }
}

async function startPassthrough(): Promise<Server> {
  const { dir, layout } = await EngineProcess.layout();
  const socket = layout.extprocSocket!;
  return await startServerProcess(
    "the pass-through server",
    Deno.execPath(),
    [
      "run",
      "--quiet",
      // The same flags as the engine (V8 settings included), so the floor is comparable.
      ...engineFlags(layout),
      join(repoRoot, "scripts/bench/passthrough_server.ts"),
      socket,
    ],
    socket,
    dir,
  );
}

/** Starts a child that serves ext_proc on `socket` and waits until the socket accepts. */
async function startServerProcess(
  what: string,
  command: string,
  args: readonly string[],
  socket: string,
  dir: string,
): Promise<Server> {
  const child = new Deno.Command(command, {
    args: [...args],
    cwd: repoRoot,
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const stop = async () => {
    await stopWithin(what, async () => {
      killChild(child);
      await child.status;
    }, () => killChild(child, "SIGKILL"));
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  try {
    await waitFor(what, async () => {
      (await Deno.connect({ transport: "unix", path: socket })).close();
      return true;
    }, 30_000);
  } catch (error) {
    await stop();
    throw error;
  }
  return { sockets: [socket], pid: child.pid, stop };
}

/** The compiled reference in `mode` (scripts/bench/go/), on a socket in a fresh directory. */
async function startGoReference(mode: "passthrough" | "headers-5"): Promise<Server> {
  const dir = await Deno.makeTempDir({ prefix: "tollgate-bench-go-" });
  const socket = join(dir, "extproc.sock");
  return await startServerProcess(
    `the Go ${mode} server`,
    goReferencePath,
    ["-socket", socket, "-mode", mode],
    socket,
    dir,
  );
}

async function startTollgate(
  scenario: Scenario,
  transport: ListenTransport | undefined,
  workers: number,
): Promise<Server> {
  const engine = await EngineProcess.start({
    config: {
      routes: [{ name: ROUTE, policies: scenario.policies ?? [] }],
      ...(transport ? { listen: { transport } } : {}),
      dataPlane: { workers },
      log: { level: "warning" },
      shutdown: { gracePeriod: "2s" },
    },
    policyHosts: scenario.policyHosts,
  });
  const [pid] = await childrenOf(Deno.pid, engine.configFile);
  const stop = () => stopWithin("Tollgate", () => engine.stop(), () => killPid(pid));
  if (pid === undefined) {
    await stop();
    throw new Error("Tollgate started but its process was not found in /proc");
  }
  return { sockets: (engine.extproc as { sockets: string[] }).sockets, pid, adminUrl: engine.adminUrl, stop };
}

function startServer(
  scenario: Scenario,
  transport: ListenTransport | undefined,
  workers: number,
): Promise<Server | undefined> {
  switch (scenario.server) {
    case "none":
      return Promise.resolve(undefined);
    case "passthrough":
      return startPassthrough();
    case "go-passthrough":
      return startGoReference("passthrough");
    case "go-headers-5":
      return startGoReference("headers-5");
    case "tollgate":
      return startTollgate(scenario, transport, workers);
  }
}

/** The SSE upstream (scripts/bench/sse_upstream.ts) on a free port, once it answers. */
async function startSseUpstream(): Promise<{ port: number; stop(): Promise<void> }> {
  const port = freePort();
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-net", join(repoRoot, "scripts", "bench", "sse_upstream.ts"), String(port)],
    stdin: "null",
    stdout: "null",
    stderr: "inherit",
  }).spawn();
  const stop = async () => {
    killChild(child);
    await child.status;
  };
  try {
    await waitFor("the SSE upstream", async () => {
      const response = await fetch(`http://127.0.0.1:${port}/`);
      await response.body?.cancel();
      return response.ok;
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { port, stop };
}

export class Stack {
  #stopping: Promise<void> | undefined;

  private constructor(
    readonly envoy: Envoy,
    private readonly server: Server | undefined,
    private readonly upstream: { stop(): Promise<void> } | undefined,
    /** The processes to sample, by role. */
    readonly pids: Partial<Record<Role, number>>,
  ) {}

  /**
   * `transport` picks Tollgate's `listen.transport` (undefined: the engine's default);
   * `workers` its `dataPlane.workers`.
   */
  static async start(
    scenario: Scenario,
    envoyWorkers: number,
    transport?: ListenTransport,
    workers = 1,
  ): Promise<Stack> {
    const upstream = scenario.upstream === "sse" ? await startSseUpstream() : undefined;
    let server: Server | undefined;
    let envoy: Envoy;
    try {
      server = await startServer(scenario, transport, workers);
      envoy = await startBenchEnvoy({
        routes: [{ name: ROUTE, prefix: "/" }],
        extprocSockets: server?.sockets,
        workers: envoyWorkers,
        upstreamPort: upstream?.port,
      });
    } catch (error) {
      await server?.stop();
      await upstream?.stop();
      throw error;
    }
    const pids: Partial<Record<Role, number>> = { envoy: envoy.pid };
    if (server) {
      pids.server = server.pid;
      const [executor] = await childrenOf(server.pid);
      if (executor !== undefined) pids.executor = executor;
    }
    return new Stack(envoy, server, upstream, pids);
  }

  /** Tollgate's Prometheus metrics, or undefined without Tollgate. */
  async metrics(): Promise<string | undefined> {
    if (!this.server?.adminUrl) return undefined;
    return await (await fetch(`${this.server.adminUrl}/metrics`)).text();
  }

  /** Stops Envoy first (so no stream is cut mid-request), then the server; safe to call twice. */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await stopWithin("Envoy", () => this.envoy.stop(), () => killPid(this.envoy.pid));
      await this.server?.stop();
      await this.upstream?.stop();
    })();
    return this.#stopping;
  }
}
