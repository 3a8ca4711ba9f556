/**
 * The hand-written ProcessingResponse encoder writes exactly protobuf-es's bytes, for every
 * shape Tollgate sends (built by the real ExchangeStream and translation code) and for the
 * edge cases of each field: defaults left out, BoolValue wrappers, negative enums, non-ASCII
 * text, nested Struct values, lengths needing several varint bytes.
 */
import assert from "node:assert/strict";
import { create, type JsonObject, toBinary } from "@bufbuild/protobuf";
import { compileCondition } from "../../src/chain/condition.ts";
import { parseConfig } from "../../src/config/load.ts";
import { PASS_THROUGH_MODE } from "../../src/extproc/mode.ts";
import { encodeProcessingResponse } from "../../src/extproc/response_codec.ts";
import { ExchangeStream } from "../../src/extproc/stream.ts";
import { chunkResponse, immediateResponse, setHeadersResponse } from "../../src/extproc/translate.ts";
import { ProcessingModeSchema } from "../../src/gen/proto/envoy/extensions/filters/http/ext_proc/v3/processing_mode_pb.ts";
import {
  CommonResponse_ResponseStatus,
  ProcessingRequestSchema,
  type ProcessingResponse,
  ProcessingResponseSchema,
} from "../../src/gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";
import { generatedPolicies } from "../../src/gen/test/registry.ts";
import { buildRouteTable } from "../../src/kernel/build.ts";
import { Kernel } from "../../src/kernel/routes.ts";
import { PolicyRegistry } from "../../src/registry/registry.ts";
import { requestBody, requestHeaders, responseHeaders } from "../support/extproc_client.ts";

type Init = Parameters<typeof create<typeof ProcessingResponseSchema>>[1];

function same(response: ProcessingResponse, what: string): void {
  assert.deepEqual(encodeProcessingResponse(response), toBinary(ProcessingResponseSchema, response), what);
}
const message = (init: Init) => create(ProcessingResponseSchema, init);
const encoder = new TextEncoder();
const option = (key: string, value: string, extra: Record<string, unknown> = {}) => ({
  header: { key, rawValue: encoder.encode(value) },
  ...extra,
});

Deno.test("the answers of real exchanges encode as protobuf-es encodes them", async () => {
  const registry = new PolicyRegistry(generatedPolicies);
  const policies = [
    {
      name: "set-headers",
      version: "v1",
      parameters: {
        requestHeaders: [{ name: "x-a", value: "ü-1" }, { name: "x-b", value: "2" }],
        responseHeaders: [{ name: "x-r", value: "3" }],
      },
    },
    { name: "remove-headers", version: "v1", parameters: { requestHeaders: [{ name: "x-gone" }] } },
  ];
  const config = parseConfig(
    JSON.stringify({ routes: [{ name: "r", policies }, { name: "empty", policies: [] }] }),
    "t.yaml",
    {},
    { pythonInterpreter: "x", pythonHome: "." },
  );
  const kernel = new Kernel(
    await buildRouteTable(config, { registry, factoryFor: (p) => p.factory, compileCondition }),
  );
  const exchanges: [string, Parameters<typeof create<typeof ProcessingRequestSchema>>[1][]][] = [
    ["two header phases", [
      requestHeaders("r", "/p", [["x-gone", "1"], ["x-request-id", "id-1"]]),
      requestBody("{}"),
      responseHeaders(200, [["content-type", "text/plain"]]),
    ]],
    ["a route without policies", [requestHeaders("empty", "/", [], true)]],
    ["an unmatched route", [requestHeaders("none", "/", [], true)]],
  ];
  for (const [what, requests] of exchanges) {
    const stream = new ExchangeStream(kernel);
    for (const request of requests) {
      const answer = await stream.handle(create(ProcessingRequestSchema, request));
      if (answer) same(answer, `${what}: ${answer.response.case}`);
    }
    stream.release();
  }
});

