import assert from "node:assert/strict";
import { runPolicies } from "../../../src/chain/run.ts";
import { chain, entry } from "../../support/chains.ts";
import { instantiate, requestState } from "../../support/policies.ts";

Deno.test("add-headers: values are appended after the existing ones, in order; names are case-insensitive", async () => {
  const { policy } = await instantiate("add-headers", {
    requestHeaders: [{ name: "X-Tag", value: "b" }, { name: "x-tag", value: "c" }, {
      name: "x-new",
      value: "1",
    }],
  });
  const state = requestState({ headers: { "x-tag": "a" } });
  const c = chain(entry("add-headers:v1", policy));
  assert.equal(await runPolicies(c.request, 0, c.request.length, "request", state), undefined);
  assert.deepEqual(state.requestHeaders.getAll("x-tag"), ["a", "b", "c"]);
  assert.deepEqual(state.requestHeaders.getAll("x-new"), ["1"]);
});

Deno.test("add-headers: takes part only in the phases it has headers for; one list is required", async () => {
  const requestOnly = await instantiate("add-headers", { requestHeaders: [{ name: "a", value: "1" }] });
  assert.deepEqual(requestOnly.mode.responseHeaderMode, "SKIP");
  const responseOnly = await instantiate("add-headers", { responseHeaders: [{ name: "a", value: "1" }] });
  assert.deepEqual(responseOnly.mode.requestHeaderMode, "SKIP");
  await assert.rejects(instantiate("add-headers", {}), /is required/);
  await assert.rejects(
    instantiate("add-headers", { requestHeaders: [{ name: "a", value: "x\r\nevil: 1" }] }),
    /must match \^/,
  );
});
