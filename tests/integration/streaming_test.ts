/**
 * Streamed bodies (STREAM body modes) through a real Envoy and an engine process, against an
 * upstream that streams server-sent events slowly (one every 50 ms).
 */
import assert from "node:assert/strict";
import zlib from "node:zlib";
import { memory } from "../../scripts/bench/proc_stats.ts";
import { EngineProcess } from "../support/engine_process.ts";
import { Envoy } from "../support/envoy.ts";
import { freePort } from "../support/ports.ts";

const EVENT_GAP_MS = 50;
const utf8 = new TextEncoder();
const tag = (name: string, extra: Record<string, unknown> = {}, onFailure = "deny") => ({
  name: "chunk-tag",
  version: "v1",
  parameters: { tag: name, ...extra },
  onFailure,
});

/** Routes: Envoy route name = Tollgate route name = the path's first segment. */
const routes: { name: string; policies: unknown[] }[] = [
  { name: "order", policies: [tag("a"), tag("b")] },
  {
    name: "llm",
    policies: [{
      name: "sse-filter",
      version: "v1",
      parameters: { removeFields: ["$.usage"], drop: [{ path: "$.ping" }] },
    }],
  },
  {
    name: "redact",
    policies: [{
      name: "body-regex-redact",
      version: "v1",
      parameters: { patterns: ["\\d{16}"], replacement: "[CARD]", maxMatchBytes: 16 },
    }],
  },
  { name: "cap", policies: [tag("t")] },
  { name: "gzip", policies: [tag("z")] },
  { name: "fail-deny", policies: [tag("f", { failOn: "boom" })] },
  { name: "fail-continue", policies: [tag("f", { failOn: "boom" }, "continue")] },
  { name: "fail-skip", policies: [tag("f", { failOn: "boom" }, "skipRemaining")] },
  { name: "end", policies: [tag("e", { endOn: "stop" })] },
  { name: "upload", policies: [tag("u", { passThrough: true })] },
  {
    name: "tokens",
    policies: [{ name: "sse-token-count", version: "v1", parameters: { maxTokens: 5, charsPerToken: 1 } }],
  },
  // Python between TypeScript: request order py, a, b; response order b, a, py.
  {
    name: "mixed",
    policies: [{ name: "py-chunk", version: "v1", parameters: { tag: "p" } }, tag("a"), tag("b")],
  },
];

/** The upstream: /<route>/sse streams events; /<route>/echo streams the request body back. */
function startUpstream(): { port: number; finished: Map<string, number>; server: Deno.HttpServer } {
  const port = freePort();
  const finished = new Map<string, number>();
  const server = Deno.serve({ hostname: "127.0.0.1", port, onListen: () => {} }, async (request) => {
    const url = new URL(request.url);
    const events = Number(url.searchParams.get("events") ?? "5");
    const kind = url.searchParams.get("kind") ?? "plain";
    if (url.pathname.endsWith("/echo")) {
      let bytes = 0;
      if (url.searchParams.has("count")) {
        for await (const chunk of request.body ?? []) bytes += chunk.byteLength;
        return Response.json({ bytes });
      }
      return new Response(await request.arrayBuffer());
    }
    const id = url.searchParams.get("id") ?? "";
    const gzip = kind === "gzip" ? zlib.createGzip() : undefined;
    const body = new ReadableStream<Uint8Array>({
      async start(controller) {
        const send = (text: string) => {
          if (!gzip) return controller.enqueue(utf8.encode(text));
          gzip.write(text);
          return new Promise<void>((resolve) =>
            gzip.flush(() => {
              let piece: Uint8Array | null;
              while ((piece = gzip.read()) !== null) controller.enqueue(piece);
              resolve();
            })
          );
        };
        try {
          for (let i = 0; i < events; i++) {
            if (kind === "tokens") {
              await send(`data: ${JSON.stringify({ choices: [{ delta: { content: "abc" } }] })}\n\n`);
            } else if (kind === "llm") {
              await send(
                `data: ${JSON.stringify(i === 1 ? { ping: true } : { token: `t${i}`, usage: { n: i } })}\n\n`,
              );
            } else if (kind === "split") {
              // A card number cut in two by the chunking.
              await send("card 41111111");
              await new Promise((r) => setTimeout(r, EVENT_GAP_MS));
              await send("11111111 end\n");
            } else if (kind === "long") {
              // One 200-byte line in 40-byte pieces: more than the 64-byte cap is held at once.
              for (let k = 0; k < 5; k++) {
                await send("x".repeat(40));
                await new Promise((r) => setTimeout(r, 20));
              }
              await send("\n");
            } else if (kind === "fail" && i === 2) {
              await send("data: boom\n\n");
            } else if (kind === "end" && i === 2) {
              await send("data: stop\n\n");
            } else {
              await send(`data: ${i}\n\n`);
            }
            await new Promise((r) => setTimeout(r, EVENT_GAP_MS));
          }
          if (gzip) {
            gzip.end();
            await new Promise((r) => gzip.once("end", r).resume?.());
          }
          controller.close();
        } catch {
          // The client went away.
        } finally {
          finished.set(id, performance.now());
          gzip?.close();
        }
      },
    });
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream",
        ...(gzip ? { "content-encoding": "gzip" } : {}),
      },
    });
  });
  return { port, finished, server };
}

