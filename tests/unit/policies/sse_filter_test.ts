import assert from "node:assert/strict";
import { parsePath } from "../../../policies/sse-filter/jsonpath.ts";
import { instantiate } from "../../support/policies.ts";
import { builtInEntry, feed } from "../../support/streams.ts";

const filter = (parameters: Record<string, unknown>, chunks: string[]) =>
  builtInEntry("sse-filter", parameters).then((e) => feed([e], "response", chunks));

Deno.test("sse-filter: removes fields from each event, keeps event/id lines, passes non-JSON data", async () => {
  const { out } = await filter({ removeFields: ["$.usage", "$.choices[0].logprobs"] }, [
    'id: 1\nevent: delta\ndata: {"text":"hi","usage":{"n":1}}\n\n',
    'data: {"choices":[{"logprobs":[1],"d":"x"}]}\n\ndata: [DONE]\n\n',
    "",
  ]);
  assert.deepEqual(out, [
    'id: 1\nevent: delta\ndata: {"text":"hi"}\n\n',
    'data: {"choices":[{"d":"x"}]}\n\ndata: [DONE]\n\n',
    "",
  ]);
});

Deno.test("sse-filter: drops events matching a condition (path exists, or equals a value)", async () => {
  const { out } = await filter({ drop: [{ path: "$.ping" }, { path: "$.type", equals: "noise" }] }, [
    'data: {"ping":1}\n\ndata: {"type":"noise"}\n\ndata: {"type":"text"}\n\n',
  ]);
  assert.deepEqual(out, ['data: {"type":"text"}\n\n']);
});

Deno.test("sse-filter: an event split across chunks is filtered once whole", async () => {
  const { out } = await filter({ removeFields: ["$.secret"] }, ['data: {"a":1,', '"secret":2}\n', "\n"]);
  assert.deepEqual(out, ["", "", 'data: {"a":1}\n\n']);
});

Deno.test("sse-filter: multi-line data is joined with a newline before parsing", async () => {
  const { out } = await filter({ removeFields: ["$.b"] }, ['data: {"a":1,\ndata: "b":2}\n\n']);
  assert.deepEqual(out, ['data: {"a":1}\n\n']);
});

Deno.test("sse-filter: JSON paths outside the subset fail the build, naming the path", async () => {
  assert.deepEqual(parsePath("$.a['b c'][2]"), ["a", "b c", 2]);
  await assert.rejects(
    instantiate("sse-filter", { removeFields: ["$..x"] }),
    /JSON path "\$\.\.x": unsupported step/,
  );
  await assert.rejects(instantiate("sse-filter", { removeFields: ["a.b"] }), /must start with \$/);
});
