/**
 * The ext_proc server as Envoy sees it: a grpc-js client speaking Envoy's side of the
 * protocol to the real server over its Unix socket, and a bare HTTP/2 client for what a
 * gRPC library would not send (malformed, compressed, oversized frames) and for checking
 * the wire itself (trailers, GOAWAY). Every case runs against both transports.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { stringify } from "yaml";
import { configDefaults } from "../../src/cli_build.ts";
import { Engine } from "../../src/engine.ts";
import { generatedPolicies, pythonRegistry } from "../../src/gen/test/registry.ts";
import { venvPython } from "../../scripts/lib/venv.ts";
import type { ProcessingResponse } from "../../src/gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";
import {
  ProcessingMode_BodySendMode as BodyMode,
  ProcessingMode_HeaderSendMode as HeaderMode,
} from "../../src/gen/proto/envoy/extensions/filters/http/ext_proc/v3/processing_mode_pb.ts";
import {
  ExtProcClient,
  mutationLines,
  requestBody,
  requestHeaders,
  responseBody,
  responseHeaders,
} from "../support/extproc_client.ts";
import { freePort } from "../support/ports.ts";
import { frame, RawGrpcClient, requestFrame } from "../support/raw_grpc.ts";
import type { ListenTransport } from "../../src/config/types.ts";

const TRANSPORTS: readonly ListenTransport[] = ["lean", "grpc-js"];
/** The engine's smallest gRPC message limit (limits.maxBodyBytes is small here). */
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

/**
 * Where the transports answer differently (grpc-status as sent). grpc-js 1.14 reads a frame
 * flagged compressed on an identity stream as if it were not, and ends a stream cut inside
 * a message with OK, dropping the partial message; the lean transport refuses both. To a
 * request that is not gRPC (content-type) grpc-js answers HTTP 200 without any gRPC status;
 * the lean transport answers 415 with one, as the gRPC protocol asks.
 */
const EXPECTED: Record<
  ListenTransport,
  { compressed: string; truncated: string; notGrpcHttpStatus: number }
> = {
  lean: { compressed: "12", truncated: "13", notGrpcHttpStatus: 415 },
  "grpc-js": { compressed: "0", truncated: "0", notGrpcHttpStatus: 200 },
};

/** How many length-prefixed messages `body` holds. */
function countFrames(body: Uint8Array): number {
  let count = 0;
  for (let at = 0; at + 5 <= body.byteLength; count++) {
    at += 5 + new DataView(body.buffer, body.byteOffset + at + 1, 4).getUint32(0);
  }
  return count;
}

const policy = (name: string, parameters: Record<string, unknown> = {}) => ({
  name,
  version: "v1",
  parameters,
});
const text = new TextDecoder();

const routes = [
  {
    name: "full",
    policies: [
      policy("trace", { label: "A" }),
      policy("replace-body", { add: { added: true } }),
      policy("wrap-response-body"),
      policy("trace", { label: "B" }),
    ],
  },
  {
    name: "headers-only",
    policies: [policy("set-headers", { requestHeaders: [{ name: "x-a", value: "1" }] })],
  },
  { name: "empty", policies: [] },
  { name: "echo", policies: [policy("echo")] },
  { name: "slow", policies: [policy("slow", { delayMs: 300 }), policy("echo")] },
  ...(["requestHeaders", "requestBody", "responseHeaders", "responseBody"] as const).map((phase) => ({
    name: `deny-${phase}`,
    policies: [policy("deny", { phase, status: 451 })],
  })),
  {
    name: "local-reply",
    policies: [policy("set-headers", { responseHeaders: [{ name: "x-local", value: "seen" }] })],
  },
];

async function startEngine(transport: ListenTransport) {
  const dir = await Deno.makeTempDir({ prefix: "tollgate-protocol-" });
  const socket = join(dir, "extproc.sock");
  const configPath = join(dir, "tollgate.yaml");
  const adminPort = freePort();
  await Deno.writeTextFile(
    configPath,
    stringify({
      listen: { socket, transport },
      admin: { address: `127.0.0.1:${adminPort}` },
      limits: { maxBodyBytes: 64 },
      python: { socket: join(dir, "python.sock"), interpreter: venvPython },
      shutdown: { gracePeriod: "2s" },
      log: { level: "error" },
      routes,
    }),
  );
  const engine = await Engine.start({
    policies: generatedPolicies,
    registryModule: import.meta.resolve("../../src/gen/test/registry.ts"),
    pythonRegistry,
    configPath,
    env: {},
    defaults: configDefaults(),
  });
  const client = new ExtProcClient(`unix:${socket}`);
  let stopping: Promise<void> | undefined;
  return {
    engine,
    client,
    socket,
    adminPort,
    stop() {
      stopping ??= (async () => {
        client.close();
        await engine.stop();
        await Deno.remove(dir, { recursive: true });
      })();
      return stopping;
    },
  };
}

