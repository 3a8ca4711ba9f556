/**
 * The ext_proc server as Envoy sees it: a grpc-js client speaking Envoy's side of the
 * protocol to the real server over its Unix socket, and a bare HTTP/2 client for what a
 * gRPC library would not send (malformed, compressed, oversized frames) and for checking
 * the wire itself (trailers, GOAWAY). Every case runs against both transports.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { stringify } from "yaml";
import { configDefaults } from "../../src/cli.ts";
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

for (const transport of TRANSPORTS) {
Deno.test({
  name: `ext_proc protocol over a Unix socket (${transport} transport)`,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const { client, stop, adminPort, socket } = await startEngine(transport);
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
        await t.step(`route ${route ?? "(attribute missing)"} passes through with one message`, async () => {
          const stream = client.open();
          const response = await stream.exchange(requestHeaders(route, "/x"));
          assert.equal(response.response.case, "requestHeaders");
          assert.deepEqual(mutationLines(response), []);
          assert.equal(response.modeOverride?.responseHeaderMode, HeaderMode.SKIP);
          assert.equal(response.modeOverride?.requestBodyMode, BodyMode.NONE);
          assert.equal((await stream.finish()).code, 0);
        });
      }

      await t.step("an immediate response in each phase", async () => {
        const phases = [
          { route: "deny-requestHeaders", steps: [requestHeaders("deny-requestHeaders", "/x")] },
          { route: "deny-requestBody", steps: [requestHeaders("deny-requestBody", "/x"), requestBody("b")] },
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
        const responseTrailers = await stream.exchange({ request: { case: "responseTrailers", value: {} } });
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
    } finally {
      await stop();
    }
  },
});
}
