/**
 * The upstream the integration tests put behind Envoy: records every request it receives
 * and answers like `deno task echo` (a JSON echo; `/cookies...` sets two cookies).
 */
import { echoResponse } from "../../scripts/echo_upstream.ts";
import { freePort } from "./ports.ts";

export interface ReceivedRequest {
  readonly method: string;
  readonly path: string;
  readonly headers: Headers;
  readonly body: Uint8Array;
}

export class Upstream {
  private constructor(
    readonly port: number,
    private readonly server: Deno.HttpServer,
    readonly received: ReceivedRequest[],
  ) {}

  static start(): Upstream {
    const port = freePort();
    const received: ReceivedRequest[] = [];
    const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (request) => {
      const url = new URL(request.url);
      const body = new Uint8Array(await request.arrayBuffer());
      received.push({
        method: request.method,
        path: url.pathname + url.search,
        headers: request.headers,
        body,
      });
      return echoResponse(request, body);
    });
    return new Upstream(port, server, received);
  }

  /** Requests received whose path starts with `prefix`. */
  requestsTo(prefix: string): ReceivedRequest[] {
    return this.received.filter((r) => r.path.startsWith(prefix));
  }

  async stop(): Promise<void> {
    await this.server.shutdown();
  }
}