const protocolSuite = (transport: ListenTransport): Deno.TestDefinition => ({
  name: `ext_proc protocol over a Unix socket (${transport} transport)`,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const { client, stop, adminPort, socket } = await startEngine(transport);
    const expected = EXPECTED[transport];
    try {
      await t.step(
        "every phase: headers, buffered bodies, response headers and body, with the smallest mode",
        async () => {
          const stream = client.open();
          const headers = await stream.exchange(requestHeaders("full", "/p", [["content-length", "7"]]));
          assert.equal(headers.response.case, "requestHeaders");
          assert.deepEqual(
            mutationLines(headers),
            ["x-trace=A"],
            "only the policy before the body policy ran",
          );
          const mode = headers.modeOverride!;
          assert.equal(mode.requestBodyMode, BodyMode.BUFFERED);
          assert.equal(mode.responseHeaderMode, HeaderMode.SEND);
          assert.equal(mode.responseBodyMode, BodyMode.BUFFERED);

          const body = await stream.exchange(requestBody('{"a":1}'));
          assert.equal(body.response.case, "requestBody");
          const bodyMutation = body.response.case === "requestBody"
            ? body.response.value.response?.bodyMutation
            : undefined;
          const newBody = text.decode(bodyMutation?.mutation.value as Uint8Array);
          assert.deepEqual(JSON.parse(newBody), { a: 1, added: true, originalLength: 7 });
          assert.deepEqual(mutationLines(body).sort(), [
            "+x-trace=B",
            `content-length=${newBody.length}`,
            "content-type=application/json",
            "x-trace=A",
          ], "net header changes of the body phase: x-trace ends as A, B");

          const respHeaders = await stream.exchange(responseHeaders(200, [["content-type", "text/plain"]]));
          assert.equal(respHeaders.response.case, "responseHeaders");
          assert.deepEqual(
            mutationLines(respHeaders).sort(),
            ["x-trace-metadata=A,B", "x-trace=B"],
            "B runs first in the response, before the body policy, and reads the request's metadata",
          );
          assert.equal(respHeaders.modeOverride, undefined);

          const respBody = await stream.exchange(responseBody("hello"));
          assert.equal(respBody.response.case, "responseBody");
          const wrapped = respBody.response.case === "responseBody"
            ? text.decode(respBody.response.value.response?.bodyMutation?.mutation.value as Uint8Array)
            : "";
          assert.deepEqual(JSON.parse(wrapped), { wrapped: "hello", status: 200 });
          assert.deepEqual(mutationLines(respBody).sort(), [
            "+x-trace=A",
            `content-length=${wrapped.length}`,
            "content-type=application/json",
            "x-trace-metadata=A,B",
            "x-trace=B",
          ], "A ran after the body policy, in reverse order");
          assert.equal((await stream.finish()).code, 0);
        },
      );

      await t.step("a headers-only chain skips the rest of the exchange", async () => {
        const stream = client.open();
        const response = await stream.exchange(requestHeaders("headers-only", "/x"));
        assert.deepEqual(mutationLines(response), ["x-a=1"]);
        assert.equal(response.modeOverride?.responseHeaderMode, HeaderMode.SKIP);
        assert.equal(response.modeOverride?.requestBodyMode, BodyMode.NONE);
        assert.equal(response.modeOverride?.responseBodyMode, BodyMode.NONE);
        assert.equal((await stream.finish()).code, 0);
      });

      for (const route of ["empty", "unknown-route", undefined]) {
        await t.step(
          `route ${route ?? "(attribute missing)"} passes through with one message`,
          async () => {
            const stream = client.open();
            const response = await stream.exchange(requestHeaders(route, "/x"));
            assert.equal(response.response.case, "requestHeaders");
            assert.deepEqual(mutationLines(response), []);
            assert.equal(response.modeOverride?.responseHeaderMode, HeaderMode.SKIP);
            assert.equal(response.modeOverride?.requestBodyMode, BodyMode.NONE);
            assert.equal((await stream.finish()).code, 0);
          },
        );
      }

      await t.step("an immediate response in each phase", async () => {
        const phases = [
          { route: "deny-requestHeaders", steps: [requestHeaders("deny-requestHeaders", "/x")] },
          {
            route: "deny-requestBody",
            steps: [requestHeaders("deny-requestBody", "/x"), requestBody("b")],
          },
          {
            route: "deny-responseHeaders",
            steps: [requestHeaders("deny-responseHeaders", "/x"), responseHeaders(200)],
          },
          {
            route: "deny-responseBody",
            steps: [requestHeaders("deny-responseBody", "/x"), responseHeaders(200), responseBody("b")],
          },
        ];
        for (const { route, steps } of phases) {
          const stream = client.open();
          let last: ProcessingResponse | undefined;
          for (const step of steps) last = await stream.exchange(step);
          assert.equal(last?.response.case, "immediateResponse", route);
          const immediate = last?.response.case === "immediateResponse" ? last.response.value : undefined;
          assert.equal(immediate?.status?.code, 451);
          assert.equal(text.decode(immediate?.body), `denied in ${route.slice(5)}`);
          assert.equal(immediate?.details, "tollgate_deny_v1");
          await stream.finish();
        }
      });

      await t.step("a body over limits.maxBodyBytes is refused with 413", async () => {
        const stream = client.open();
        await stream.exchange(requestHeaders("full", "/big"));
        const response = await stream.exchange(requestBody("x".repeat(65)));
        assert.equal(response.response.case, "immediateResponse");
        assert.equal(
          response.response.case === "immediateResponse" && response.response.value.status?.code,
          413,
        );
        await stream.finish();
      });

      await t.step("a stream that starts with response headers (an Envoy local reply)", async () => {
        const stream = client.open();
        const response = await stream.exchange(responseHeaders(503, [], true, "local-reply"));
        assert.equal(response.response.case, "responseHeaders");
        assert.deepEqual(mutationLines(response), ["x-local=seen"]);
        await stream.finish();
        const anonymous = client.open();
        const passed = await anonymous.exchange(responseHeaders(404, [], true));
        assert.equal(passed.response.case, "responseHeaders");
        assert.deepEqual(mutationLines(passed), []);
        await anonymous.finish();
      });

      await t.step("trailers are answered and passed through", async () => {
        const stream = client.open();
        await stream.exchange(requestHeaders("echo", "/t"));
        const trailers = await stream.exchange({ request: { case: "requestTrailers", value: {} } });
        assert.equal(trailers.response.case, "requestTrailers");
        const responseTrailers = await stream.exchange({
          request: { case: "responseTrailers", value: {} },
        });
        assert.equal(responseTrailers.response.case, "responseTrailers");
        await stream.finish();
      });

      await t.step("cancellation mid-stream is a normal end; the server keeps serving", async () => {
        const stream = client.open();
        stream.send(requestHeaders("slow", "/cancelled"));
        await new Promise((resolve) => setTimeout(resolve, 50));
        stream.call.cancel();
        assert.equal((await stream.status).code, 1, "CANCELLED, as Envoy resets streams");
        await new Promise((resolve) => setTimeout(resolve, 400));
        const after = client.open();
        const response = await after.exchange(requestHeaders("echo", "/after"));
        assert.ok(mutationLines(response).includes("x-echo-path=/after"));
        await after.finish();
        const metrics = await (await fetch(`http://127.0.0.1:${adminPort}/metrics`)).text();
        assert.match(metrics, /^tollgate_extproc_streams_active 0$/m);
      });

      await t.step("concurrent streams never see each other's data", async () => {
        const count = 200;
        await Promise.all(Array.from({ length: count }, async (_, i) => {
          const stream = client.open();
          const request = await stream.exchange(
            requestHeaders("echo", `/c/${i}`, [["x-request-id", `id-${i}`]]),
          );
          assert.deepEqual(mutationLines(request).sort(), [`x-echo-id=id-${i}`, `x-echo-path=/c/${i}`]);
          const response = await stream.exchange(responseHeaders(200 + (i % 3)));
          assert.deepEqual(mutationLines(response).sort(), [
            `x-echo-path=/c/${i}`,
            `x-echo-status=${200 + (i % 3)}`,
          ]);
          assert.equal((await stream.finish()).code, 0);
        }));
      });

      await t.step("a message over the size limit ends the stream with RESOURCE_EXHAUSTED", async () => {
        const stream = client.open();
        await stream.exchange(requestHeaders("full", "/huge"));
        stream.send(requestBody("x".repeat(MAX_MESSAGE_BYTES + 1)));
        const status = await stream.status;
        assert.equal(status.code, 8, status.details);
      });

      await t.step("malformed frames end the stream with a gRPC status, never silently", async () => {
        const raw = new RawGrpcClient(socket);
        try {
          const oversized = raw.call([frame(new Uint8Array(0), false, MAX_MESSAGE_BYTES + 1)]);
          assert.equal(
            (await oversized.result).trailers["grpc-status"],
            "8",
            "announced length over the limit",
          );
          const garbage = raw.call([frame(new Uint8Array([0xff, 0xff, 0xff, 0xff]))]);
          assert.equal((await garbage.result).trailers["grpc-status"], "13", "undecodable protobuf");
          const compressed = raw.call([frame(new Uint8Array([0x0a, 0x00]), true)]);
          assert.equal(
            (await compressed.result).trailers["grpc-status"],
            expected.compressed,
            "a compressed frame (no grpc-encoding was negotiated)",
          );
          const truncated = raw.call([frame(new Uint8Array(3), false, 100)]);
          assert.equal(
            (await truncated.result).trailers["grpc-status"],
            expected.truncated,
            "the stream ends inside a message",
          );
          const wrongPath = raw.call([], { headers: { ":path": "/envoy.Other/Call%20me" } });
          const wrong = await wrongPath.result;
          assert.equal(wrong.trailers["grpc-status"], "12");
          assert.match(String(wrong.trailers["grpc-message"]), /^[\x20-\x7e]*$/, "percent-encoded");
          assert.match(decodeURIComponent(String(wrong.trailers["grpc-message"])), /\/envoy\.Other\/Call/);
          const notGrpc = await raw.call([], { headers: { "content-type": "application/json" } }).result;
          assert.equal(notGrpc.headers[":status"], expected.notGrpcHttpStatus);
          // The server is unharmed.
          const after = client.open();
          assert.equal(
            (await after.exchange(requestHeaders("empty", "/after"))).response.case,
            "requestHeaders",
          );
          assert.equal((await after.finish()).code, 0);
        } finally {
          raw.close();
        }
      });

      await t.step("every stream the server ends carries grpc-status trailers", async () => {
        const raw = new RawGrpcClient(socket);
        try {
          const exchanges = [
            [requestFrame(requestHeaders("empty", "/pass"))],
            [requestFrame(requestHeaders("echo", "/echo")), requestFrame(responseHeaders(200))],
            [requestFrame(requestHeaders("deny-requestHeaders", "/deny"))],
            [],
          ];
          for (const chunks of exchanges) {
            const { headers, trailers, body, reset } = await raw.call(chunks).result;
            assert.equal(reset, false);
            assert.equal(headers[":status"], 200);
            assert.equal(trailers["grpc-status"], "0", `after ${chunks.length} messages`);
            assert.equal(countFrames(body), chunks.length, "one answer per message");
          }
        } finally {
          raw.close();
        }
      });
    } finally {
      await stop();
    }
  },
});

