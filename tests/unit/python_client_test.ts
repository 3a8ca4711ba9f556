/**
 * The executor client's chunk calls against a fake executor that injects faults: an answer
 * of the wrong kind breaks the connection, and chunk calls share the in-flight cap.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { PolicyFailure } from "../../src/chain/failure.ts";
import {
  ChunkRequestSchema,
  ExecuteResponseSchema,
  Phase,
} from "../../src/gen/proto/tollgate/executor/v1/executor_pb.ts";
import { ExecutorClient } from "../../src/python/client.ts";
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
