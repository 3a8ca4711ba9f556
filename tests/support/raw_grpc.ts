/**
 * A bare HTTP/2 client for the ext_proc server, below any gRPC library: sends hand-made
 * frames (compressed, truncated, garbage, oversized) and reports exactly what came back —
 * response headers, messages and trailers — so tests can check the wire, not a client's view of it.
 */
import http2 from "node:http2";
import net from "node:net";
import { create, toBinary } from "@bufbuild/protobuf";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { ProcessingRequestSchema } from "../../src/gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";

export const PROCESS_PATH = "/envoy.service.ext_proc.v3.ExternalProcessor/Process";

/** A gRPC message frame: flag byte, 4-byte length, payload. */
export function frame(payload: Uint8Array, compressed = false, length = payload.byteLength): Uint8Array {
  const out = new Uint8Array(5 + payload.byteLength);
  out[0] = compressed ? 1 : 0;
  new DataView(out.buffer).setUint32(1, length);
  out.set(payload, 5);
  return out;
}

export function requestFrame(init: MessageInitShape<typeof ProcessingRequestSchema>): Uint8Array {
  return frame(toBinary(ProcessingRequestSchema, create(ProcessingRequestSchema, init)));
}

export interface RawResult {
  readonly headers: http2.IncomingHttpHeaders;
  /** Trailers, or for a trailers-only answer the status fields of the headers. */
  readonly trailers: Record<string, string | string[] | undefined>;
  /** The response body's bytes (framed messages). */
  readonly body: Uint8Array;
  /** The stream was reset instead of ending. */
  readonly reset: boolean;
}

export class RawGrpcClient {
  readonly session: http2.ClientHttp2Session;
  goaway = false;

  constructor(socket: string) {
    this.session = http2.connect("http://localhost", { createConnection: () => net.connect(socket) });
    this.session.on("goaway", () => this.goaway = true);
    this.session.on("error", () => {});
  }

  /** Opens a stream with `headers`, writes `chunks` (then ends unless `keepOpen`), collects the answer. */
  call(
    chunks: readonly Uint8Array[],
    options: { headers?: http2.OutgoingHttpHeaders; keepOpen?: boolean } = {},
  ): { stream: http2.ClientHttp2Stream; result: Promise<RawResult> } {
    const stream = this.session.request({
      ":method": "POST",
      ":path": PROCESS_PATH,
      "content-type": "application/grpc",
      te: "trailers",
      ...options.headers,
    });
    const result = new Promise<RawResult>((resolve) => {
      let headers: http2.IncomingHttpHeaders = {};
      let trailers: RawResult["trailers"] = {};
      const parts: Uint8Array[] = [];
      stream.on("response", (h) => {
        headers = h;
        if (h["grpc-status"] !== undefined) {
          trailers = { "grpc-status": h["grpc-status"], "grpc-message": h["grpc-message"] };
        }
      });
      stream.on("trailers", (t) => trailers = t);
      stream.on("data", (chunk: Uint8Array) => parts.push(chunk));
      stream.on("error", () => {});
      stream.on("close", () => {
        const body = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
        let offset = 0;
        for (const part of parts) {
          body.set(part, offset);
          offset += part.byteLength;
        }
        resolve({ headers, trailers, body, reset: stream.rstCode !== http2.constants.NGHTTP2_NO_ERROR });
      });
    });
    for (const chunk of chunks) stream.write(chunk);
    if (!options.keepOpen) stream.end();
    return { stream, result };
  }

  close(): void {
    this.session.close();
  }
}