const shutdownSuite = (transport: ListenTransport): Deno.TestDefinition => ({
  name: `ext_proc shutdown sends GOAWAY and drains in-flight streams (${transport} transport)`,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const { stop, socket } = await startEngine(transport);
    const raw = new RawGrpcClient(socket);
    try {
      // Warm the connection up, so the stream below is in flight when the shutdown starts.
      assert.equal(
        (await raw.call([requestFrame(requestHeaders("empty", "/warm"))]).result).trailers["grpc-status"],
        "0",
      );
      const inFlight = raw.call([requestFrame(requestHeaders("slow", "/in-flight"))]).result;
      await new Promise((resolve) => setTimeout(resolve, 50));
      const stopped = stop();
      const { trailers, body } = await inFlight;
      assert.equal(trailers["grpc-status"], "0", "the in-flight stream finished normally");
      assert.equal(countFrames(body), 1, "and got its answer");
      await stopped;
      assert.equal(raw.goaway, true, "the connection was told to go away");
      assert.ok(raw.session.closed || raw.session.destroyed, "the connection is closed, not left open");
    } finally {
      raw.close();
      await stop();
    }
  },
});

for (const transport of TRANSPORTS) {
  Deno.test(protocolSuite(transport));
  Deno.test(shutdownSuite(transport));
}
