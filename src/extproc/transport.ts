/**
 * Picks the ext_proc server for `listen.transport`: the lean `node:http2` transport, or the
 * grpc-js reference. Both serve the same protocol with the same per-stream contract.
 */
import { LeanExtProcServer } from "./lean_server.ts";
import { ExtProcServer, type ExtProcServerOptions } from "./server.ts";

/** What the engine needs of a running ext_proc server. */
export interface ExtProcTransport {
  readonly activeStreams: number;
  /** Why the server cannot take new connections right now, or undefined when it can. */
  unreadyReason(): string | undefined;
  shutdown(graceMs: number): Promise<void>;
}

/** Binds and starts the configured ext_proc server. */
export function startExtProcServer(options: ExtProcServerOptions): Promise<ExtProcTransport> {
  return options.listen.transport === "grpc-js"
    ? ExtProcServer.start(options)
    : LeanExtProcServer.start(options);
}
