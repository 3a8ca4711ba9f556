/**
 * The `passthrough` scenario's ext_proc server: the floor of Tollgate's transport. Same
 * stack as the engine (grpc-js server on a Unix socket, protobuf-es codecs from
 * src/transport/grpc.ts, the same channel options) and the same per-stream contract, with
 * no work in between: every message is answered with CONTINUE; the request-headers answer
 * carries the mode override Tollgate sends for a route without policies (nothing more to
 * send), so a request costs one message here as in `empty-chain`; and, as in Tollgate, the
 * stream ends when Envoy half-closes it.
 *
 * Run as its own process: `deno run <flags> passthrough_server.ts SOCKET`.
 */
import * as grpc from "@grpc/grpc-js";
import { create } from "@bufbuild/protobuf";
import {
  type ProcessingRequest,
  ProcessingRequestSchema,
  type ProcessingResponse,
  ProcessingResponseSchema,
} from "../../src/gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";
import { PASS_THROUGH_MODE } from "../../src/extproc/mode.ts";
import { bidiMethod, channelOptions } from "../../src/transport/grpc.ts";
import { prepareSocketPath } from "../../src/transport/unix_socket.ts";

const service = {
  Process: bidiMethod(
    "/envoy.service.ext_proc.v3.ExternalProcessor/Process",
    ProcessingRequestSchema,
    ProcessingResponseSchema,
  ),
};

/** The engine's smallest message limit (it grows with `limits.maxBodyBytes`). */
const MAX_MESSAGE_BYTES = 4 * 1024 * 1024;

type Reply = "requestHeaders" | "requestBody" | "responseHeaders" | "responseBody";
const REPLIES: ReadonlySet<string> = new Set<Reply>([
  "requestHeaders",
  "requestBody",
  "responseHeaders",
  "responseBody",
]);

/** The CONTINUE answer to one message, or undefined for a message that needs none. */
function answer(request: ProcessingRequest): ProcessingResponse | undefined {
  const kind = request.request.case;
  if (kind === undefined || !REPLIES.has(kind)) return undefined;
  return create(ProcessingResponseSchema, {
    response: { case: kind as Reply, value: {} },
    modeOverride: kind === "requestHeaders" ? PASS_THROUGH_MODE : undefined,
  });
}

function serve(call: grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>): void {
  let open = true;
  call.on("cancelled", () => open = false);
  call.on("error", () => open = false);
  call.on("end", () => {
    if (open) call.end();
    open = false;
  });
  call.on("data", (request: ProcessingRequest) => {
    const response = answer(request);
    if (response && open) call.write(response);
  });
}

if (import.meta.main) {
  const [socket] = Deno.args;
  await prepareSocketPath(socket);
  const server = new grpc.Server(channelOptions(MAX_MESSAGE_BYTES));
  server.addService(service, { Process: serve });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(
      `unix:${socket}`,
      grpc.ServerCredentials.createInsecure(),
      (error) => error ? reject(error) : resolve(),
    )
  );
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    Deno.addSignalListener(signal, () => server.tryShutdown(() => Deno.exit(0)));
  }
}
