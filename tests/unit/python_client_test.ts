/**
 * The executor client against a fake executor that injects faults: an answer of the wrong
 * kind breaks the connection, chunk calls share the in-flight cap, every call keeps its own
 * deadline under the one deadline timer, and the bridge's pre-encoded policies arrive in
 * both kinds of call.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { PolicyFailure } from "../../src/chain/failure.ts";
import {
  ChunkRequestSchema,
  ChunkResponseSchema,
  ExecuteRequestSchema,
  ExecuteResponseSchema,
  FailureRule,
  Phase,
} from "../../src/gen/proto/tollgate/executor/v1/executor_pb.ts";
import { generatedPolicies } from "../../src/gen/test/registry.ts";
import { PythonBridge } from "../../src/python/bridge.ts";
import { ExecutorClient } from "../../src/python/client.ts";
import { PolicyRegistry } from "../../src/registry/registry.ts";
import { entry } from "../support/chains.ts";
import { request } from "../support/python_bridge.ts";
import { encodeFrame, FrameDecoder, FrameKind } from "../../src/python/frames.ts";

/** A fake executor: `answer` decides what each received frame gets back (nothing when undefined). */
async function fakeExecutor(answer: (kind: FrameKind, payload: Uint8Array) => Uint8Array | undefined) {
  const dir = await Deno.makeTempDir({ prefix: "tollgate-client-" });
  const path = join(dir, "fake.sock");
  const listener = Deno.listen({ transport: "unix", path });
  const connections: Deno.Conn[] = [];
  (async () => {
    for await (const conn of listener) {
      connections.push(conn);
      (async () => {
        const decoder = new FrameDecoder(1 << 20);
        const buffer = new Uint8Array(65536);
        try {
          for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
            for (const frame of decoder.push(buffer.subarray(0, n))) {
              const reply = answer(frame.kind, frame.payload);
              if (reply) await conn.write(reply);
            }
          }
        } catch {
          // the client closed the connection
        }
      })();
    }
  })().catch(() => {});
  return {
    path,
    async close() {
      listener.close();
      for (const conn of connections) {
        try {
          conn.close();
        } catch {
          // already closed
        }
      }
      await Deno.remove(dir, { recursive: true });
    },
  };
}

const chunkCall = { phase: Phase.RESPONSE, data: new Uint8Array([1]), chunkIndex: 0 };

Deno.test({
  name: "a chunk call answered with an ExecuteResponse breaks the connection: the call fails as unavailable",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const fake = await fakeExecutor((kind, payload) => {
      assert.equal(kind, FrameKind.ChunkRequest);
      const { callId } = fromBinary(ChunkRequestSchema, payload);
      return encodeFrame(
        FrameKind.ExecuteResponse,
        toBinary(ExecuteResponseSchema, create(ExecuteResponseSchema, { callId })),
      );
    });
    const client = new ExecutorClient({ socket: fake.path, maxInFlight: 8, maxMessageBytes: 1 << 20 });
    try {
      await assert.rejects(
        client.callChunk(chunkCall, 5000),
        (error: unknown) =>
          error instanceof PolicyFailure && error.kind === "unavailable" &&
          /answered call 1 with a frame of kind ExecuteResponse/.test(error.message),
      );
      assert.equal(client.inFlight, 0);
    } finally {
      client.close();
      await fake.close();
    }
  },
});

Deno.test({
  name: "chunk calls count against python.maxInFlight with the other calls",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const fake = await fakeExecutor(() => undefined); // never answers
    const client = new ExecutorClient({ socket: fake.path, maxInFlight: 1, maxMessageBytes: 1 << 20 });
    try {
      const first = client.call({ phase: Phase.REQUEST }, 300);
      await assert.rejects(
        client.callChunk(chunkCall, 300),
        (error: unknown) => error instanceof PolicyFailure && error.kind === "unavailable",
      );
      await assert.rejects(
        first,
        (error: unknown) => error instanceof PolicyFailure && error.kind === "timeout",
      );
    } finally {
      client.close();
      await fake.close();
    }
  },
});

