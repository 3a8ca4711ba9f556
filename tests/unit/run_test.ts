import assert from "node:assert/strict";
import { checkActionFields } from "../../src/chain/apply.ts";
import { runPolicies } from "../../src/chain/run.ts";
import { ExchangeState } from "../../src/chain/state.ts";
import {
  Body,
  DEFAULT_IMMEDIATE_STATUS,
  ImmediateResponse,
  type Policy,
  UpstreamRequestModifications,
  type UpstreamRequestModificationsInit,
  UpstreamResponseModifications,
} from "../../src/sdk/mod.ts";
import { chain, entry } from "../support/chains.ts";

const appendTrace = (label: string): Policy => ({
  onRequest: (ctx) => {
    const seen = ctx.headers.getAll("x-trace").join(",");
    return new UpstreamRequestModifications({
      appendHeaders: { "x-trace": label },
      setHeaders: { [`x-seen-${label}`]: seen },
    });
  },
  onResponse: () => new UpstreamResponseModifications({ appendHeaders: { "x-trace": label } }),
});
const both = { mode: { requestHeaderMode: "PROCESS", responseHeaderMode: "PROCESS" } } as const;

function state() {
  const s = new ExchangeState({ name: "test-route" });
  s.shared.requestId = "req-1";
  return s;
}

Deno.test("request policies run in order and see earlier changes; response policies run in reverse", async () => {
  const c = chain(
    entry("a:v1", appendTrace("a"), both),
    entry("b:v1", appendTrace("b"), both),
    entry("c:v1", appendTrace("c"), both),
  );
  const s = state();
  assert.equal(await runPolicies(c.request, 0, c.request.length, "request", s), undefined);
  assert.deepEqual(s.requestHeaders.getAll("x-trace"), ["a", "b", "c"]);
  assert.equal(s.requestHeaders.get("x-seen-c"), "a,b");
  await runPolicies(c.response, 0, c.response.length, "response", s);
  assert.deepEqual(s.responseHeaders.getAll("x-trace"), ["c", "b", "a"]);
});

Deno.test("an immediate response stops the chain", async () => {
  let ran = false;
  const c = chain(
    entry("deny:v1", {
      onRequest: () =>
        new ImmediateResponse({ statusCode: 401, headers: { "www-authenticate": "Bearer" }, body: "no" }),
    }),
    entry("after:v1", { onRequest: () => void (ran = true) }),
  );
  const outcome = await runPolicies(c.request, 0, 2, "request", state());
  assert.equal(outcome?.statusCode, 401);
  assert.equal(outcome?.policy, "deny:v1");
  assert.deepEqual(outcome?.headers, [["www-authenticate", "Bearer"]]);
  assert.equal(new TextDecoder().decode(outcome?.body), "no");
  assert.equal(ran, false);
});

Deno.test("an immediate response is allowed in the response phase", async () => {
  const c = chain(entry("r:v1", { onResponse: () => new ImmediateResponse({ statusCode: 502 }) }, both));
  assert.equal((await runPolicies(c.response, 0, 1, "response", state()))?.statusCode, 502);
});

const failing: Policy = {
  onRequest: () => {
    throw new Error("boom");
  },
};
const marker = (name: string): Policy => ({
  onRequest: () => new UpstreamRequestModifications({ setHeaders: { [name]: "1" } }),
});

Deno.test("onFailure deny answers 500 with a JSON body naming the policy and request", async () => {
  const s = state();
  const c = chain(entry("bad:v1", failing), entry("next:v1", marker("x-next")));
  const outcome = await runPolicies(c.request, 0, 2, "request", s);
  assert.equal(outcome?.statusCode, 500);
  assert.deepEqual(JSON.parse(new TextDecoder().decode(outcome?.body)), {
    error: "policy_error",
    policy: "bad:v1",
    requestId: "req-1",
  });
  assert.equal(s.requestHeaders.has("x-next"), false);
});

Deno.test("onFailure continue skips the failed policy only", async () => {
  const s = state();
  const c = chain(entry("bad:v1", failing, { onFailure: "continue" }), entry("next:v1", marker("x-next")));
  assert.equal(await runPolicies(c.request, 0, 2, "request", s), undefined);
  assert.equal(s.requestHeaders.get("x-next"), "1");
});

