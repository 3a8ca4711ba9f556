import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { HeaderMapSchema } from "../../src/gen/proto/envoy/config/core/v3/base_pb.ts";
import { CommonResponse_ResponseStatus } from "../../src/gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";
import {
  applyRequestModifications,
  applyResponseModifications,
  immediateHeaderLines,
  InvalidActionError,
} from "../../src/chain/apply.ts";
import { ExchangeState } from "../../src/chain/state.ts";
import {
  commonResponse,
  immediateResponse,
  loadRequestHeaders,
  loadResponseHeaders,
  valueOf,
} from "../../src/extproc/translate.ts";
import {
  Body,
  UpstreamRequestModifications,
  type UpstreamRequestModificationsInit,
  UpstreamResponseModifications,
} from "../../src/sdk/mod.ts";

const utf8 = new TextEncoder();
const text = new TextDecoder();

function headerMap(pairs: [string, string][]) {
  return create(HeaderMapSchema, {
    headers: pairs.map(([key, value]) => ({ key, rawValue: utf8.encode(value) })),
  });
}

function requestState(pairs: [string, string][] = []): ExchangeState {
  const state = new ExchangeState({ name: "r" });
  loadRequestHeaders(
    state,
    headerMap([[":method", "GET"], [":path", "/a?b=1"], [":authority", "h"], [":scheme", "http"], ...pairs]),
  );
  return state;
}

/** The set_headers of a response as [key, value, append] triples. */
function sets(response: ReturnType<typeof commonResponse>) {
  return (response?.headerMutation?.setHeaders ?? []).map((o) => {
    assert.equal(o.header?.value, "", "only raw_value is sent");
    return [o.header!.key, text.decode(o.header!.rawValue), o.append ?? false];
  });
}

Deno.test("request headers: pseudo-headers go to fields, repeated headers are kept in order", () => {
  const state = requestState([["accept", "a"], ["accept", "b"], ["x-one", "1"]]);
  assert.equal(state.method, "GET");
  assert.equal(state.path, "/a?b=1");
  assert.equal(state.authority, "h");
  assert.equal(state.scheme, "http");
  assert.deepEqual(state.requestHeaders.getAll("accept"), ["a", "b"]);
  assert.equal(state.requestHeaders.get("accept"), "a, b");
  assert.equal(state.requestHeaders.has(":path"), false);
});

Deno.test("response headers: :status becomes the status, set-cookie values stay separate", () => {
  const state = new ExchangeState({ name: "r" });
  loadResponseHeaders(state, headerMap([[":status", "201"], ["set-cookie", "a=1"], ["set-cookie", "b=2"]]));
  assert.equal(state.status, 201);
  assert.deepEqual(state.responseHeaders.getAll("set-cookie"), ["a=1", "b=2"]);
});

Deno.test("no change gives no CommonResponse", () => {
  assert.equal(commonResponse(requestState(), { phase: "request", bodyPhase: false }), undefined);
});

Deno.test("a multi-valued set overwrites with the first value and appends the rest; removals are listed", () => {
  const state = requestState([["x-old", "1"], ["x-keep", "k"]]);
  applyRequestModifications(
    state,
    new UpstreamRequestModifications({
      setHeaders: { "Set-Cookie": ["a=1", "b=2"] },
      removeHeaders: ["x-old"],
      appendHeaders: { "x-keep": "k2" },
    }),
  );
  const response = commonResponse(state, { phase: "request", bodyPhase: false });
  assert.deepEqual(sets(response), [
    ["set-cookie", "a=1", false],
    ["set-cookie", "b=2", true],
    ["x-keep", "k", false],
    ["x-keep", "k2", true],
  ]);
  assert.deepEqual(response?.headerMutation?.removeHeaders, ["x-old"]);
  assert.equal(response?.clearRouteCache, false);
  assert.equal(response?.status, CommonResponse_ResponseStatus.CONTINUE);
});

Deno.test("a header set then removed in the same phase is only removed", () => {
  const state = requestState();
  applyRequestModifications(state, new UpstreamRequestModifications({ setHeaders: { "x-a": "1" } }));
  applyRequestModifications(state, new UpstreamRequestModifications({ removeHeaders: ["x-a"] }));
  const response = commonResponse(state, { phase: "request", bodyPhase: false });
  assert.deepEqual(sets(response), []);
  assert.deepEqual(response?.headerMutation?.removeHeaders, ["x-a"]);
});

