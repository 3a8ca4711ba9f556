/**
 * The hand-written ProcessingRequest decoder (src/extproc/request_codec.ts) must build exactly
 * what protobuf-es's fromBinary builds, for every shape Envoy sends and for the ones it hands
 * back to protobuf-es (metadata, unknown fields, fields given twice, malformed input).
 */
import assert from "node:assert/strict";
import { create, fromBinary, type JsonObject, toBinary } from "@bufbuild/protobuf";
import { decodeProcessingRequest } from "../../src/extproc/request_codec.ts";
import {
  type ProcessingRequest,
  ProcessingRequestSchema,
} from "../../src/gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";

type Init = Parameters<typeof create<typeof ProcessingRequestSchema>>[1];

const bytes = (init: Init) => toBinary(ProcessingRequestSchema, create(ProcessingRequestSchema, init));

function same(wire: Uint8Array, name: string): ProcessingRequest {
  const ours = decodeProcessingRequest(wire);
  assert.deepStrictEqual(ours, fromBinary(ProcessingRequestSchema, wire), name);
  return ours;
}

const headers = [
  { key: ":method", rawValue: new TextEncoder().encode("POST") },
  { key: ":path", rawValue: new TextEncoder().encode("/a?b=c") },
  { key: "x-ünïcode-ключ", value: "plain value", rawValue: new Uint8Array(0) },
  { key: "x-long", rawValue: new TextEncoder().encode("v".repeat(5000)) },
  { key: "k".repeat(100), rawValue: new Uint8Array([0xff, 0xfe, 0]) },
  { key: "", value: "", rawValue: new Uint8Array(0) },
];

const attributes: { [key: string]: JsonObject } = {
  "envoy.filters.http.ext_proc": {
    "xds.route_name": "bench",
    "source.address": "10.0.0.1:5555",
    number: -1.25e300,
    zero: 0,
    yes: true,
    no: false,
    nothing: null,
    list: [1, "two", [3], { four: 4 }, null, false],
    nested: { deeper: { deepest: "é" } },
    empty: {},
    "": "empty key",
  },
  other: {},
};

const SHAPES: [string, Init][] = [
  ["an empty message", {}],
  ["request headers", {
    request: { case: "requestHeaders", value: { headers: { headers }, endOfStream: true } },
  }],
  ["request headers with attributes", {
    request: { case: "requestHeaders", value: { headers: { headers } } },
    attributes,
  }],
  ["response headers, no header map", { request: { case: "responseHeaders", value: {} } }],
  ["an empty header map", { request: { case: "responseHeaders", value: { headers: { headers: [] } } } }],
  ["a request body", {
    request: { case: "requestBody", value: { body: new Uint8Array(70_000).fill(7), endOfStream: true } },
  }],
  ["an empty response body", { request: { case: "responseBody", value: { body: new Uint8Array(0) } } }],
  ["request trailers", { request: { case: "requestTrailers", value: { trailers: { headers } } } }],
  ["response trailers, none", { request: { case: "responseTrailers", value: {} } }],
  ["observability mode", { request: { case: "requestHeaders", value: {} }, observabilityMode: true }],
  ["the protocol configuration", {
    request: { case: "requestHeaders", value: { headers: { headers } } },
    protocolConfig: {
      requestBodyMode: 1,
      responseBodyMode: 3,
      sendBodyWithoutWaitingForHeaderResponse: true,
    },
  }],
  ["metadata (left to protobuf-es)", {
    request: { case: "requestHeaders", value: {} },
    metadataContext: { filterMetadata: { f: { a: 1 } } },
  }],
];

for (const [name, init] of SHAPES) {
  Deno.test(`request codec: ${name} decodes as protobuf-es decodes it`, () => {
    same(bytes(init), name);
  });
}

Deno.test("request codec: header values are views of the message, as protobuf-es's are", () => {
  const wire = bytes(SHAPES[1][1]);
  const decoded = decodeProcessingRequest(wire);
  assert.equal(decoded.request.case, "requestHeaders");
  const raw = decoded.request.case === "requestHeaders" && decoded.request.value.headers!.headers[0].rawValue;
  assert.ok(raw);
  assert.equal(raw.buffer, wire.buffer);
});

