import assert from "node:assert/strict";
import { Accumulator } from "../../src/chain/accumulate.ts";
import { runPolicies } from "../../src/chain/run.ts";
import { Chunk, type ChunkContext, type Policy } from "../../src/sdk/mod.ts";
import { chain, entry, type EntryOptions } from "../support/chains.ts";
import { requestState } from "../support/policies.ts";
import { feed } from "../support/streams.ts";

const utf8 = new TextEncoder();
const text = new TextDecoder();
const STREAM_BOTH = { requestBodyMode: "STREAM", responseBodyMode: "STREAM" } as const;

/** A chunk policy that appends `[tag]` to what it gets and records what it saw. */
function tagger(tag: string, seen: string[] = []): Policy {
  const onChunk = (ctx: ChunkContext, chunk: Uint8Array) => {
    seen.push(`${ctx.chunkIndex}${ctx.endOfStream ? "$" : ""}:${text.decode(chunk)}`);
    return Chunk.replace(text.decode(chunk) + `[${tag}]`);
  };
  return { onRequestChunk: onChunk, onResponseChunk: onChunk };
}

const streaming = (options: EntryOptions = {}): EntryOptions => ({ mode: STREAM_BOTH, ...options });

Deno.test("accumulator: lines, SSE events (LF and CRLF), the cap, and the end of the body", () => {
  const lines = new Accumulator({ accumulate: "line", maxAccumulatedBytes: 100 }, 100);
  assert.equal(text.decode(lines.take(utf8.encode("a\nb"), false)), "a\n");
  assert.equal(lines.held, 1);
  assert.equal(text.decode(lines.take(utf8.encode("c"), false)), "");
  assert.equal(text.decode(lines.take(utf8.encode("\nd"), true)), "bc\nd", "the end hands over the rest");
  const events = new Accumulator({ accumulate: "sse-event", maxAccumulatedBytes: 100 }, 100);
  assert.equal(text.decode(events.take(utf8.encode("data: 1\n\ndata: 2\n"), false)), "data: 1\n\n");
  assert.equal(text.decode(events.take(utf8.encode("\r\n"), false)), "");
  assert.equal(
    text.decode(events.take(utf8.encode("data: 3\r\n\r\n"), false)),
    "data: 2\n\r\ndata: 3\r\n\r\n",
  );
  const capped = new Accumulator({ accumulate: "line", maxAccumulatedBytes: 8 }, 8);
  assert.equal(text.decode(capped.take(utf8.encode("12345"), false)), "");
  assert.equal(text.decode(capped.take(utf8.encode("6789"), false)), "123456789", "at the cap: what is held");
  const none = new Accumulator({ accumulate: "none", maxAccumulatedBytes: 8 }, 8);
  const bytes = utf8.encode("as is");
  assert.equal(none.take(bytes, false), bytes, "no accumulation: the very same chunk");
});

Deno.test("chunk policies run in order on the previous one's output, with per-policy chunk indices", async () => {
  const seen: string[] = [];
  const c = chain(entry("a:v1", tagger("a", seen), streaming()), entry("b:v1", tagger("b"), streaming()));
  const request = await feed(c.requestStreaming, "request", ["x", "y", ""]);
  assert.deepEqual(request.out, ["x[a][b]", "y[a][b]", "[a][b]"]);
  assert.deepEqual(seen, ["0:x", "1:y", "2$:"]);
  const response = await feed(c.responseStreaming, "response", ["x"]);
  assert.deepEqual(response.out, ["x[b][a]"], "responses in reverse chain order");
});

Deno.test("accumulating stages: a policy sees only whole lines; nothing is handed over before one", async () => {
  const seen: string[] = [];
  const c = chain(entry("a:v1", tagger("a", seen), streaming({ streaming: { accumulate: "line" } })));
  const { out } = await feed(c.requestStreaming, "request", ["he", "llo\nwor", "ld"]);
  assert.deepEqual(out, ["", "hello\n[a]", "world[a]"]);
  assert.deepEqual(seen, ["0:hello\n", "1$:world"]);
});