Deno.test("a path change sets :path and asks Envoy to re-route; a method change sets :method", () => {
  const state = requestState();
  applyRequestModifications(state, new UpstreamRequestModifications({ path: "/new?x=2", method: "POST" }));
  const response = commonResponse(state, { phase: "request", bodyPhase: false });
  assert.deepEqual(sets(response), [[":path", "/new?x=2", false], [":method", "POST", false]]);
  assert.equal(response?.clearRouteCache, true);
});

Deno.test("a body change in the body phase rewrites content-length", () => {
  const state = requestState([["content-length", "2"]]);
  state.requestBody = new Body(utf8.encode("{}"));
  applyRequestModifications(state, new UpstreamRequestModifications({ body: '{"longer":true}' }));
  const response = commonResponse(state, { phase: "request", bodyPhase: true });
  assert.equal(response?.bodyMutation?.mutation.case, "body");
  assert.equal(text.decode(response?.bodyMutation?.mutation.value as Uint8Array), '{"longer":true}');
  assert.deepEqual(sets(response), [["content-length", "15", false]]);
  assert.equal(response?.status, CommonResponse_ResponseStatus.CONTINUE);
});

Deno.test("a body change in a headers phase replaces the body with CONTINUE_AND_REPLACE", () => {
  const state = requestState();
  applyRequestModifications(state, new UpstreamRequestModifications({ body: "new" }));
  const response = commonResponse(state, { phase: "request", bodyPhase: false });
  assert.equal(response?.status, CommonResponse_ResponseStatus.CONTINUE_AND_REPLACE);
  assert.equal(text.decode(response?.bodyMutation?.mutation.value as Uint8Array), "new");
  assert.deepEqual(sets(response), [], "Envoy drops content-length itself in this mode");
});

Deno.test("a response status change sets :status", () => {
  const state = new ExchangeState({ name: "r" });
  loadResponseHeaders(state, headerMap([[":status", "200"]]));
  applyResponseModifications(
    state,
    new UpstreamResponseModifications({ statusCode: 299, setHeaders: { "x-r": "1" } }),
  );
  const response = commonResponse(state, { phase: "response", bodyPhase: false });
  assert.deepEqual(sets(response), [[":status", "299", false], ["x-r", "1", false]]);
  assert.equal(response?.clearRouteCache, false);
});

Deno.test("invalid actions are rejected before anything changes", () => {
  const state = requestState([["x-a", "1"]]);
  const bad: UpstreamRequestModificationsInit[] = [
    { removeHeaders: ["x-a"], setHeaders: { "bad name": "v" } },
    { removeHeaders: ["x-a"], setHeaders: { "x-b": "line\r\nbreak" } },
    { removeHeaders: ["x-a"], setHeaders: { ":path": "/x" } },
    { removeHeaders: ["x-a"], path: "no-slash" },
    { removeHeaders: ["x-a"], method: "GE T" },
  ];
  for (const init of bad) {
    assert.throws(
      () => applyRequestModifications(state, new UpstreamRequestModifications(init)),
      InvalidActionError,
    );
  }
  assert.throws(
    () => applyResponseModifications(state, new UpstreamResponseModifications({ statusCode: 99 })),
    InvalidActionError,
  );
  assert.equal(state.requestHeaders.get("x-a"), "1");
  assert.equal(state.changes.any, false);
});

Deno.test("header values follow Envoy's rule: control characters other than tab are refused", () => {
  const state = requestState();
  for (const code of [0x00, 0x01, 0x08, 0x0a, 0x0d, 0x1f, 0x7f]) {
    const value = `a${String.fromCharCode(code)}b`;
    assert.throws(
      () =>
        applyRequestModifications(state, new UpstreamRequestModifications({ setHeaders: { "x-v": value } })),
      /x-v: value contains a control character/,
      `0x${code.toString(16)}`,
    );
  }
  applyRequestModifications(
    state,
    new UpstreamRequestModifications({ setHeaders: { "x-ok": "tab\there, obs-text é, ~!" } }),
  );
  assert.equal(state.requestHeaders.get("x-ok"), "tab\there, obs-text é, ~!");
});

