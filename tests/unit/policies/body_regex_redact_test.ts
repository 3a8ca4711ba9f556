import assert from "node:assert/strict";
import { instantiate } from "../../support/policies.ts";
import { builtInEntry, feed } from "../../support/streams.ts";

const CARD = { patterns: ["\\d{16}"], replacement: "[CARD]", maxMatchBytes: 16 };
const redact = (
  parameters: Record<string, unknown>,
  chunks: string[],
  phase: "request" | "response" = "request",
) => builtInEntry("body-regex-redact", parameters).then((e) => feed([e], phase, chunks));

Deno.test("body-regex-redact: a match across a chunk boundary is redacted", async () => {
  const { out } = await redact(CARD, ["paying the bill 41111111", "11111111 now", ""]);
  assert.equal(out.join(""), "paying the bill [CARD] now");
  assert.equal(out[0], "paying th", "all but the last maxMatchBytes - 1 characters go out at once");
});

Deno.test("body-regex-redact: matches in one chunk, several patterns in order, both directions", async () => {
  const parameters = { patterns: ["\\d{16}", "secret-[a-z]+"], replacement: "#", maxMatchBytes: 16 };
  assert.equal((await redact(parameters, ["4111111111111111 and secret-abc!"])).out.join(""), "# and #!");
  assert.equal((await redact(parameters, ["x secret-", "abc y"], "response")).out.join(""), "x # y");
});

Deno.test("body-regex-redact: multi-byte characters split across chunks survive", async () => {
  const bytes = new TextEncoder().encode("é");
  const { out } = await redact(CARD, [String.fromCharCode(...bytes)]);
  assert.equal(out.length, 1);
  const euro = await redact({ ...CARD, maxMatchBytes: 1 }, ["price 5€", " ok"]);
  assert.equal(euro.out.join(""), "price 5€ ok");
});

Deno.test("body-regex-redact: only the configured directions; an invalid pattern fails the build", async () => {
  const { policy } = await instantiate("body-regex-redact", { ...CARD, request: false });
  assert.equal(policy.onRequestChunk, undefined);
  assert.ok(policy.onResponseChunk);
  await assert.rejects(
    instantiate("body-regex-redact", { patterns: ["(?<=a)b"] }),
    /pattern "\(\?<=a\)b" is not a valid RE2 expression/,
  );
});
