/**
 * ExchangeStream's contract with the transport: an answer whose policies did not wait is a
 * value, returned in the call that handled the message (the transport writes it in the
 * same tick); only a policy that waits makes the answer a promise.
 */
import assert from "node:assert/strict";
import { create } from "@bufbuild/protobuf";
import { compileCondition } from "../../src/chain/condition.ts";
import { parseConfig } from "../../src/config/load.ts";
import { ExchangeStream } from "../../src/extproc/stream.ts";
import {
  ProcessingRequestSchema,
  type ProcessingResponse,
} from "../../src/gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";
import { generatedPolicies } from "../../src/gen/test/registry.ts";
import { buildRouteTable } from "../../src/kernel/build.ts";
import { Kernel } from "../../src/kernel/routes.ts";
import { PolicyRegistry } from "../../src/registry/registry.ts";
import { requestHeaders, responseHeaders } from "../support/extproc_client.ts";

const registry = new PolicyRegistry(generatedPolicies);

async function kernel(policies: unknown[]): Promise<Kernel> {
  const config = parseConfig(JSON.stringify({ routes: [{ name: "r", policies }] }), "t.yaml", {}, {
    pythonInterpreter: "x",
    pythonHome: ".",
  });
  return new Kernel(
    await buildRouteTable(config, { registry, factoryFor: (p) => p.factory, compileCondition }),
  );
}

const setHeaders = {
  name: "set-headers",
  version: "v1",
  parameters: {
    requestHeaders: [{ name: "x-in", value: "1" }],
    responseHeaders: [{ name: "x-out", value: "1" }],
  },
};

/** The answer, which must not be a promise. */
function now(answer: ReturnType<ExchangeStream["handle"]>): ProcessingResponse {
  assert.ok(answer !== undefined && !(answer instanceof Promise), "answered in the same call");
  return answer;
}

Deno.test("synchronous policies: both header answers are values, with the policies' changes", async () => {
  const stream = new ExchangeStream(await kernel([setHeaders, setHeaders]));
  const request = now(stream.handle(create(ProcessingRequestSchema, requestHeaders("r", "/", [], true))));
  assert.equal(request.response.case, "requestHeaders");
  const mutation = request.response.case === "requestHeaders"
    ? request.response.value.response?.headerMutation
    : undefined;
  assert.deepEqual(mutation?.setHeaders.map((h) => h.header?.key), ["x-in"]);
  const response = now(stream.handle(create(ProcessingRequestSchema, responseHeaders(200))));
  assert.equal(response.response.case, "responseHeaders");
  stream.release();
});

Deno.test("a route without policies answers its request headers at once", async () => {
  const stream = new ExchangeStream(await kernel([]));
  const answer = now(stream.handle(create(ProcessingRequestSchema, requestHeaders("r", "/", [], true))));
  assert.equal(answer.response.case, "requestHeaders");
  stream.release();
});