Deno.test("framing, hop-by-hop and host headers are refused in every operation, immediate responses too", () => {
  const names = [
    "content-length",
    "Transfer-Encoding",
    "connection",
    "keep-alive",
    "proxy-connection",
    "upgrade",
  ];
  for (const name of [...names, "te", "host"]) {
    const state = requestState([["x-a", "1"]]);
    for (
      const init of [{ setHeaders: { [name]: "1" } }, { appendHeaders: { [name]: "1" } }, {
        removeHeaders: [name],
      }]
    ) {
      assert.throws(
        () => applyRequestModifications(state, new UpstreamRequestModifications(init)),
        /managed by Envoy/,
        `${name} ${JSON.stringify(init)}`,
      );
    }
    assert.throws(
      () =>
        applyResponseModifications(state, new UpstreamResponseModifications({ setHeaders: { [name]: "1" } })),
      /managed by Envoy/,
    );
    assert.throws(() => immediateHeaderLines({ [name]: "1" }), /managed by Envoy/);
    assert.equal(state.changes.any, false);
  }
});

Deno.test("an immediate response carries status, every header line, body and details", () => {
  const response = immediateResponse({
    statusCode: 429,
    headers: [["retry-after", "1"], ["set-cookie", "a=1"], ["set-cookie", "b=2"]],
    body: utf8.encode("slow down"),
    policy: "rate-limit:v1",
  });
  assert.equal(response.status?.code, 429);
  assert.equal(text.decode(response.body), "slow down");
  assert.equal(response.details, "tollgate_rate-limit_v1");
  assert.deepEqual(
    response.headers?.setHeaders.map((
      o,
    ) => [o.header?.key, text.decode(o.header!.rawValue), o.append ?? false]),
    [["retry-after", "1", false], ["set-cookie", "a=1", false], ["set-cookie", "b=2", true]],
  );
});

Deno.test("query changes rewrite :path; an authority change sets :authority; both re-route", () => {
  const state = requestState();
  applyRequestModifications(state, {
    query: { remove: ["b"], set: { c: ["1", "2"] }, add: { d: "x y" } },
    authority: "up.example:8080",
  });
  assert.equal(state.path, "/a?c=1&c=2&d=x+y");
  assert.equal(state.query.get("d"), "x y", "the query view follows the new path");
  const response = commonResponse(state, { phase: "request", bodyPhase: false });
  assert.deepEqual(sets(response), [[":path", "/a?c=1&c=2&d=x+y", false], [
    ":authority",
    "up.example:8080",
    false,
  ]]);
  assert.equal(response?.clearRouteCache, true);
});

Deno.test("removing the only query parameter drops the '?'; an unchanged query is no change", () => {
  const state = requestState();
  applyRequestModifications(state, { query: { remove: ["absent"] } });
  assert.equal(state.changes.path, false);
  applyRequestModifications(state, { query: { remove: ["b"] } });
  assert.equal(state.path, "/a");
});

Deno.test("an invalid authority is rejected before anything changes", () => {
  const state = requestState();
  assert.throws(
    () => applyRequestModifications(state, { setHeaders: { "x-a": "1" }, authority: "bad host" }),
    InvalidActionError,
  );
  assert.equal(state.requestHeaders.has("x-a"), false);
  assert.equal(state.authority, "h");
});

Deno.test("header values decode as UTF-8 whatever their length: ASCII, multi-byte, invalid bytes, legacy value", () => {
  const raw = (bytes: Uint8Array | string) => ({
    value: "",
    rawValue: typeof bytes === "string" ? new TextEncoder().encode(bytes) : bytes,
  });
  for (
    const text of [
      "",
      "a",
      "Bearer abc.def",
      "x".repeat(64),
      "y".repeat(65),
      "ü",
      `${"a".repeat(63)}ü`,
      "✓😀",
    ]
  ) {
    assert.equal(valueOf(raw(text)), text);
  }
  // Invalid UTF-8 becomes U+FFFD, as Envoy's bytes always did through TextDecoder.
  assert.equal(valueOf(raw(new Uint8Array([0x61, 0xff, 0x62]))), "a\ufffdb");
  assert.equal(valueOf(raw(new Uint8Array([0x00, 0x7f]))), "\u0000\u007f");
  assert.equal(valueOf({ value: "legacy", rawValue: new Uint8Array() }), "legacy");
});
