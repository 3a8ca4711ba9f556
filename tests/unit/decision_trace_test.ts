/**
 * The decision trace as src/chain/run.ts records it (outcomes, reason codes, what a stop
 * leaves out) and its text forms: the access-log string and the Server-Timing value.
 */
import assert from "node:assert/strict";
import { runPolicies } from "../../src/chain/run.ts";
import { ExchangeState } from "../../src/chain/state.ts";
import {
  type DecisionEntry,
  formatTrace,
  overallDecision,
  serverTimingValue,
} from "../../src/observe/decision_trace.ts";
import { ImmediateResponse, type Policy, UpstreamRequestModifications } from "../../src/sdk/mod.ts";
import { chain, entry } from "../support/chains.ts";

const pass: Policy = { onRequest: () => undefined };
const modify: Policy = { onRequest: () => new UpstreamRequestModifications({ setHeaders: { "x-a": "1" } }) };
const deny: Policy = { onRequest: () => new ImmediateResponse({ statusCode: 401 }) };
const fail: Policy = {
  onRequest: () => {
    throw new Error("boom");
  },
};
const hang: Policy = { onRequest: () => new Promise(() => {}) };

const summary = (s: ExchangeState) => s.trace.map((e) => [e.policy, e.outcome, e.reason ?? ""].join(" "));

Deno.test("trace: passed, modified, skipped by a condition, denied with its status, the rest short-circuited", async () => {
  const c = chain(
    entry("a:v1", pass),
    entry("b:v1", modify),
    entry("c:v1", pass, { condition: () => false }),
    entry("d:v1", deny),
    entry("e:v1", pass),
    entry("f:v1", pass),
  );
  const s = new ExchangeState({ name: "r" });
  // Only the first five run at the headers; f would run with the body, which never comes.
  const immediate = await runPolicies(c.request, 0, 5, "request", s);
  assert.equal(immediate?.statusCode, 401);
  assert.deepEqual(summary(s), [
    "a passed ",
    "b modified ",
    "c skipped condition_false",
    "d denied 401",
    "e skipped short_circuit",
    "f skipped short_circuit",
  ]);
  assert.equal(s.trace[0].version, "v1.0.0");
  assert.ok(s.trace[0].durationMs >= 0 && Number(s.trace[0].startNs) > 1.7e18, "started, in epoch ns");
  assert.equal(s.trace[2].durationMs, 0);
  assert.equal(s.trace[2].startNs, 0, "a skipped policy never started");
  assert.equal(overallDecision(s.trace), "denied");
});

Deno.test("trace: failures carry their kind; skipRemaining skips only the rest of the slice", async () => {
  const c = chain(
    entry("a:v1", fail, { onFailure: "continue" }),
    entry("b:v1", hang, { onFailure: "skipRemaining", timeoutMs: 5 }),
    entry("c:v1", pass),
    entry("d:v1", pass),
    entry("e:v1", pass, { condition: () => (undefined as unknown as boolean).valueOf() }),
  );
  const s = new ExchangeState({ name: "r" });
  assert.equal(await runPolicies(c.request, 0, 3, "request", s), undefined);
  assert.deepEqual(summary(s), ["a failed error", "b failed timeout", "c skipped skip_remaining"]);
  await runPolicies(c.request, 4, 5, "request", s);
  assert.equal(s.trace[3].outcome, "failed", "a condition that cannot be evaluated is a failure, not a skip");
  assert.equal(overallDecision(s.trace), "failed");
});

const entries: DecisionEntry[] = [
  {
    policy: "cors",
    version: "v1.0.0",
    phase: "request",
    outcome: "skipped",
    reason: "disabled",
    startNs: 0,
    durationMs: 0,
  },
  {
    policy: "jwt-auth",
    version: "v2.1.0",
    phase: "request",
    outcome: "passed",
    startNs: 1,
    durationMs: 0.2149,
  },
  {
    policy: "set-headers",
    version: "v1.0.0",
    phase: "response",
    outcome: "modified",
    startNs: 2,
    durationMs: 3,
  },
];

Deno.test("the access-log form: name:vMAJOR=outcome(reason):ms, response entries marked", () => {
  assert.equal(
    formatTrace(entries),
    "cors:v1=skipped(disabled);jwt-auth:v2=passed:0.21ms;set-headers:v1@response=modified:3ms",
  );
  assert.equal(formatTrace([]), "");
  assert.equal(overallDecision(entries), "modified");
});

Deno.test("the Server-Timing form lists only the policies that ran", () => {
  assert.equal(
    serverTimingValue(entries),
    'jwt-auth;dur=0.21;desc="request passed", set-headers;dur=3;desc="response modified"',
  );
});
