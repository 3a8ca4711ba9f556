/**
 * The lean transport's connection and stream limits, on a real socket with short timeouts:
 * the stream limit advertised in SETTINGS, keepalive pings answered, an idle connection
 * closed with GOAWAY, a silent stream ended with DEADLINE_EXCEEDED.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { stringify } from "yaml";
import { configDefaults } from "../../src/cli_build.ts";
import { parseConfig } from "../../src/config/load.ts";
import { compileCondition } from "../../src/chain/condition.ts";
import { fromBinary } from "@bufbuild/protobuf";
import { LeanExtProcServer } from "../../src/extproc/lean_server.ts";
import { ProcessingResponseSchema } from "../../src/gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";
import { MessageDecoder } from "../../src/transport/grpc_frames.ts";
import { generatedPolicies } from "../../src/gen/test/registry.ts";
import { buildRouteTable } from "../../src/kernel/build.ts";
import { Kernel } from "../../src/kernel/routes.ts";
import { PolicyRegistry } from "../../src/registry/registry.ts";
import { requestHeaders } from "../support/extproc_client.ts";
import { waitFor } from "../support/ports.ts";
import { RawGrpcClient, requestFrame } from "../support/raw_grpc.ts";

async function startLean(
  limits: { idleTimeoutMs: number; streamIdleTimeoutMs: number; prefaceTimeoutMs: number },
) {
  const { idleTimeoutMs, streamIdleTimeoutMs, prefaceTimeoutMs } = limits;
  const dir = await Deno.makeTempDir({ prefix: "tollgate-lean-" });
  const socket = join(dir, "extproc.sock");
  const config = parseConfig(
    stringify({
      listen: { socket },
      routes: [
        { name: "empty", policies: [] },
        {
          name: "slow",
          policies: [{ name: "slow", version: "v1", parameters: { delayMs: 100 } }, {
            name: "echo",
            version: "v1",
          }],
        },
      ],
    }),
    "lean-limits",
    {},
    configDefaults(),
  );
  const registry = new PolicyRegistry(generatedPolicies);
  const kernel = new Kernel(
    await buildRouteTable(config, { registry, factoryFor: (p) => p.factory, compileCondition }),
  );
  const server = await LeanExtProcServer.start({
    kernel,
    listen: config.listen,
    connections: { ...config.connections, maxConcurrentStreams: 7, idleTimeoutMs },
    maxMessageBytes: 64 * 1024,
    streamIdleTimeoutMs,
    prefaceTimeoutMs,
  });
  return {
    socket,
    server,
    async stop() {
      await server.shutdown(1000);
      await Deno.remove(dir, { recursive: true });
    },
  };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.byteLength;
  }
  return out;
}

/** The response messages in a stream's body, in order. */
function decodeResponses(body: Uint8Array) {
  const decoder = new MessageDecoder(1 << 20);
  const messages = decoder.push(body).map((payload) => fromBinary(ProcessingResponseSchema, payload));
  decoder.finish();
  return messages;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

Deno.test({
  name: "lean transport: SETTINGS, pings, idle connections and silent streams",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const lean = await startLean({ idleTimeoutMs: 300, streamIdleTimeoutMs: 700, prefaceTimeoutMs: 50 });
    try {
      await t.step("the stream limit is advertised and pings are answered", async () => {
        const raw = new RawGrpcClient(lean.socket);
        try {
          const settings = await new Promise<{ maxConcurrentStreams?: number }>((resolve) =>
            raw.session.once("remoteSettings", resolve)
          );
          assert.equal(settings.maxConcurrentStreams, 7);
          await new Promise<void>((resolve, reject) =>
            raw.session.ping((error) => error ? reject(error) : resolve())
          );
        } finally {
          raw.close();
        }
      });

      await t.step("a connection without streams is closed with GOAWAY after the idle timeout", async () => {
        const raw = new RawGrpcClient(lean.socket);
        const { trailers } = await raw.call([requestFrame(requestHeaders("empty", "/x"))]).result;
        assert.equal(trailers["grpc-status"], "0");
        await sleep(150);
        assert.equal(raw.goaway, false, "not before the timeout");
        await sleep(450);
        assert.equal(raw.goaway, true);
        raw.close();
      });

      await t.step("messages queued behind a slow policy are answered in order, none lost", async () => {
        const raw = new RawGrpcClient(lean.socket);
        try {
          const trailers = Array.from(
            { length: 9 },
            () => requestFrame({ request: { case: "requestTrailers", value: {} } }),
          );
          // One chunk: the slow answer first, nine more behind it (reading pauses at four queued).
          const { body, trailers: status } = await raw.call([concat([
            requestFrame(requestHeaders("slow", "/queued")),
            ...trailers,
          ])]).result;
          assert.equal(status["grpc-status"], "0");
          const kinds = decodeResponses(body).map((r) => r.response.case);
          assert.deepEqual(kinds, ["requestHeaders", ...Array(9).fill("requestTrailers")]);
        } finally {
          raw.close();
        }
      });

      await t.step(
        "a connection that never sends the HTTP/2 preface is closed after the preface timeout",
        async () => {
          const conn = await Deno.connect({ transport: "unix", path: lean.socket });
          const started = Date.now();
          const buffer = new Uint8Array(4096);
          while (await conn.read(buffer).catch(() => null) !== null) {
            // the server's SETTINGS, then the end
          }
          conn.close();
          assert.ok(Date.now() - started < 290, "closed by the preface timeout, before the idle timeout");
        },
      );

      // Past the preface timeout too: a connection that sent its preface is not cut by it.
      await t.step("a connection with an open stream is not idle", async () => {
        const raw = new RawGrpcClient(lean.socket);
        try {
          const { stream, result } = raw.call([], { keepOpen: true });
          await sleep(500);
          assert.equal(raw.goaway, false, "past the idle timeout, with a stream open");
          stream.end(requestFrame(requestHeaders("empty", "/late")));
          assert.equal((await result).trailers["grpc-status"], "0");
        } finally {
          raw.close();
        }
      });

      await t.step(
        "a silent stream ends with DEADLINE_EXCEEDED and is released",
        async () => {
          const raw = new RawGrpcClient(lean.socket);
          try {
            const started = Date.now();
            const { result } = raw.call([], { keepOpen: true });
            const { trailers } = await result;
            assert.equal(trailers["grpc-status"], "4");
            assert.ok(Date.now() - started >= 650, "not before the stream idle timeout");
            await waitFor("the stream to be released", () => lean.server.activeStreams === 0, 2000);
          } finally {
            raw.close();
          }
        },
      );
    } finally {
      await lean.stop();
    }
  },
});