Deno.test("request codec: unknown fields, fields given twice and merges are protobuf-es's", () => {
  const headersMessage = bytes(SHAPES[1][1]);
  const unknown = new Uint8Array([...headersMessage, 0xa0, 0x06, 0x01]); // field 100, varint 1
  assert.ok(same(unknown, "an unknown field").$unknown, "protobuf-es keeps the unknown field");
  same(new Uint8Array([...headersMessage, ...headersMessage]), "the oneof given twice (merged)");
  const twoCases = new Uint8Array([
    ...headersMessage,
    ...bytes({ request: { case: "requestBody", value: {} } }),
  ]);
  assert.equal(same(twoCases, "two oneof cases").request.case, "requestBody");
  const withAttributes = bytes({ attributes });
  same(new Uint8Array([...withAttributes, ...withAttributes]), "a map given twice");
  same(new Uint8Array([0x50, 0x01, 0x50, 0x00]), "a bool given twice: the last wins");
  same(new Uint8Array([0x50, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]), "a 64-bit varint");
  same(new Uint8Array([0x22, 0x03, 0x0a, 0x01, 0xc3]), "a body that is not UTF-8 (bytes are bytes)");
  const badKey = new Uint8Array([0x12, 0x08, 0x0a, 0x06, 0x0a, 0x04, 0x0a, 0x02, 0xc3, 0x28]);
  assert.throws(() => fromBinary(ProcessingRequestSchema, badKey), /not valid/);
  assert.throws(
    () => decodeProcessingRequest(badKey),
    /not valid/,
    "a key that is not UTF-8 is refused alike",
  );
  const bom = new Uint8Array([0x12, 0x09, 0x0a, 0x07, 0x0a, 0x05, 0x0a, 0x03, 0xef, 0xbb, 0xbf]);
  const withBom = same(bom, "a key that starts with U+FEFF").request;
  assert.equal(withBom.case === "requestHeaders" && withBom.value.headers?.headers[0].key, "\ufeff");
});

Deno.test("request codec: random messages decode as protobuf-es decodes them", () => {
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const word = () =>
    Array.from({ length: Math.floor(random() * 12) }, () => "aZ-é:/\u4e16"[Math.floor(random() * 7)]).join(
      "",
    );
  for (let i = 0; i < 300; i++) {
    const list = Array.from({ length: Math.floor(random() * 6) }, () => ({
      key: word(),
      value: random() < 0.3 ? word() : "",
      rawValue: random() < 0.7 ? new TextEncoder().encode(word()) : new Uint8Array(0),
    }));
    const cases = [
      "requestHeaders",
      "responseHeaders",
      "requestBody",
      "responseBody",
      "requestTrailers",
    ] as const;
    const which = cases[Math.floor(random() * cases.length)];
    const request = which.endsWith("Headers")
      ? { case: which, value: { headers: { headers: list }, endOfStream: random() < 0.5 } }
      : which.endsWith("Body")
      ? { case: which, value: { body: new TextEncoder().encode(word()), endOfStream: random() < 0.5 } }
      : { case: which, value: { trailers: { headers: list } } };
    const init = {
      request,
      attributes: random() < 0.5
        ? { [word()]: { [word()]: word(), n: random() * 1e6, l: [word(), random() < 0.5] } }
        : {},
      observabilityMode: random() < 0.1,
    } as Init;
    same(bytes(init), `random message ${i}`);
  }
});

Deno.test("request codec: a malformed message fails with protobuf-es's own error", () => {
  const wire = bytes(SHAPES[2][1]);
  for (const cut of [1, 5, 17, wire.byteLength - 1]) {
    const truncated = wire.subarray(0, cut);
    const expected = (() => {
      try {
        fromBinary(ProcessingRequestSchema, truncated);
      } catch (error) {
        return (error as Error).message;
      }
      return "no error";
    })();
    assert.throws(() => decodeProcessingRequest(truncated), (error: Error) => error.message === expected);
  }
});
