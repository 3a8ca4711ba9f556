/**
 * Opens many short HTTP/2 connections to a Unix socket, one ext_proc request each (a gRPC
 * `Process` call carrying request headers, then a half-close), as an Envoy that reconnects
 * often would. Used by the memory test (tests/integration/connection_memory_test.ts) and the
 * reproduction in scripts/repro/h2_connection_memory.ts.
 */
import { Buffer } from "node:buffer";
import http2 from "node:http2";
import net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import { ProcessingRequestSchema } from "../../src/gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";

const PROCESS_PATH = "/envoy.service.ext_proc.v3.ExternalProcessor/Process";

/** One gRPC frame: a request-headers message for `route`. */
function processFrame(route: string): Buffer {
  const message = toBinary(
    ProcessingRequestSchema,
    create(ProcessingRequestSchema, {
      request: {
        case: "requestHeaders",
        value: {
          headers: { headers: [{ key: ":path", rawValue: new TextEncoder().encode("/churn") }] },
          endOfStream: true,
        },
      },
      attributes: { "envoy.filters.http.ext_proc": { "xds.route_name": route } },
    }),
  );
  const frame = Buffer.alloc(5 + message.byteLength);
  frame.writeUInt32BE(message.byteLength, 1);
  frame.set(message, 5);
  return frame;
}

/** One connection, one call, closed once the answer (and trailers) arrived. */
function oneConnection(socket: string, frame: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const session = http2.connect("http://tollgate", { createConnection: () => net.connect(socket) });
    session.on("error", reject);
    const stream = session.request({
      ":method": "POST",
      ":path": PROCESS_PATH,
      "content-type": "application/grpc",
      te: "trailers",
    });
    stream.on("error", reject);
    stream.on("data", () => {});
    stream.on("end", () => session.close(() => resolve()));
    stream.end(frame);
  });
}

/**
 * Opens `count` connections to `socket`, `concurrency` at a time, each making one call;
 * `progress(done)` is awaited after every `every` connections. Rejects on the first failure.
 */
export async function churnConnections(
  socket: string,
  count: number,
  options: {
    concurrency?: number;
    route?: string;
    every?: number;
    progress?: (done: number) => Promise<void>;
  } = {},
): Promise<void> {
  const frame = processFrame(options.route ?? "churn");
  const concurrency = options.concurrency ?? 8;
  const every = options.every ?? count;
  let done = 0;
  while (done < count) {
    const batch = Math.min(every, count - done);
    let started = 0;
    const worker = async () => {
      while (started < batch) {
        started++;
        await oneConnection(socket, frame);
      }
    };
    await Promise.all(Array.from({ length: Math.min(concurrency, batch) }, worker));
    done += batch;
    await options.progress?.(done);
  }
}