Deno.test({
  name: "each call keeps its own deadline: a later call with a shorter one times out first, alone",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const fake = await fakeExecutor(() => undefined); // never answers
    const client = new ExecutorClient({ socket: fake.path, maxInFlight: 8, maxMessageBytes: 1 << 20 });
    try {
      const long = client.call({ phase: Phase.REQUEST }, 3000);
      long.catch(() => {});
      const started = performance.now();
      await assert.rejects(
        client.call({ phase: Phase.REQUEST }, 100),
        (error: unknown) =>
          error instanceof PolicyFailure && error.kind === "timeout" &&
          /its 100ms deadline/.test(error.message),
      );
      assert.ok(
        performance.now() - started < 2500,
        "the short call did not wait for the long one's deadline",
      );
      assert.equal(client.inFlight, 1, "the long call is still waiting");
    } finally {
      client.close();
      await fake.close();
    }
  },
});

Deno.test({
  name: "the bridge's policies, encoded once per entry, arrive in execute and chunk calls alike",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const received: { kind: FrameKind; names: string[]; rules: FailureRule[]; headers: string[] }[] = [];
    const fake = await fakeExecutor((kind, payload) => {
      const message = kind === FrameKind.ChunkRequest
        ? fromBinary(ChunkRequestSchema, payload)
        : fromBinary(ExecuteRequestSchema, payload);
      received.push({
        kind,
        names: message.policies.map((p) => `${p.name}@${p.version}#${p.params?.headerName}`),
        rules: message.policies.map((p) => p.onFailure),
        headers: message.request?.headers.map((h) => `${h.name}=${h.value}`) ?? [],
      });
      const results = message.policies.map(() => ({}));
      return kind === FrameKind.ChunkRequest
        ? encodeFrame(
          FrameKind.ChunkResponse,
          toBinary(
            ChunkResponseSchema,
            create(ChunkResponseSchema, {
              callId: message.callId,
              results: results.map(() => ({ outcome: { case: "forwarded" as const, value: {} } })),
            }),
          ),
        )
        : encodeFrame(
          FrameKind.ExecuteResponse,
          toBinary(
            ExecuteResponseSchema,
            create(ExecuteResponseSchema, {
              callId: message.callId,
              results: results.map(() => ({ outcome: { case: "modifications" as const, value: {} } })),
            }),
          ),
        );
    });
    const client = new ExecutorClient({ socket: fake.path, maxInFlight: 8, maxMessageBytes: 1 << 20 });
    try {
      const bridge = new PythonBridge(() => client, 1000);
      const found = new PolicyRegistry(generatedPolicies).find("add-python-header", "v1");
      assert.ok(found.ok);
      const make = (headerName: string) =>
        bridge.factoryFor(found.policy)(
          { routeName: "r", policyName: "add-python-header", policyVersion: "v1.0.0", attachedTo: "route" },
          { headerName, headerValue: "v" },
        );
      const entries = [
        { ...entry("add-python-header:v1", await make("x-a")), batch: bridge },
        { ...entry("add-python-header:v1", await make("x-b"), { onFailure: "continue" }), batch: bridge },
      ];
      for (const path of ["/one", "/two"]) {
        const outcomes = await bridge.run(entries, "request", request(path, [["x-in", path]]));
        assert.equal(outcomes.length, 2);
        assert.ok(outcomes.every((outcome) => "action" in outcome));
      }
      const chunk = await bridge.runChunk(
        entries,
        "request",
        new Uint8Array([1]),
        true,
        0,
        request("/three"),
      );
      assert.equal(chunk.outcomes.length, 2);
      const names = ["add-python-header@v1.0.0#x-a", "add-python-header@v1.0.0#x-b"];
      const rules = [FailureRule.DENY, FailureRule.CONTINUE];
      assert.deepEqual(received, [
        { kind: FrameKind.ExecuteRequest, names, rules, headers: ["x-in=/one"] },
        { kind: FrameKind.ExecuteRequest, names, rules, headers: ["x-in=/two"] },
        { kind: FrameKind.ChunkRequest, names, rules, headers: [] },
      ]);
    } finally {
      client.close();
      await fake.close();
    }
  },
});
