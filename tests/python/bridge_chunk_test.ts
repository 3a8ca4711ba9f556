/**
 * The bridge's chunk calls (runChunk) against the real executor: a chunk through a batch of
 * streaming Python policies in order, ends, failures under each rule, deadlines, metadata
 * carried across chunks, and per-exchange order when many exchanges' chunks interleave.
 */
import assert from "node:assert/strict";
import type { FailureRule } from "../../src/config/types.ts";
import type { ChunkBatchResult } from "../../src/chain/chain.ts";
import type { ExchangeState } from "../../src/chain/state.ts";
import type { PolicyFailure } from "../../src/chain/failure.ts";
import { request, startExecutor } from "../support/python_bridge.ts";

const text = (data: Uint8Array) => new TextDecoder().decode(data);
const bytes = (value: string) => new TextEncoder().encode(value);

/** The outcomes as short strings: forwarded, replaced, ended, ended:STATUS or error:KIND. */
function kinds(result: ChunkBatchResult): string[] {
  return result.outcomes.map((o) =>
    "error" in o
      ? `error:${(o.error as PolicyFailure).kind}`
      : o.kind === "ended" && o.response
      ? `ended:${o.response.statusCode}`
      : o.kind
  );
}

Deno.test({
  name: "runChunk against the real executor",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn(t) {
    const executor = await startExecutor();
    const tag = (name: string, params: Record<string, unknown> = {}, onFailure: FailureRule = "deny") =>
      executor.entry("py-chunk", { tag: name, ...params }, { onFailure });
    try {
      await t.step(
        "a chunk passes the batch's policies in order, each on the previous one's output",
        async () => {
          const state = request("/order", [["x-in", "1"]]);
          const entries = [await tag("A"), await tag("B"), await tag("C")];
          const result = await executor.bridge.runChunk(entries, "request", bytes("x"), false, 0, state);
          assert.deepEqual(kinds(result), ["replaced", "replaced", "replaced"]);
          assert.equal(text(result.data), "x[A][B][C]");
          assert.deepEqual(state.shared.metadata.seen, { A: [0], B: [0], C: [0] }, "metadata merged back");
        },
      );

      await t.step("response chunks see the status; the last chunk says so", async () => {
        const state = request("/response");
        state.status = 201;
        state.responseHeaders.append("content-type", "text/event-stream");
        const result = await executor.bridge.runChunk(
          [await tag("R")],
          "response",
          bytes("e"),
          true,
          3,
          state,
        );
        assert.equal(text(result.data), "e[R$201]");
        assert.deepEqual(state.shared.metadata.seen, { R: [3] });
      });

      await t.step("metadata carries from one chunk to the next", async () => {
        const state = request("/across");
        state.shared.metadata.before = "kept";
        const entries = [await tag("A")];
        for (let i = 0; i < 4; i++) {
          await executor.bridge.runChunk(entries, "request", bytes(`c${i}`), i === 3, i, state);
        }
        assert.deepEqual(state.shared.metadata, { before: "kept", seen: { A: [0, 1, 2, 3] } });
      });

      await t.step("an ended exchange stops the batch and carries the answer", async () => {
        const state = request("/end");
        const entries = [await tag("A"), await tag("B", { endOn: "stop" }), await tag("C")];
        const result = await executor.bridge.runChunk(
          entries,
          "request",
          bytes("please stop"),
          false,
          0,
          state,
        );
        assert.deepEqual(kinds(result), ["replaced", "ended:403"]);
        const ended = result.outcomes[1];
        assert.ok("kind" in ended && ended.kind === "ended" && ended.response);
        assert.deepEqual(ended.response.headers, { "x-ended-by": ["B"] });
        assert.equal(text(ended.response.body as Uint8Array), "ended");
        assert.deepEqual(state.shared.metadata.seen, { A: [0], B: [0] });
      });

      await t.step("a failing policy follows its rule", async () => {
        const expected: Record<FailureRule, [string[], string]> = {
          continue: [["replaced", "error:error", "replaced"], "bad[A][C]"],
          skipRemaining: [["replaced", "error:error"], "bad[A]"],
          deny: [["replaced", "error:error"], "bad[A]"],
        };
        for (const [rule, [outcomes, data]] of Object.entries(expected)) {
          const entries = [
            await tag("A"),
            await tag("B", { failOn: "bad" }, rule as FailureRule),
            await tag("C"),
          ];
          const result = await executor.bridge.runChunk(
            entries,
            "request",
            bytes("bad"),
            false,
            0,
            request("/f"),
          );
          assert.deepEqual(kinds(result), outcomes, rule);
          assert.equal(text(result.data), data, rule);
          const failure = result.outcomes[1];
          assert.ok("error" in failure);
          assert.match(
            (failure.error as PolicyFailure).message,
            /^py-chunk:v1: ValueError: chunk 0 contains 'bad'/,
          );
        }
      });

      await t.step("a policy without a chunk handler fails, and the chunk is left as it was", async () => {
        const stamp = await executor.entry("py-stamp", { label: "S" }, { onFailure: "continue" });
        const chunk = bytes("as is");
        const result = await executor.bridge.runChunk([stamp], "response", chunk, false, 0, request("/none"));
        assert.deepEqual(kinds(result), ["error:error"]);
        assert.equal(result.data, chunk, "nothing travelled back: the chunk sent is forwarded");
        assert.match(
          (result.outcomes[0] as { error: PolicyFailure }).error.message,
          /NotImplementedError: Stamp does not implement on_response_chunk/,
        );
      });

      await t.step(
        "a chunk call past its deadline fails every policy of the batch as a timeout",
        async () => {
          const slow = await executor.entry("py-chunk", { tag: "S", sleepMs: 1000 }, { timeoutMs: 100 });
          const next = await executor.entry("py-chunk", { tag: "B" }, { timeoutMs: 100 });
          const state = request("/slow");
          const started = performance.now();
          const chunk = bytes("late");
          const result = await executor.bridge.runChunk([slow, next], "request", chunk, false, 0, state);
          assert.deepEqual(kinds(result), ["error:timeout", "error:timeout"]);
          assert.equal(result.data, chunk);
          assert.ok(
            performance.now() - started < 900,
            "failed at the deadline, not when the policy finished",
          );
          assert.equal(executor.client.inFlight, 0);
        },
      );

      await t.step("many exchanges' chunks interleaved: each exchange's chunks run in order", async () => {
        const entries = [await tag("A", { jitterMs: 3 }), await tag("B")];
        const exchanges = Array.from({ length: 40 }, (_, e) => request(`/x/${e}`));
        const chunks = 8;
        const pending: [ExchangeState, number, Promise<ChunkBatchResult>][] = [];
        // Every call is made at once, without waiting, exchange after exchange for each chunk.
        for (let i = 0; i < chunks; i++) {
          for (const [e, state] of exchanges.entries()) {
            const chunk = bytes(`${e}.${i}`);
            pending.push([
              state,
              i,
              executor.bridge.runChunk(entries, "request", chunk, i === chunks - 1, i, state),
            ]);
          }
        }
        const order = new Map<ExchangeState, number[]>();
        for (const [state, i, call] of pending) {
          call.then(() => order.set(state, [...order.get(state) ?? [], i]));
        }
        for (const [state, i, call] of pending) {
          const result = await call;
          const e = exchanges.indexOf(state);
          assert.equal(
            text(result.data),
            `${e}.${i}[A${i === chunks - 1 ? "$" : ""}][B${i === chunks - 1 ? "$" : ""}]`,
          );
        }
        const indices = Array.from({ length: chunks }, (_, i) => i);
        for (const state of exchanges) {
          assert.deepEqual(order.get(state), indices, "answers came back in the order the chunks were sent");
          assert.deepEqual(
            state.shared.metadata.seen,
            { A: indices, B: indices },
            "every chunk's metadata kept",
          );
        }
        assert.equal(executor.client.inFlight, 0);
      });
    } finally {
      await executor.stop();
    }
  },
});