Deno.test("shared metadata is visible and writable across chunks", async () => {
  const policy: Policy = {
    onRequestChunk(ctx, chunk) {
      ctx.shared.metadata.bytes = Number(ctx.shared.metadata.bytes ?? 0) + chunk.byteLength;
      return ctx.endOfStream ? Chunk.replace(`total ${ctx.shared.metadata.bytes}`) : undefined;
    },
  };
  const { out, state } = await feed([entry("count:v1", policy, streaming())], "request", ["abc", "de", ""]);
  assert.deepEqual(out, ["abc", "de", "total 5"]);
  assert.equal(state.shared.metadata.bytes, 5);
});

Deno.test("Chunk.end: an immediate response (400 JSON by default, or the policy's)", async () => {
  const ender = (response?: { statusCode: number }): Policy => ({
    onRequestChunk: (_ctx, chunk) => text.decode(chunk).includes("stop") ? Chunk.end(response) : undefined,
  });
  assert.deepEqual((await feed([entry("e:v1", ender(), streaming())], "request", ["go", "stop", "x"])).out, [
    "go",
    { end: 400 },
  ]);
  const custom = await feed([entry("e:v1", ender({ statusCode: 413 }), streaming())], "request", ["stop"]);
  assert.deepEqual(custom.out, [{ end: 413 }]);
});

Deno.test("failures mid-stream follow onFailure: deny ends, continue forwards, skipRemaining bypasses", async () => {
  const failing: Policy = {
    onRequestChunk: (_ctx, chunk) => {
      if (text.decode(chunk).includes("boom")) throw new Error("boom");
      return Chunk.replace(text.decode(chunk) + "[f]");
    },
  };
  const run = (onFailure: "deny" | "continue" | "skipRemaining") =>
    feed(
      [entry("f:v1", failing, streaming({ onFailure })), entry("t:v1", tagger("t"), streaming())],
      "request",
      ["1", "boom", "3"],
    );
  assert.deepEqual((await run("deny")).out, ["1[f][t]", { end: 500 }]);
  assert.deepEqual((await run("continue")).out, ["1[f][t]", "boom[t]", "3[f][t]"]);
  assert.deepEqual((await run("skipRemaining")).out, ["1[f][t]", "boom", "3"]);
});

Deno.test("an async chunk handler past its timeout fails with the timeout kind (504 under deny)", async () => {
  const slow: Policy = { onRequestChunk: () => new Promise((r) => setTimeout(r, 200)) };
  const { out } = await feed([entry("s:v1", slow, streaming({ timeoutMs: 10 }))], "request", ["x"]);
  assert.deepEqual(out, [{ end: 504 }]);
});

Deno.test("a wrong return value from a chunk handler is a policy failure", async () => {
  const wrong: Policy = { onRequestChunk: () => ({ kind: "upstream-request" }) as never };
  assert.deepEqual((await feed([entry("w:v1", wrong, streaming())], "request", ["x"])).out, [{ end: 500 }]);
});

Deno.test("mixing BUFFER and STREAM buffers the direction: the streaming policy gets the whole body once", async () => {
  const seen: string[] = [];
  const buffering: Policy = { onRequest: (ctx) => void seen.push(`buffered:${ctx.body?.text()}`) };
  const c = chain(
    entry("buf:v1", buffering, { mode: { requestBodyMode: "BUFFER" } }),
    entry("a:v1", tagger("a", seen), streaming()),
  );
  assert.equal(c.requestStreaming.length, 0, "not streamed");
  assert.equal(c.needsRequestBody, true);
  const state = requestState({ body: "whole" });
  assert.equal(
    await runPolicies(c.request, c.requestHeadersCount, c.request.length, "request", state),
    undefined,
  );
  assert.deepEqual(seen, ["buffered:whole", "0$:whole"]);
  assert.equal(state.requestBody?.text(), "whole[a]");
  assert.equal(state.changes.body, true);
});

Deno.test("a streamed direction runs every header handler on the headers", () => {
  const header: Policy = {};
  const c = chain(entry("a:v1", tagger("a"), streaming()), entry("h:v1", header));
  assert.equal(c.requestHeadersCount, 2);
  assert.equal(c.needsRequestBody, false);
  assert.deepEqual(c.requestStreaming.map((e) => e.label), ["a:v1"]);
});
