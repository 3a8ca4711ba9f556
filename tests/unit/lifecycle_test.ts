/**
 * Policy instances are closed when their chain is dropped, never while a request uses it;
 * a policy call's signal fires when it times out or Envoy cancels the exchange.
 */
import assert from "node:assert/strict";
import type { EngineConfig } from "../../src/config/types.ts";
import { runPolicies } from "../../src/chain/run.ts";
import { ExchangeState } from "../../src/chain/state.ts";
import { RouteTable } from "../../src/kernel/routes.ts";
import type { Policy } from "../../src/sdk/mod.ts";
import { clientAddressOf } from "../../src/extproc/address.ts";
import { chain, entry } from "../support/chains.ts";

function tableWith(closed: string[], fail = false): RouteTable {
  const closing = (name: string) => ({
    onRequest: () => undefined,
    close() {
      closed.push(name);
      if (fail) throw new Error("close failed");
    },
  });
  return new RouteTable(
    {} as EngineConfig,
    new Map([["r", chain(entry("a:v1", closing("a")), entry("b:v1", closing("b")))]]),
  );
}

Deno.test("a retired table closes its instances once its last request has finished", async () => {
  const closed: string[] = [];
  const table = tableWith(closed);
  table.acquire();
  table.acquire();
  const done = table.retire();
  table.release();
  await new Promise((resolve) => setTimeout(resolve, 10));
  assert.deepEqual(closed, [], "still in use by one request");
  table.release();
  await done;
  assert.deepEqual(closed.sort(), ["a", "b"]);
});

Deno.test("a retired idle table closes at once; a failing close() is logged, not thrown", async () => {
  const closed: string[] = [];
  await tableWith(closed, true).retire();
  assert.deepEqual(closed.sort(), ["a", "b"]);
});

Deno.test("source.address becomes a bare IP; anything else is no address", () => {
  assert.equal(clientAddressOf("203.0.113.7:51234"), "203.0.113.7");
  assert.equal(clientAddressOf("[2001:db8::1]:443"), "2001:db8::1");
  assert.equal(clientAddressOf("2001:db8::1"), "2001:db8::1");
  assert.equal(clientAddressOf("/var/run/envoy.sock"), undefined);
  assert.equal(clientAddressOf(undefined), undefined);
  assert.equal(clientAddressOf("envoy_internal"), undefined);
});

Deno.test("a retired table disposes an instance with [Symbol.asyncDispose], instead of close() when both exist", async () => {
  const calls: string[] = [];
  const disposable: Policy = {
    onRequest: () => undefined,
    [Symbol.asyncDispose]: () => Promise.resolve(void calls.push("disposable: asyncDispose")),
  };
  const both: Policy = {
    onRequest: () => undefined,
    close: () => void calls.push("both: close"),
    [Symbol.asyncDispose]: () => Promise.resolve(void calls.push("both: asyncDispose")),
  };
  await new RouteTable(
    {} as EngineConfig,
    new Map([["r", chain(entry("d:v1", disposable), entry("b:v1", both))]]),
  ).retire();
  assert.deepEqual(calls.sort(), ["both: asyncDispose", "disposable: asyncDispose"]);
});

Deno.test("ctx.signal: fires with a TimeoutError at the policy's timeout, with an AbortError when Envoy cancels", async () => {
  let seen: AbortSignal | undefined;
  const waits: Policy = {
    onRequest: (ctx) => {
      seen = ctx.signal;
      return new Promise((resolve) => ctx.signal.addEventListener("abort", () => resolve(undefined)));
    },
  };
  const c = chain(entry("waits:v1", waits, { timeoutMs: 20 }));
  const timedOut = await runPolicies(c.request, 0, 1, "request", new ExchangeState({ name: "r" }));
  assert.equal(timedOut?.statusCode, 504);
  assert.equal(seen?.aborted, true);
  assert.equal((seen?.reason as DOMException).name, "TimeoutError");
  assert.match((seen?.reason as DOMException).message, /waits:v1 exceeded its 20ms timeout/);

  const state = new ExchangeState({ name: "r" });
  const running = runPolicies(
    chain(entry("waits:v1", waits)).request,
    0,
    1,
    "request",
    state,
    undefined,
    5000,
  );
  const first = seen!;
  assert.equal(first.aborted, false, "a new call gets its own signal");
  state.cancel();
  assert.equal((first.reason as DOMException).name, "AbortError");
  assert.equal(state.requestView.signal.aborted, true, "a signal asked for after the cancel is born aborted");
  assert.equal(await running, undefined, "the policy stopped when told to");
});