Deno.test("every shape and edge case of the fields Tollgate sends encodes as protobuf-es encodes it", () => {
  const long = "v".repeat(20_000);
  const big = new Uint8Array(3 * 1024 * 1024).fill(7);
  const metadata: JsonObject = {
    tollgate: {
      trace: "set-headers:v1=modified:0.01ms",
      n: 1.5,
      zero: 0,
      negativeZero: -0,
      negative: -42,
      large: 2 ** 53,
      yes: true,
      no: false,
      nothing: null,
      list: [1, "two", null, [false], { in: "list" }],
      nested: { deeper: { deepest: "ümlaut ✓ 😀" } },
      empty: {},
      emptyList: [],
      "": "empty key",
      "ключ": "значение",
      longAscii: "a".repeat(100),
      longText: "ü✓😀".repeat(40),
      ["k".repeat(40)]: "a long key",
    },
  };
  const shapes: [string, Init][] = [
    ["empty", {}],
    ["request headers, nothing changed", { response: { case: "requestHeaders", value: {} } }],
    ["request headers, an empty common response", {
      response: { case: "requestHeaders", value: { response: {} } },
    }],
    ["a header mutation with every option field", {
      response: {
        case: "requestHeaders",
        value: {
          response: {
            status: CommonResponse_ResponseStatus.CONTINUE_AND_REPLACE,
            headerMutation: {
              setHeaders: [
                option("x-a", "1"),
                option("x-a", "2", { append: true }),
                option("x-b", "", { append: false, keepEmptyValue: true }),
                option("x-c", "ü ✓ 😀", { appendAction: 2 }),
                { header: { key: "x-old", value: "legacy value" } },
                { header: { key: "x-long", rawValue: encoder.encode(long) } },
                {},
              ],
              removeHeaders: ["x-gone", "x-ü", "", `x-${"long-".repeat(20)}`, "x-ü".repeat(20)],
            },
            bodyMutation: { mutation: { case: "body", value: encoder.encode("new body") } },
            clearRouteCache: true,
          },
        },
      },
    }],
    ["a body cleared by empty bytes", {
      response: {
        case: "requestBody",
        value: { response: { bodyMutation: { mutation: { case: "body", value: new Uint8Array() } } } },
      },
    }],
    ["a body cleared", {
      response: { case: "responseBody", value: { response: chunkResponse(new Uint8Array()) } },
    }],
    ["clearBody false", {
      response: {
        case: "responseBody",
        value: { response: { bodyMutation: { mutation: { case: "clearBody", value: false } } } },
      },
    }],
    ["a body mutation without a case", {
      response: { case: "responseBody", value: { response: { bodyMutation: {} } } },
    }],
    ["a streamed chunk of 3 MiB", {
      response: { case: "responseBody", value: { response: chunkResponse(big) } },
    }],
    ["response headers with the trace", {
      response: { case: "responseHeaders", value: { response: setHeadersResponse([["x-r", "1"]]) } },
      dynamicMetadata: metadata,
    }],
    ["trailers", { response: { case: "requestTrailers", value: {} } }],
    ["trailers with a mutation", {
      response: {
        case: "responseTrailers",
        value: { headerMutation: { setHeaders: [option("x-t", "1")], removeHeaders: ["x-u"] } },
      },
    }],
    ["a mode override", {
      response: { case: "requestHeaders", value: {} },
      modeOverride: PASS_THROUGH_MODE,
      dynamicMetadata: {},
    }],
    ["every mode field", {
      modeOverride: create(ProcessingModeSchema, {
        requestHeaderMode: 1,
        responseHeaderMode: 2,
        requestBodyMode: 3,
        responseBodyMode: 4,
        requestTrailerMode: 1,
        responseTrailerMode: 2,
      }),
    }],
    ["a negative enum", {
      response: {
        case: "requestHeaders",
        value: { response: { status: -3 as CommonResponse_ResponseStatus } },
      },
    }],
    ["an immediate response", {
      response: {
        case: "immediateResponse",
        value: immediateResponse({
          statusCode: 403,
          headers: [["content-type", "application/json"], ["set-cookie", "a"], ["set-cookie", "b"]],
          body: encoder.encode('{"error":"forbidden"}'),
          policy: "jwt-auth:v1",
        }),
      },
      dynamicMetadata: metadata,
    }],
    ["an immediate response with every field", {
      response: {
        case: "immediateResponse",
        value: {
          status: { code: 0 },
          headers: {},
          body: big,
          grpcStatus: { status: 300 },
          details: "tollgate_ü",
        },
      },
    }],
    ["an immediate response with empty sub-messages", {
      response: { case: "immediateResponse", value: { status: { code: 200 }, grpcStatus: { status: 0 } } },
    }],
  ];
  for (const [what, init] of shapes) same(message(init), what);
});

Deno.test("a field the encoder does not write itself leaves the message to protobuf-es", () => {
  same(message({ overrideMessageTimeout: { seconds: 3n, nanos: 5 } }), "override_message_timeout");
  const odd = message({ response: { case: "requestHeaders", value: {} } });
  odd.$unknown = [{ no: 99, wireType: 0, data: new Uint8Array([1]) }];
  same(odd, "unknown fields");
});
