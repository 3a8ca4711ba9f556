/**
 * The streaming upstream of the `sse-*` bench scenarios: answers every request with a
 * server-sent-events stream of EVENTS events, one every millisecond (so Envoy forwards each
 * as its own chunk), each an LLM-style JSON token with a `usage` field.
 *
 * Usage: deno run --allow-net scripts/bench/sse_upstream.ts PORT
 */
export const EVENTS = 100;

const encoder = new TextEncoder();
const events = Array.from(
  { length: EVENTS },
  (_, i) => encoder.encode(`data: {"token":"t${i}","usage":{"completion_tokens":${i + 1}}}\n\n`),
);

if (import.meta.main) {
  const port = Number(Deno.args[0]);
  Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, (request) => {
    request.body?.cancel();
    let next = 0;
    const body = new ReadableStream<Uint8Array>({
      async pull(controller) {
        if (next > 0) await new Promise((resolve) => setTimeout(resolve, 1));
        if (next === EVENTS) return controller.close();
        controller.enqueue(events[next++]);
      },
    });
    return new Response(body, { headers: { "content-type": "text/event-stream", "x-upstream": "bench" } });
  });
}
