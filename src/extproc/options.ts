/**
 * What both ext_proc transports are started with, apart from their implementations (so that
 * choosing one does not load the other: grpc-js alone is a large module graph).
 */
import type { ConnectionLimits, ListenConfig } from "../config/types.ts";
import type { Kernel } from "../kernel/routes.ts";
import type { Tracing } from "../observe/tracing.ts";
import type { StreamObserver } from "./stream.ts";

export interface ExtProcServerOptions {
  readonly kernel: Kernel;
  readonly listen: ListenConfig;
  readonly connections: ConnectionLimits;
  /** Largest gRPC message accepted (a buffered body plus headers). */
  readonly maxMessageBytes: number;
  readonly observer?: ServerObserver;
  /** Set when `tracing` is configured: every exchange is offered to it. */
  readonly tracing?: Tracing;
}

/** Counts what the server sees, for metrics. */
export interface ServerObserver extends StreamObserver {
  streamsChanged(active: number): void;
  /** A stream ended for breaking the protocol (`reason`: e.g. `second_request_headers`). */
  malformedStream(reason: string): void;
  /** The socket file was found missing or replaced. */
  socketLost(): void;
}
