/**
 * The bench's Envoy: the shipped bootstrap (docs/examples/envoy.yaml, through the test
 * harness's `testBootstrap`, so ports, socket, routes and the graceful-close runtime flag
 * are set exactly as in the integration tests) plus a second listener that is the upstream.
 * That upstream answers with Envoy's own `direct_response`, so it costs next to nothing and
 * no extra process competes for the two cores.
 *
 * Changes from the example, the same in every scenario: no access log (it would be the
 * same per-request cost everywhere and fill the disk), and for `baseline` no ext_proc
 * filter and no Tollgate cluster at all.
 */
import { Envoy, type EnvoyRoute, testBootstrap } from "../../tests/support/envoy.ts";
import { freePort } from "../../tests/support/ports.ts";

// deno-lint-ignore no-explicit-any
type Yaml = any;

/** Body of every upstream answer: small, so the response side costs the same everywhere. */
const UPSTREAM_BODY = '{"ok":true}';

/**
 * Request headers the upstream reflects in its `x-upstream-saw` answer header, separated
 * by `|` (empty when absent), so the bench can check that each scenario's policies did their work.
 */
export const REFLECTED = [
  "x-bench-3",
  "x-client-debug",
  "x-python-policy",
  "x-json-fields",
  "content-length",
];

export interface BenchEnvoyOptions {
  readonly routes: readonly EnvoyRoute[];
  /** The ext_proc server's sockets (one per worker); undefined removes the ext_proc filter (`baseline`). */
  readonly extprocSockets: readonly string[] | undefined;
  /** Envoy worker threads (`--concurrency`). */
  readonly workers: number;
  /** A streaming upstream already listening on this port, instead of Envoy's direct response. */
  readonly upstreamPort?: number;
}

function upstreamListener(port: number): Yaml {
  return {
    name: "upstream",
    address: { socket_address: { address: "127.0.0.1", port_value: port } },
    filter_chains: [{
      filters: [{
        name: "envoy.filters.network.http_connection_manager",
        typed_config: {
          "@type":
            "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
          stat_prefix: "upstream_http",
          codec_type: "AUTO",
          route_config: {
            name: "upstream",
            virtual_hosts: [{
              name: "upstream",
              domains: ["*"],
              routes: [{
                match: { prefix: "/" },
                direct_response: { status: 200, body: { inline_string: UPSTREAM_BODY } },
                response_headers_to_add: [
                  ["content-type", "application/json"],
                  ["x-upstream", "bench"],
                  ["x-upstream-saw", REFLECTED.map((h) => `%REQ(${h})%`).join("|")],
                ].map(([key, value]) => ({
                  header: { key, value },
                  append_action: "OVERWRITE_IF_EXISTS_OR_ADD",
                })),
              }],
            }],
          },
          // Read the whole request before answering, as a real upstream would: a direct
          // response sent before the body arrived makes Envoy close the connection.
          http_filters: [{
            name: "envoy.filters.http.buffer",
            typed_config: {
              "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
              max_request_bytes: 1024 * 1024,
            },
          }, {
            name: "envoy.filters.http.router",
            typed_config: { "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router" },
          }],
        },
      }],
    }],
  };
}

/** The bench bootstrap for one scenario. */
export async function benchBootstrap(
  options: BenchEnvoyOptions,
  ports: { listen: number; admin: number; upstream: number },
): Promise<Yaml> {
  const config = await testBootstrap(
    {
      routes: options.routes,
      upstreamPort: ports.upstream,
      extproc: { sockets: options.extprocSockets ?? ["/nonexistent"] },
    },
    ports.listen,
    ports.admin,
    "/dev/null",
  );
  const hcm = config.static_resources.listeners[0].filter_chains[0].filters[0].typed_config;
  delete hcm.access_log;
  if (options.extprocSockets === undefined) {
    hcm.http_filters = hcm.http_filters.filter((f: Yaml) => f.name !== "envoy.filters.http.ext_proc");
    config.static_resources.clusters = config.static_resources.clusters.filter((c: Yaml) =>
      c.name !== "tollgate"
    );
  }
  if (options.upstreamPort === undefined) {
    config.static_resources.listeners.push(upstreamListener(ports.upstream));
  }
  return config;
}

/** Starts the bench Envoy for one scenario (the test harness's Envoy, on the bench bootstrap). */
export function startBenchEnvoy(options: BenchEnvoyOptions): Promise<Envoy> {
  const ports = { listen: freePort(), admin: freePort(), upstream: options.upstreamPort ?? freePort() };
  return Envoy.launch(() => benchBootstrap(options, ports), ports.listen, ports.admin, [
    "--concurrency",
    String(options.workers),
  ]);
}
