import assert from "node:assert/strict";
import { exchange, phases, policy } from "../../support/policies.ts";

Deno.test("add-headers: values are appended after the existing ones, in order; names are case-insensitive", async () => {
  const result = await exchange("add-headers", {
    requestHeaders: [{ name: "X-Tag", value: "b" }, { name: "x-tag", value: "c" }, {
      name: "x-new",
      value: "1",
    }],
  }, { headers: { "x-tag": "a" } });
  assert.equal(result.immediate, undefined);
  assert.deepEqual(result.upstream?.headers.getAll("x-tag"), ["a", "b", "c"]);
  assert.deepEqual(result.upstream?.headers.getAll("x-new"), ["1"]);
});

Deno.test("add-headers: takes part only in the phases it has headers for; one list is required", async () => {
  const requestOnly = await exchange("add-headers", { requestHeaders: [{ name: "a", value: "1" }] });
  assert.deepEqual(phases(requestOnly), ["request"]);
  const responseOnly = await exchange("add-headers", { responseHeaders: [{ name: "a", value: "1" }] }, {}, {
    headers: { a: "0" },
  });
  assert.deepEqual(phases(responseOnly), ["response"]);
  assert.deepEqual(responseOnly.response.headers.getAll("a"), ["0", "1"]);
  await assert.rejects(policy("add-headers", {}), /is required/);
  await assert.rejects(
    policy("add-headers", { requestHeaders: [{ name: "a", value: "x\r\nevil: 1" }] }),
    /must match \^/,
  );
});
