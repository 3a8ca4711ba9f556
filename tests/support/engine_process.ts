/**
 * Tollgate as a real child process for integration tests: its own runtime and config
 * directories, started with the production permission flags for that layout, stopped
 * with a signal. Its log lines are kept for assertions.
 */
import { dirname, join } from "node:path";
import { stringify } from "yaml";
import { checkoutModuleDirs } from "../../scripts/lib/engine_layout.ts";
import { engineFlags, type PermissionLayout } from "../../scripts/lib/permissions.ts";
import { repoRoot, venvPython } from "../../scripts/lib/venv.ts";
import { workerAddress, workerSocket } from "../../src/config/worker_listen.ts";
import type { ExtProcEndpoints } from "./envoy.ts";
import { freePort, waitFor } from "./ports.ts";

export interface EngineProcessOptions {
  /** Config without admin/python.socket and listen's socket or address (the harness fills those in). */
  readonly config: Record<string, unknown>;
  /** Serve on TCP instead of the Unix socket. */
  readonly tcp?: boolean;
  /** Extra environment for the engine. */
  readonly env?: Record<string, string>;
  /** The entry point (default: the test build). */
  readonly entry?: string;
  /** Don't wait for readiness (for tests of startup failures). */
  readonly noWait?: boolean;
  /** Use these directories and sockets, e.g. another engine's (for tests of socket ownership). */
  readonly layout?: { readonly dir: string; readonly layout: PermissionLayout };
  /** Hosts (`host:port`) and files the engine's policies may reach (added to the layout). */
  readonly policyHosts?: readonly string[];
  readonly policyFiles?: readonly string[];
  /** Directories the engine's policies may read and write (e.g. audit-log's file's). */
  readonly policyWriteDirs?: readonly string[];
  /** The OTLP collector (`host:port`) the engine may export spans to (`tracing`). */
  readonly tracingHost?: string;
}

export class EngineProcess {
  readonly lines: string[] = [];
  #output: Promise<void>;

  private constructor(
    readonly dir: string,
    readonly layout: PermissionLayout,
    readonly configFile: string,
    private readonly child: Deno.ChildProcess,
  ) {
    this.#output = this.#collect(child.stderr);
  }

  async #collect(stream: ReadableStream<Uint8Array>): Promise<void> {
    let pending = "";
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      pending += chunk;
      const parts = pending.split("\n");
      pending = parts.pop()!;
      this.lines.push(...parts);
    }
    if (pending) this.lines.push(pending);
  }

  /** A fresh layout under a new temporary directory. */
  static async layout(tcp = false): Promise<{ dir: string; layout: PermissionLayout }> {
    const dir = await Deno.makeTempDir({ prefix: "tollgate-test-" });
    const runtimeDir = join(dir, "run");
    return {
      dir,
      layout: {
        runtimeDirs: [runtimeDir],
        extprocSocket: tcp ? undefined : join(runtimeDir, "extproc.sock"),
        extprocAddress: tcp ? `127.0.0.1:${freePort()}` : undefined,
        pythonSocket: join(runtimeDir, "python.sock"),
        adminAddress: `127.0.0.1:${freePort()}`,
        configDir: join(dir, "config"),
        python: venvPython,
        moduleDirs: [...checkoutModuleDirs(), join(repoRoot, "tests/fixtures/policies")],
      },
    };
  }

  /**
   * The full config for a layout: the test's config plus listen, admin and sockets, and
   * `routes: []` when the test names none (the engine requires the key).
   */
  static fullConfig(layout: PermissionLayout, config: Record<string, unknown>): Record<string, unknown> {
    return {
      routes: [],
      ...config,
      listen: {
        ...(config.listen as object | undefined),
        ...(layout.extprocSocket ? { socket: layout.extprocSocket } : { address: layout.extprocAddress }),
      },
      admin: { address: layout.adminAddress },
      python: {
        ...(config.python as object | undefined),
        socket: layout.pythonSocket,
        interpreter: layout.python,
      },
      log: { level: "debug", format: "json", ...(config.log as object | undefined) },
    };
  }

  static async start(options: EngineProcessOptions): Promise<EngineProcess> {
    const base = options.layout ?? await EngineProcess.layout(options.tcp);
    const { dir } = base;
    const workers = (options.config.dataPlane as { workers?: number } | undefined)?.workers;
    const layout = {
      ...base.layout,
      extprocWorkers: workers,
      policyHosts: options.policyHosts,
      policyFiles: options.policyFiles,
      policyWriteDirs: options.policyWriteDirs,
      tracingHost: options.tracingHost,
      // A build of its own (next to its entry) loads its modules from there.
      moduleDirs: [...base.layout.moduleDirs ?? [], ...options.entry ? [dirname(options.entry)] : []],
    };
    await Deno.mkdir(layout.configDir!, { recursive: true });
    const configFile = join(layout.configDir!, options.layout ? "second.yaml" : "tollgate.yaml");
    await Deno.writeTextFile(configFile, stringify(EngineProcess.fullConfig(layout, options.config)));
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--quiet",
        ...engineFlags(layout),
        options.entry ?? join(repoRoot, "tests/support/test_main.ts"),
        "serve",
        "--config",
        configFile,
      ],
      cwd: repoRoot,
      env: options.env,
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const engine = new EngineProcess(dir, layout, configFile, child);
    if (!options.noWait) {
      try {
        await waitFor(
          "Tollgate to be ready",
          async () => (await fetch(`${engine.adminUrl}/readyz`)).ok,
          30_000,
        );
      } catch (error) {
        await engine.stop();
        throw new Error(`${(error as Error).message}\n${engine.lines.join("\n")}`);
      }
    }
    return engine;
  }

  /** The engine's process id (the engine itself: it runs as `deno run`, not under a shell). */
  get pid(): number {
    return this.child.pid;
  }

  get adminUrl(): string {
    return `http://${this.layout.adminAddress}`;
  }

  /** Where Envoy should connect. */
  /** Where Envoy reaches the engine: one socket (or address) per data-plane worker. */
  get extproc(): ExtProcEndpoints {
    const workers = this.layout.extprocWorkers ?? 1;
    const { extprocSocket, extprocAddress } = this.layout;
    return extprocSocket
      ? { sockets: Array.from({ length: workers }, (_, i) => workerSocket(extprocSocket, i, workers)) }
      : { addresses: Array.from({ length: workers }, (_, i) => workerAddress(extprocAddress!, i, workers)) };
  }

  /** Replaces the config file (the engine watches it). */
  async writeConfig(config: Record<string, unknown>): Promise<void> {
    const tmp = `${this.configFile}.tmp`;
    await Deno.writeTextFile(tmp, stringify(EngineProcess.fullConfig(this.layout, config)));
    await Deno.rename(tmp, this.configFile);
  }

  /** Parsed JSON log records (non-JSON lines are skipped). */
  records(): Record<string, unknown>[] {
    return this.lines.flatMap((line) => {
      try {
        return [JSON.parse(line)];
      } catch {
        return [];
      }
    });
  }

  /** Resolves with the exit code once the process ends. */
  async exited(): Promise<number> {
    const status = await this.child.status;
    await this.#output;
    return status.code;
  }

  /** Sends `signal` (default SIGTERM) and waits for the exit code; cleans up the directory. */
  async stop(signal: Deno.Signal = "SIGTERM"): Promise<number> {
    try {
      this.child.kill(signal);
    } catch {
      // already exited
    }
    const code = await this.exited();
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
    return code;
  }
}
