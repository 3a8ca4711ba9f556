/**
 * Picks the ext_proc server for `listen.transport`: the lean transport (Tollgate's own HTTP/2), or the
 * grpc-js reference. Both serve the same protocol with the same per-stream contract. grpc-js
 * is imported only when chosen: its module graph costs memory an engine on the lean
 * transport has no use for (docs/performance.md, "Memory").
 */
import { LeanExtProcServer } from "./lean_server.ts";
import type { ExtProcServerOptions } from "./options.ts";

/** What the engine needs of a running ext_proc server. */
export interface ExtProcTransport {
  readonly activeStreams: number;
  /** Why the server cannot take new connections right now, or undefined when it can. */
  unreadyReason(): string | undefined;
  shutdown(graceMs: number): Promise<void>;
}

/** Binds and starts the configured ext_proc server. */
export async function startExtProcServer(options: ExtProcServerOptions): Promise<ExtProcTransport> {
  if (options.listen.transport !== "grpc-js") return LeanExtProcServer.start(options);
  const { ExtProcServer } = await import("./server.ts");
  return ExtProcServer.start(options);
}
