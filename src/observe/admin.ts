/**
 * The admin HTTP endpoint (config `admin.address`): liveness, readiness, metrics and what
 * the engine is running. Bind it to loopback or a pod-internal address: it is not
 * authenticated.
 *
 *   GET /healthz   200 while the process serves
 *   GET /readyz    200 when ext_proc is listening and required runtimes are healthy, else 503
 *   GET /metrics   Prometheus text format
 *   GET /policies  the compiled-in policies (JSON)
 *   GET /routes    the current route table with each chain's phases (JSON)
 */
import { getLogger } from "@logtape/logtape";

const log = getLogger(["tollgate", "admin"]);

/** What the admin endpoint reports, supplied by the engine. */
export interface AdminSource {
  /** `quarantined`: policies failing too often, or caught by the watchdog (reported whether or not they make it unready). */
  readiness(): Promise<{ ready: boolean; reasons: string[]; quarantined?: readonly unknown[] }>;
  policies(): unknown;
  routes(): Promise<unknown>;
  /** Prometheus text of every registry (control plane and workers) combined. */
  metrics(): Promise<string>;
  readonly metricsContentType: string;
}

const json = (body: unknown, status = 200) =>
  new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json" },
  });

export interface AdminServer {
  readonly address: string;
  shutdown(): Promise<void>;
}

/** Starts the endpoint on `host:port`. */
export function startAdmin(address: string, source: AdminSource): Promise<AdminServer> {
  const separator = address.lastIndexOf(":");
  const hostname = address.slice(0, separator);
  const port = Number(address.slice(separator + 1));
  return new Promise((resolve, reject) => {
    try {
      const server = Deno.serve({
        hostname,
        port,
        onListen: () => {
          log.info("admin listening on http://{address}", { address });
          resolve({ address, shutdown: () => server.shutdown() });
        },
        onError: (error) => {
          log.error("admin request failed: {error}", { error: String(error) });
          return new Response("internal error\n", { status: 500 });
        },
      }, async (request) => {
        if (request.method !== "GET") return new Response("method not allowed\n", { status: 405 });
        switch (new URL(request.url).pathname) {
          case "/healthz":
            return json({ status: "ok" });
          case "/readyz": {
            const readiness = await source.readiness();
            return json(readiness, readiness.ready ? 200 : 503);
          }
          case "/metrics":
            return new Response(await source.metrics(), {
              headers: { "content-type": source.metricsContentType },
            });
          case "/policies":
            return json(source.policies());
          case "/routes":
            return json(await source.routes());
          default:
            return new Response("not found\n", { status: 404 });
        }
      });
    } catch (error) {
      reject(error);
    }
  });
}