Deno.test("onFailure skipRemaining keeps earlier changes and runs nothing after", async () => {
  const s = state();
  const c = chain(
    entry("first:v1", marker("x-first")),
    entry("bad:v1", failing, { onFailure: "skipRemaining" }),
    entry("next:v1", marker("x-next")),
  );
  assert.equal(await runPolicies(c.request, 0, 3, "request", s), undefined);
  assert.equal(s.requestHeaders.get("x-first"), "1");
  assert.equal(s.requestHeaders.has("x-next"), false);
});

Deno.test("an async policy over its timeout fails with 504", async () => {
  const slow: Policy = { onRequest: () => new Promise((resolve) => setTimeout(resolve, 1000)) };
  const c = chain(entry("slow:v1", slow, { timeoutMs: 20 }));
  const outcome = await runPolicies(c.request, 0, 1, "request", state());
  assert.equal(outcome?.statusCode, 504);
  assert.match(new TextDecoder().decode(outcome?.body), /policy_timeout/);
});

Deno.test("an async policy without a timeout of its own fails under the default timeout", async () => {
  const slow: Policy = { onRequest: () => new Promise((resolve) => setTimeout(resolve, 1000)) };
  const c = chain(entry("slow:v1", slow), entry("own:v1", slow, { timeoutMs: 10 }));
  const defaulted = await runPolicies(c.request, 0, 1, "request", state(), undefined, 20);
  assert.equal(defaulted?.statusCode, 504);
  const started = performance.now();
  const own = await runPolicies(c.request, 1, 2, "request", state(), undefined, 5000);
  assert.equal(own?.statusCode, 504);
  assert.ok(performance.now() - started < 1000, "the policy's own timeout wins over the default");
});

Deno.test("a wrong action for the phase is a policy failure", async () => {
  const c = chain(entry("wrong:v1", { onRequest: () => new UpstreamResponseModifications({}) as never }));
  assert.equal((await runPolicies(c.request, 0, 1, "request", state()))?.statusCode, 500);
});

Deno.test("a false condition skips the policy", async () => {
  const s = state();
  s.method = "GET";
  const c = chain(
    entry("post-only:v1", marker("x-post"), { condition: (st) => st.method === "POST" }),
    entry("always:v1", marker("x-always")),
  );
  await runPolicies(c.request, 0, 2, "request", s);
  assert.equal(s.requestHeaders.has("x-post"), false);
  assert.equal(s.requestHeaders.get("x-always"), "1");
});

Deno.test("the observer sees every policy execution once, with its outcome and reason", async () => {
  const seen: string[] = [];
  const c = chain(
    entry("ok:v1", marker("x")),
    entry("quiet:v1", { onRequest: () => undefined }),
    entry("skipped:v1", marker("y"), { condition: () => false }),
    entry("bad:v1", failing, { onFailure: "continue" }),
    entry("deny:v1", { onRequest: () => new ImmediateResponse({ statusCode: 403 }) }),
  );
  await runPolicies(c.request, 0, 5, "request", state(), {
    policyDecided: (entry, d) => {
      assert.equal(d.policy, entry.name);
      assert.ok(d.durationMs >= 0);
      seen.push(`${d.policy}/${d.version}/${d.phase}/${d.outcome}/${d.reason ?? ""}`);
    },
  });
  assert.deepEqual(seen, [
    "ok/v1.0.0/request/modified/",
    "quiet/v1.0.0/request/passed/",
    "skipped/v1.0.0/request/skipped/condition_false",
    "bad/v1.0.0/request/failed/error",
    "deny/v1.0.0/request/denied/403",
  ]);
});

Deno.test("the trace calls a cleared body a change, analytics values or empty lists none", async () => {
  const c = chain(
    entry("clears:v1", { onRequest: () => new UpstreamRequestModifications({ body: new Uint8Array() }) }),
    entry("blanks:v1", { onRequest: () => new UpstreamRequestModifications({ body: "" }) }),
    entry("tags:v1", {
      onRequest: () =>
        new UpstreamRequestModifications({ analyticsMetadata: { tier: "gold" }, removeHeaders: [] }),
    }),
  );
  const s = state();
  s.requestBody = new Body(new TextEncoder().encode("card=4111111111111111"));
  await runPolicies(c.request, 0, 3, "request", s);
  // A cleared body must read as modified: audit-log then keeps only hashes of the content.
  assert.deepEqual(s.trace.map((d) => d.outcome), ["modified", "modified", "passed"]);
});

