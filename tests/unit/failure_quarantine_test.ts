import assert from "node:assert/strict";
import { FailureQuarantine } from "../../src/dataplane/failure_quarantine.ts";

/** A quarantine with a clock the test moves (the sweep is called by hand). */
function quarantine(failures: number, windowMs: number) {
  let now = 1_000_000;
  const q = new FailureQuarantine(() => ({ failures, windowMs, affectsReadiness: false }), () => now);
  return {
    q,
    at: (ms: number) => now = 1_000_000 + ms,
  };
}

Deno.test("quarantine: entered only when the failures within the window exceed the threshold", () => {
  const { q, at } = quarantine(3, 1000);
  try {
    for (const ms of [0, 100, 200]) {
      at(ms);
      q.failed("orders", "fail:v1");
    }
    assert.equal(q.has("orders", "fail:v1"), false, "3 failures is at the threshold, not over it");
    // The first failure has left the window: still 3 within it.
    at(1050);
    q.failed("orders", "fail:v1");
    assert.equal(q.has("orders", "fail:v1"), false);
    at(1090);
    q.failed("orders", "fail:v1");
    assert.equal(q.has("orders", "fail:v1"), true, "4 within 1s");
    assert.equal(q.has("users", "fail:v1"), false, "per route");
    assert.deepEqual(q.list().map((e) => [e.route, e.policy, e.cause]), [["orders", "fail:v1", "failures"]]);
  } finally {
    q.close();
  }
});

Deno.test("quarantine: left once a whole window passes without exceeding; a failure over the threshold restarts it", () => {
  const { q, at } = quarantine(2, 1000);
  try {
    for (const ms of [0, 10, 20]) {
      at(ms);
      q.failed("r", "p:v1");
    }
    assert.equal(q.has("r", "p:v1"), true);
    // Over the threshold again at 500 (10, 20, 500 within the window): the window starts again.
    at(500);
    q.failed("r", "p:v1");
    // At 1400 only 500 and 1400 are within the window: a failure that does not exceed.
    at(1400);
    q.failed("r", "p:v1");
    at(1499);
    q.sweep();
    assert.equal(q.has("r", "p:v1"), true, "less than a window since it last exceeded");
    at(1500);
    q.sweep();
    assert.equal(q.has("r", "p:v1"), false);
    assert.deepEqual(q.list(), []);
  } finally {
    q.close();
  }
});
