import assert from "node:assert/strict";
import { immediateStatus, instantiate, jsonBody, onRequest } from "../../support/policies.ts";

Deno.test("request-size-limit: a content-length above the limit is 413 JSON; at the limit passes", async () => {
  const limit = await instantiate("request-size-limit", { maxBytes: 100 });
  assert.equal(limit.mode.requestBodyMode, "SKIP", "headers only by default");
  const refused = await onRequest(limit, { method: "POST", headers: { "content-length": "101" } });
  assert.equal(immediateStatus(refused), 413);
  assert.deepEqual(jsonBody(refused), {
    error: "payload_too_large",
    message: "content-length 101 exceeds the limit of 100 bytes",
    limitBytes: 100,
  });
  assert.equal(await onRequest(limit, { method: "POST", headers: { "content-length": "100" } }), undefined);
  assert.equal(await onRequest(limit, { method: "GET" }), undefined);
});

Deno.test("request-size-limit: a content-length that is not a number is 400, never skipped", async () => {
  const limit = await instantiate("request-size-limit", { maxBytes: 100 });
  for (const value of ["abc", "1e3", "-1", ["10", "10"]]) {
    const refused = await onRequest(limit, { method: "POST", headers: { "content-length": value } });
    assert.equal(immediateStatus(refused), 400, String(value));
    assert.equal(jsonBody(refused).error, "invalid_content_length");
  }
});

Deno.test("request-size-limit: with checkBody the body is buffered and the received bytes are counted", async () => {
  const limit = await instantiate("request-size-limit", { maxBytes: 10, checkBody: true });
  assert.equal(limit.mode.requestBodyMode, "BUFFER");
  const refused = await onRequest(limit, { method: "POST", body: "x".repeat(11) });
  assert.equal(immediateStatus(refused), 413);
  assert.match(
    String(jsonBody(refused).message),
    /the request body \(11 bytes\) exceeds the limit of 10 bytes/,
  );
  assert.equal(await onRequest(limit, { method: "POST", body: "x".repeat(10) }), undefined);
});