async function readAll(response: Response): Promise<string> {
  return await response.text();
}

Deno.test("streamed bodies through a real Envoy", async (t) => {
  const upstream = startUpstream();
  const engine = await EngineProcess.start({ config: { routes } });
  const envoy = await Envoy.start({
    routes: routes.map((r) => ({ name: r.name, prefix: `/${r.name}/` })),
    upstreamPort: upstream.port,
    extproc: engine.extproc,
  });
  const url = (path: string) => `${envoy.url}${path}`;
  try {
    await t.step(
      "SSE streams: the first event arrives before the upstream finished, tagged in response order",
      async () => {
        const response = await fetch(url("/order/sse?events=6&id=first"));
        assert.equal(response.status, 200);
        assert.equal(response.headers.get("content-length"), null);
        const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
        const first = await reader.read();
        const firstAt = performance.now();
        assert.match(
          first.value ?? "",
          /^data: 0\[b\]\[a\]\n/,
          "response policies run in reverse chain order",
        );
        let rest = first.value ?? "";
        for (let r = await reader.read(); !r.done; r = await reader.read()) rest += r.value;
        const finishedAt = upstream.finished.get("first");
        assert.ok(
          finishedAt !== undefined && firstAt < finishedAt,
          "the first event came before the upstream ended",
        );
        assert.equal(rest, [0, 1, 2, 3, 4, 5].map((i) => `data: ${i}[b][a]\n\n`).join(""));
      },
    );

    await t.step("request chunks run in chain order, response chunks in reverse", async () => {
      const response = await fetch(url("/order/echo"), { method: "POST", body: "one\ntwo\n" });
      // The echo's response is streamed back through the response handlers too (reverse order).
      assert.equal(await readAll(response), "one[a][b][b][a]\ntwo[a][b][b][a]\n");
    });

    await t.step("TypeScript and Python chunk policies rewrite events in order, as they stream", async () => {
      const response = await fetch(url("/mixed/sse?events=4&id=mixed"));
      const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
      const first = await reader.read();
      const firstAt = performance.now();
      // b, then a (TypeScript, per line), then py-chunk (Python: "[p<status>]" after each event).
      assert.equal(first.value, "data: 0[b][a]\n\n[p200]");
      let text = first.value ?? "";
      for (let r = await reader.read(); !r.done; r = await reader.read()) text += r.value;
      assert.ok(firstAt < upstream.finished.get("mixed")!, "the first event came before the upstream ended");
      const events = [0, 1, 2, 3].map((i) => `data: ${i}[b][a]\n\n[p200]`).join("");
      assert.equal(text, events + "[p$200]", "py-chunk marks the (empty) last chunk with $");
      const upload = await readAll(
        await fetch(url("/mixed/echo"), { method: "POST", body: "one\n\ntwo\n\n" }),
      );
      // Request: py-chunk, a, b; then the echoed body back through b, a, py-chunk.
      // (py-chunk tags the end of each chunk it gets, so where "[p…]" lands depends on how Envoy
      // cut the body; that it comes before a's and b's tags does not.)
      assert.match(upload, /^one\[a\]\[b\]\[b\]\[a\]\n\ntwo\[a\]\[b\]\[b\]\[a\]\n\n/);
      assert.match(upload, /\[p\$?\]\[a\]\[b\]\[b\]\[a\]\[p\$200\]$/);
    });

    await t.step(
      "sse-token-count (Python) ends a stream over its token limit with an error event",
      async () => {
        const response = await fetch(url("/tokens/sse?kind=tokens&events=6"));
        // The stream is reset after the error event: keep what arrived before.
        let text = "";
        const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
        try {
          for (let r = await reader.read(); !r.done; r = await reader.read()) text += r.value;
        } catch {
          // reset
        }
        // 3 tokens per event at 1 character per token: the second event goes over 5.
        assert.match(
          text,
          /^data: \{"choices":\[\{"delta":\{"content":"abc"\}\}\]\}\n\nevent: tollgate\.token_limit\n/,
        );
        assert.equal(text.split("abc").length - 1, 1, `only the event under the limit went out: ${text}`);
      },
    );

    await t.step("sse-filter strips a field from every event and drops matching ones", async () => {
      const text = await readAll(await fetch(url("/llm/sse?kind=llm&events=4")));
      assert.equal(
        text,
        ['{"token":"t0"}', '{"token":"t2"}', '{"token":"t3"}'].map((d) => `data: ${d}\n\n`).join(""),
      );
    });

    await t.step("body-regex-redact redacts a card number split across two chunks", async () => {
      const text = await readAll(await fetch(url("/redact/sse?kind=split&events=1")));
      assert.equal(text, "card [CARD] end\n");
      const upload = await readAll(
        await fetch(url("/redact/echo"), { method: "POST", body: "pay 4111111111111111 now" }),
      );
      assert.equal(upload, "pay [CARD] now");
    });

    await t.step(
      "accumulation cap: a line longer than maxAccumulatedBytes is handed over in pieces",
      async () => {
        const text = await readAll(await fetch(url("/cap/sse?kind=long&events=1")));
        assert.equal(text.replaceAll("[t]", ""), "x".repeat(200) + "\n");
        assert.ok(text.split("[t]").length - 1 >= 3, `200 bytes at a 64-byte cap come in pieces: ${text}`);
      },
    );

    await t.step(
      "a gzip upstream: policies read plain events, the client gets them uncompressed",
      async () => {
        const response = await fetch(url("/gzip/sse?kind=gzip&events=3"));
        assert.equal(response.headers.get("content-encoding"), null);
        assert.equal(await readAll(response), [0, 1, 2].map((i) => `data: ${i}[z]\n\n`).join(""));
      },
    );

    await t.step("failure in a request chunk under deny: the failure response", async () => {
      const response = await fetch(url("/fail-deny/echo"), { method: "POST", body: "ok\nboom\n" });
      assert.equal(response.status, 500);
      assert.equal((await response.json()).error, "policy_error");
    });

    await t.step("failure in a response chunk under deny: the stream is cut short", async () => {
      const response = await fetch(url("/fail-deny/sse?kind=fail&events=5"));
      assert.equal(response.status, 200);
      const text = await response.text().catch(() => "(reset)");
      assert.ok(!text.includes("data: 4"), `the stream ended at the failure: ${text}`);
    });

    await t.step(
      "failure under continue: the failed chunk passes as it was, the rest is tagged",
      async () => {
        const text = await readAll(await fetch(url("/fail-continue/sse?kind=fail&events=4")));
        assert.equal(text, "data: 0[f]\n\ndata: 1[f]\n\ndata: boom\n\ndata: 3[f]\n\n");
      },
    );

    await t.step(
      "failure under skipRemaining: the policy is bypassed for the rest of the stream",
      async () => {
        const text = await readAll(await fetch(url("/fail-skip/sse?kind=fail&events=4")));
        assert.equal(text, "data: 0[f]\n\ndata: 1[f]\n\ndata: boom\n\ndata: 3\n\n");
      },
    );

    await t.step(
      "Chunk.end on a request chunk answers the client; the upstream body is not sent",
      async () => {
        const response = await fetch(url("/end/echo"), { method: "POST", body: "go\nstop\n" });
        assert.equal(response.status, 422);
        assert.equal(await response.text(), "ended by e");
      },
    );

    await t.step("cancelling mid-stream: the engine serves on", async () => {
      for (let i = 0; i < 20; i++) {
        const controller = new AbortController();
        const response = await fetch(url(`/order/sse?events=40&id=c${i}`), { signal: controller.signal });
        const reader = response.body!.getReader();
        await reader.read();
        controller.abort();
        await reader.cancel().catch(() => {});
      }
      const text = await readAll(await fetch(url("/order/sse?events=2")));
      assert.equal(text, "data: 0[b][a]\n\ndata: 1[b][a]\n\n");
    });

    await t.step(
      "a 50 MB chunked upload streams through a request chunk policy in bounded memory",
      async () => {
        const upload = async () => {
          const piece = new Uint8Array(64 * 1024).fill(0x61);
          let sent = 0;
          const total = 50 * 1024 * 1024;
          const body = new ReadableStream<Uint8Array>({
            pull(controller) {
              if (sent >= total) return controller.close();
              controller.enqueue(piece);
              sent += piece.byteLength;
            },
          });
          const response = await fetch(url("/upload/echo?count"), { method: "POST", body });
          assert.equal(response.status, 200);
          assert.deepEqual(await response.json(), { bytes: total });
        };
        // The first upload lets the heap reach its working size (garbage not yet collected);
        // a second one must not add to it: nothing of a streamed body is kept.
        await upload();
        const before = (await memory(engine.pid)).rss;
        await upload();
        await upload();
        const grown = (await memory(engine.pid)).rss - before;
        assert.ok(grown < 20 * 1024 * 1024, `the engine grew by ${grown} bytes over two more 50 MB uploads`);
      },
    );
  } finally {
    await envoy.stop();
    await engine.stop();
    await upstream.server.shutdown();
  }
});
