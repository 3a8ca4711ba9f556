/**
 * Limits on the connections Envoy (or anything else) opens to the ext_proc socket, and
 * streams that break the protocol, against the engine as a child process, on both transports.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import net from "node:net";
import * as grpc from "@grpc/grpc-js";
import { EngineProcess } from "../support/engine_process.ts";
import { ExtProcClient, requestHeaders } from "../support/extproc_client.ts";
import type { ListenTransport } from "../../src/config/types.ts";

const TRANSPORTS: readonly ListenTransport[] = ["lean", "grpc-js"];

const configFor = (transport: ListenTransport) => ({
  listen: {
    transport,
    maxConcurrentStreams: 8,
    idleTimeout: "1s",
    keepaliveInterval: "300ms",
    keepaliveTimeout: "1s",
  },
  routes: [{ name: "hdr", policies: [{ name: "trace", version: "v1", parameters: { label: "A" } }] }],
});

/** A counter's value from the engine's /metrics (0 when absent). */
async function metric(engine: EngineProcess, series: string): Promise<number> {
  const text = await (await fetch(`${engine.adminUrl}/metrics`)).text();
  const line = text.split("\n").find((l) => l.startsWith(`${series} `));
  return line ? Number(line.split(" ")[1]) : 0;
}

function connect(engine: EngineProcess): http2.ClientHttp2Session {
  const path = engine.layout.extprocSocket!;
  const session = http2.connect("http://tollgate", { createConnection: () => net.connect(path) });
  session.on("error", () => {});
  return session;
}

const connectionLimits = (transport: ListenTransport): Deno.TestDefinition => ({
  name: `connection limits on the ext_proc socket (${transport} transport)`,
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    const engine = await EngineProcess.start({ config: configFor(transport) });
    try {
      await t.step("the concurrent-stream limit is advertised in the server's SETTINGS", async () => {
        const session = connect(engine);
        const settings = await new Promise<http2.Settings>((resolve) =>
          session.once("remoteSettings", resolve)
        );
        assert.equal(settings.maxConcurrentStreams, 8);
        session.destroy();
      });

      await t.step("an idle connection is closed after listen.idleTimeout", async () => {
        const session = connect(engine);
        const started = performance.now();
        await new Promise((resolve) => session.once("close", resolve));
        const elapsed = performance.now() - started;
        assert.ok(elapsed >= 900, `closed after ${elapsed} ms, not before the idle timeout`);
      });

      await t.step("a connection that never sends the HTTP/2 preface is closed too", async () => {
        const conn = await Deno.connect({ transport: "unix", path: engine.layout.extprocSocket! });
        const buffer = new Uint8Array(4096);
        const closed = (async () => {
          while (await conn.read(buffer).catch(() => null) !== null) {
            // the server's SETTINGS and GOAWAY frames
          }
        })();
        const deadline = new Promise((_, reject) => setTimeout(() => reject(new Error("still open")), 5000));
        await Promise.race([closed, deadline]);
        conn.close();
      });

      await t.step("the streams of a peer that stops answering are released by keepalive pings", async () => {
        const child = new Deno.Command(Deno.execPath(), {
          args: ["run", "-A", "tests/support/open_stream_client.ts", engine.layout.extprocSocket!, "hdr"],
          stdout: "piped",
          stderr: "inherit",
        }).spawn();
        try {
          const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
          assert.match((await reader.read()).value ?? "", /open/);
          assert.equal(await metric(engine, "tollgate_extproc_streams_active"), 1);
          child.kill("SIGSTOP");
          const started = performance.now();
          while (await metric(engine, "tollgate_extproc_streams_active") !== 0) {
            assert.ok(performance.now() - started < 5000, "the frozen peer's stream is still open after 5 s");
            await new Promise((resolve) => setTimeout(resolve, 100));
          }
          reader.releaseLock();
        } finally {
          child.kill("SIGKILL");
          await child.status;
          await child.stdout.cancel().catch(() => {});
        }
      });

      await t.step(
        "a second request_headers on one stream ends it with INVALID_ARGUMENT, counted",
        async () => {
          const client = new ExtProcClient(`unix:${engine.layout.extprocSocket}`);
          try {
            const stream = client.open();
            assert.equal(
              (await stream.exchange(requestHeaders("hdr", "/one"))).response.case,
              "requestHeaders",
            );
            stream.send(requestHeaders("hdr", "/two"));
            const status = await stream.status;
            assert.equal(status.code, grpc.status.INVALID_ARGUMENT);
            assert.match(status.details, /request_headers after the stream's headers phase/);
            assert.equal(
              await metric(
                engine,
                'tollgate_extproc_malformed_streams_total{reason="second_request_headers"}',
              ),
              1,
            );
            const next = client.open();
            assert.equal(
              (await next.exchange(requestHeaders("hdr", "/three"))).response.case,
              "requestHeaders",
              "the connection still serves new streams",
            );
            await next.finish();
          } finally {
            client.close();
          }
        },
      );

      await t.step("an undecodable message ends its stream with INTERNAL, counted", async () => {
        const client = new grpc.Client(
          `unix:${engine.layout.extprocSocket}`,
          grpc.credentials.createInsecure(),
        );
        try {
          const call = client.makeBidiStreamRequest(
            "/envoy.service.ext_proc.v3.ExternalProcessor/Process",
            (bytes: Uint8Array) => Buffer.from(bytes),
            (bytes: Buffer) => bytes,
          );
          call.on("error", () => {});
          const status = new Promise<grpc.StatusObject>((resolve) => call.on("status", resolve));
          call.write(new Uint8Array([0xff, 0xff, 0xff, 0xff]));
          assert.equal((await status).code, grpc.status.INTERNAL);
          assert.equal(
            await metric(engine, 'tollgate_extproc_malformed_streams_total{reason="undecodable_message"}'),
            1,
          );
        } finally {
          client.close();
        }
      });
      // The HTTP/2 layer is Tollgate's own only on the lean transport; grpc-js's node:http2 does not report it.
      if (transport === "lean") {
        await t.step("a client that does not speak HTTP/2 is refused with GOAWAY, counted", async () => {
          const conn = await Deno.connect({ transport: "unix", path: engine.layout.extprocSocket! });
          await conn.write(new TextEncoder().encode("GET / HTTP/1.1\r\nHost: tollgate\r\n\r\n"));
          const buffer = new Uint8Array(1024);
          let received = 0;
          while (true) {
            const read = await conn.read(buffer.subarray(received)).catch(() => null);
            if (read === null) break;
            received += read;
          }
          conn.close();
          const goaway = new TextDecoder().decode(buffer.subarray(0, received));
          assert.match(goaway, /not an HTTP\/2 connection preface/, "the GOAWAY says why");
          assert.equal(
            await metric(engine, 'tollgate_extproc_malformed_streams_total{reason="http2_connection_error"}'),
            1,
          );
          const client = new ExtProcClient(`unix:${engine.layout.extprocSocket}`);
          try {
            const stream = client.open();
            assert.equal(
              (await stream.exchange(requestHeaders("hdr", "/after"))).response.case,
              "requestHeaders",
            );
            await stream.finish();
          } finally {
            client.close();
          }
        });
      }
    } finally {
      assert.equal(await engine.stop(), 0, engine.lines.join("\n"));
    }
  },
});

for (const transport of TRANSPORTS) Deno.test(connectionLimits(transport));
