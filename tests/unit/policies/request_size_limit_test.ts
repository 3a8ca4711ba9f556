import assert from "node:assert/strict";
import { phases, policy } from "../../support/policies.ts";

Deno.test("request-size-limit: a content-length above the limit is 413 JSON; at the limit passes", async () => {
  await using limit = await policy("request-size-limit", { maxBytes: 100 });
  const refused = await limit.request({ method: "POST", headers: { "content-length": "101" } });
  assert.equal(refused.immediate?.status, 413);
  assert.deepEqual(refused.response.json(), {
    error: "payload_too_large",
    message: "content-length 101 exceeds the limit of 100 bytes",
    limitBytes: 100,
  });
  const atLimit = await limit.request({
    method: "POST",
    headers: { "content-length": "100" },
    body: "x".repeat(100),
  });
  assert.equal(atLimit.immediate, undefined);
  assert.equal(atLimit.upstream?.text(), "x".repeat(100));
  assert.equal((await limit.request({ method: "GET" })).immediate, undefined);
});

Deno.test("request-size-limit: headers only by default; a content-length that is not a number is 400, never skipped", async () => {
  await using limit = await policy("request-size-limit", { maxBytes: 100 });
  for (const value of ["abc", "1e3", "-1", ["10", "10"]]) {
    // A body the policy would refuse: it is never read without checkBody.
    const refused = await limit.request({
      method: "POST",
      headers: { "content-length": value },
      body: "x".repeat(200),
    });
    assert.equal(refused.immediate?.status, 400, String(value));
    assert.equal(refused.response.json<{ error: string }>().error, "invalid_content_length");
  }
  const unread = await limit.request({ method: "POST", body: "x".repeat(200) });
  assert.equal(unread.immediate, undefined, "without checkBody the body is not buffered");
  assert.deepEqual(phases(unread), ["request"]);
});

Deno.test("request-size-limit: with checkBody the body is buffered and the received bytes are counted", async () => {
  await using limit = await policy("request-size-limit", { maxBytes: 10, checkBody: true });
  const refused = await limit.request({ method: "POST", body: "x".repeat(11) });
  assert.equal(refused.immediate?.status, 413);
  assert.match(
    refused.response.json<{ message: string }>().message,
    /the request body \(11 bytes\) exceeds the limit of 10 bytes/,
  );
  assert.equal((await limit.request({ method: "POST", body: "x".repeat(10) })).immediate, undefined);
});
