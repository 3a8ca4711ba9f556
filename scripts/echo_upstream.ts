/**
 * `deno task echo [--port 8080]`: an upstream for trying Tollgate by hand (and the one the
 * integration tests put behind Envoy). It answers every request with a JSON echo of what it
 * received (method, path, headers, body), so policy changes are visible in the response.
 * `/cookies...` also sets two cookies.
 */
import { parseArgs } from "node:util";

/** Builds the echo response for a request whose body was already read. */
export function echoResponse(request: Request, body: Uint8Array): Response {
  const url = new URL(request.url);
  const headers = new Headers({ "content-type": "application/json", "x-powered-by": "echo-upstream" });
  if (url.pathname.startsWith("/cookies")) {
    headers.append("set-cookie", "a=1; Path=/");
    headers.append("set-cookie", "b=2; Path=/");
  }
  const received: Record<string, string[]> = {};
  for (const [name, value] of request.headers) (received[name] ??= []).push(value);
  return new Response(
    JSON.stringify({
      method: request.method,
      path: url.pathname + url.search,
      headers: received,
      bodyLength: body.length,
      body: new TextDecoder().decode(body),
    }),
    { headers },
  );
}

if (import.meta.main) {
  const { values } = parseArgs({ args: Deno.args, options: { port: { type: "string", default: "8080" } } });
  Deno.serve(
    { hostname: "127.0.0.1", port: Number(values.port) },
    async (request) => echoResponse(request, new Uint8Array(await request.arrayBuffer())),
  );
}
