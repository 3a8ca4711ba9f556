import assert from "node:assert/strict";
import {
  ProcessingMode_BodySendMode as Body,
  ProcessingMode_HeaderSendMode as Header,
} from "../../src/gen/proto/envoy/extensions/filters/http/ext_proc/v3/processing_mode_pb.ts";
import { modeOverrideFor, PASS_THROUGH_MODE, streamedResponseMode } from "../../src/extproc/mode.ts";
import { chain, entry } from "../support/chains.ts";

const noop = {};
const modeOf = (...modes: Parameters<typeof entry>[2][]) =>
  modeOverrideFor(chain(...modes.map((options, i) => entry(`p${i}:v1`, noop, options))));

function fields(mode: ReturnType<typeof modeOverrideFor>) {
  return {
    response: mode.responseHeaderMode,
    requestBody: mode.requestBodyMode,
    responseBody: mode.responseBodyMode,
    trailers: [mode.requestTrailerMode, mode.responseTrailerMode],
  };
}

Deno.test("a request-headers-only chain skips bodies and the whole response phase", () => {
  assert.deepEqual(fields(modeOf({ mode: { requestHeaderMode: "PROCESS" } })), {
    response: Header.SKIP,
    requestBody: Body.NONE,
    responseBody: Body.NONE,
    trailers: [Header.SKIP, Header.SKIP],
  });
});

Deno.test("a response-header policy turns the response headers on, nothing else", () => {
  assert.deepEqual(
    fields(
      modeOf({ mode: { requestHeaderMode: "PROCESS" } }, {
        mode: { requestHeaderMode: "SKIP", responseHeaderMode: "PROCESS" },
      }),
    ),
    {
      response: Header.SEND,
      requestBody: Body.NONE,
      responseBody: Body.NONE,
      trailers: [Header.SKIP, Header.SKIP],
    },
  );
});

Deno.test("body policies buffer exactly the bodies they need", () => {
  assert.equal(modeOf({ mode: { requestBodyMode: "BUFFER" } }).requestBodyMode, Body.BUFFERED);
  const response = modeOf({ mode: { requestHeaderMode: "SKIP", responseBodyMode: "BUFFER" } });
  assert.equal(response.responseBodyMode, Body.BUFFERED);
  assert.equal(response.responseHeaderMode, Header.SEND, "buffering the response body needs its headers");
  assert.equal(response.requestBodyMode, Body.NONE);
});

Deno.test("the pass-through mode asks for nothing more", () => {
  assert.deepEqual(fields(PASS_THROUGH_MODE), {
    response: Header.SKIP,
    requestBody: Body.NONE,
    responseBody: Body.NONE,
    trailers: [Header.SKIP, Header.SKIP],
  });
});

Deno.test("the override is computed once per chain", () => {
  const c = chain(entry("a:v1", noop, { mode: { responseHeaderMode: "PROCESS" } }));
  assert.equal(modeOverrideFor(c), modeOverrideFor(c));
});

Deno.test("phase plan: header policies before the first body policy run on the headers", () => {
  const c = chain(
    entry("h1:v1", noop),
    entry("b:v1", noop, { mode: { requestBodyMode: "BUFFER" } }),
    entry("h2:v1", noop),
    entry("r1:v1", noop, { mode: { requestHeaderMode: "SKIP", responseHeaderMode: "PROCESS" } }),
    entry("r2:v1", noop, { mode: { requestHeaderMode: "SKIP", responseBodyMode: "BUFFER" } }),
  );
  assert.deepEqual(c.request.map((e) => e.label), ["h1:v1", "b:v1", "h2:v1"]);
  assert.equal(c.requestHeadersCount, 1);
  assert.deepEqual(c.response.map((e) => e.label), ["r2:v1", "r1:v1"], "response order is reversed");
  assert.equal(c.responseHeadersCount, 0, "r2 needs the body and runs first in the response");
  assert.equal(c.isEmpty, false);
  assert.equal(chain(entry("x:v1", noop, { mode: { requestHeaderMode: "SKIP" } })).isEmpty, true);
});

Deno.test("streaming chains: request body STREAMED at once; a streamed response body only at its headers", () => {
  const streaming = { mode: { requestBodyMode: "STREAM", responseBodyMode: "STREAM" } } as const;
  const c = chain(entry("s:v1", noop, streaming));
  assert.deepEqual(fields(modeOverrideFor(c)), {
    response: Header.SEND,
    requestBody: Body.STREAMED,
    responseBody: Body.NONE,
    trailers: [Header.SKIP, Header.SKIP],
  });
  assert.deepEqual(fields(streamedResponseMode(c)), {
    response: Header.SEND,
    requestBody: Body.STREAMED,
    responseBody: Body.STREAMED,
    trailers: [Header.SKIP, Header.SKIP],
  });
  const mixed = modeOf(streaming, { mode: { requestBodyMode: "BUFFER" } });
  assert.equal(mixed.requestBodyMode, Body.BUFFERED, "one buffering policy buffers the direction");
});
