/**
 * gRPC plumbing of the ext_proc server (and the test and bench clients of it): protobuf-es
 * codecs in the shape grpc-js expects.
 */
import { Buffer } from "node:buffer";
import { type DescMessage, fromBinary, type MessageShape, toBinary } from "@bufbuild/protobuf";
import type { ConnectionLimits } from "../config/types.ts";

/**
 * grpc-js channel options for every server and client of ours, with their message size
 * limit. Channelz bookkeeping is off: it costs about 6 µs per stream and nothing reads it
 * (docs/performance.md).
 */
export function channelOptions(maxMessageBytes: number) {
  return {
    "grpc.max_receive_message_length": maxMessageBytes,
    "grpc.max_send_message_length": maxMessageBytes,
    "grpc.enable_channelz": 0,
  };
}

/**
 * grpc-js options for a server Envoy connects to: our channel options plus the connection
 * limits. The idle timer starts when a connection is accepted, so it also closes
 * connections that never send the HTTP/2 preface (grpc-js has no separate preface timeout).
 */
export function serverOptions(maxMessageBytes: number, limits: ConnectionLimits) {
  return {
    ...channelOptions(maxMessageBytes),
    "grpc.max_concurrent_streams": limits.maxConcurrentStreams,
    "grpc.max_connection_idle_ms": limits.idleTimeoutMs,
    "grpc.keepalive_time_ms": limits.keepaliveIntervalMs,
    "grpc.keepalive_timeout_ms": limits.keepaliveTimeoutMs,
  };
}

/** Serialize and deserialize functions for one message type. */
export interface Codec<T> {
  serialize(message: T): Buffer;
  deserialize(bytes: Uint8Array): T;
}

/** A grpc-js codec for a protobuf-es message schema (no copies: views over the same bytes). */
export function codec<Desc extends DescMessage>(schema: Desc): Codec<MessageShape<Desc>> {
  return {
    serialize(message) {
      const bytes = toBinary(schema, message);
      return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    },
    deserialize(bytes) {
      return fromBinary(schema, bytes);
    },
  };
}

/** A grpc-js method definition for a bidirectional streaming RPC. */
export function bidiMethod<Req extends DescMessage, Res extends DescMessage>(
  path: string,
  req: Req,
  res: Res,
) {
  const request = codec(req);
  const response = codec(res);
  return {
    path,
    requestStream: true,
    responseStream: true,
    requestSerialize: request.serialize,
    requestDeserialize: request.deserialize,
    responseSerialize: response.serialize,
    responseDeserialize: response.deserialize,
  } as const;
}