Deno.test("an action with a field its kind does not have (setHeader for setHeaders) fails the policy", async () => {
  const typo = { setHeader: { "x-team": "users" } } as unknown as UpstreamRequestModificationsInit;
  const policies: Policy[] = [
    { onRequest: () => new UpstreamRequestModifications(typo) },
    { onRequest: () => ({ kind: "upstream-request", ...typo }) as UpstreamRequestModifications },
  ];
  for (const policy of policies) {
    const s = state();
    const c = chain(entry("typo:v1", policy), entry("next:v1", marker("x-next")));
    const outcome = await runPolicies(c.request, 0, 2, "request", s);
    assert.equal(outcome?.statusCode, 500, "a failure under deny, not a silent no-op");
    assert.equal(s.requestHeaders.has("x-next"), false);
  }
  assert.throws(
    () => checkActionFields(new UpstreamRequestModifications(typo), "upstream-request"),
    /upstream-request action with an unknown field setHeader \(did you mean setHeaders\?\)/,
  );
  assert.doesNotThrow(() =>
    checkActionFields(new ImmediateResponse({ statusCode: 403, body: "no" }), "immediate-response")
  );
});

Deno.test("an immediate response without a status code is a 500, as in the Python SDK", async () => {
  assert.equal(new ImmediateResponse().statusCode, DEFAULT_IMMEDIATE_STATUS);
  assert.equal(DEFAULT_IMMEDIATE_STATUS, 500);
  const c = chain(
    entry("plain:v1", { onRequest: () => ({ kind: "immediate-response" }) as ImmediateResponse }),
  );
  const outcome = await runPolicies(c.request, 0, 1, "request", state());
  assert.equal(outcome?.statusCode, 500);
  assert.equal(outcome?.policy, "plain:v1");
});

Deno.test("a chain of synchronous policies settles without a promise; one that waits makes only the rest wait", async () => {
  const sync = chain(entry("a:v1", appendTrace("a")), entry("b:v1", appendTrace("b")));
  const s = state();
  const now = runPolicies(sync.request, 0, 2, "request", s);
  assert.ok(!(now instanceof Promise), "nothing waited: the outcome is there at once");
  assert.equal(now, undefined);
  assert.deepEqual(s.requestHeaders.getAll("x-trace"), ["a", "b"]);

  const waits: Policy = {
    onRequest: async (ctx) => {
      await Promise.resolve();
      return new UpstreamRequestModifications({
        appendHeaders: { "x-trace": "w" },
        setHeaders: { "x-w": ctx.path },
      });
    },
  };
  const mixed = chain(entry("a:v1", appendTrace("a")), entry("w:v1", waits), entry("c:v1", appendTrace("c")));
  const m = state();
  const later = runPolicies(mixed.request, 0, 3, "request", m);
  assert.ok(later instanceof Promise, "a policy that waits makes the outcome wait");
  assert.deepEqual(
    m.requestHeaders.getAll("x-trace"),
    ["a"],
    "the policy after the waiting one has not run yet",
  );
  assert.equal(await later, undefined);
  assert.deepEqual(m.requestHeaders.getAll("x-trace"), ["a", "w", "c"]);
  assert.equal(m.requestHeaders.get("x-seen-c"), "a,w");
  assert.deepEqual(m.trace.map((d) => `${d.policy}=${d.outcome}`), [
    "a=modified",
    "w=modified",
    "c=modified",
  ]);
});

Deno.test("a waiting policy that rejects fails closed, and what follows it does not run", async () => {
  let ran = false;
  const c = chain(
    entry("a:v1", appendTrace("a")),
    entry("r:v1", { onRequest: () => Promise.reject(new Error("lost")) }),
    entry("after:v1", { onRequest: () => void (ran = true) }),
  );
  const s = state();
  const outcome = await runPolicies(c.request, 0, 3, "request", s);
  assert.equal(outcome?.statusCode, 500);
  assert.equal(outcome?.policy, "r:v1");
  assert.equal(ran, false);
  assert.deepEqual(s.trace.map((d) => `${d.policy}=${d.outcome}`), [
    "a=modified",
    "r=failed",
    "after=skipped",
  ]);
});
