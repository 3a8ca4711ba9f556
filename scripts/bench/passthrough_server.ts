/**
 * The `passthrough` scenario's ext_proc server: the floor of Tollgate's transport. Same
 * stack as the engine (grpc-js server on a Unix socket, protobuf-es codecs from
 * src/transport/grpc.ts) and the same per-stream contract, with no work in between: every
 * message is answered with CONTINUE; the request-headers answer carries the mode override
 * Tollgate sends for a route without policies (nothing more to send), so a request costs
 * one message here as in `empty-chain`, and the stream is ended right after it.
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
import { bidiMethod } from "../../src/transport/grpc.ts";
import { prepareSocketPath } from "../../src/transport/unix_socket.ts";

const service = {
  Process: bidiMethod(
    "/envoy.service.ext_proc.v3.ExternalProcessor/Process",
    ProcessingRequestSchema,
    ProcessingResponseSchema,
  ),
};

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
  const close = () => {
    if (!open) return;
    open = false;
    call.end();
  };
  call.on("cancelled", () => open = false);
  call.on("error", () => open = false);
  call.on("end", close);
  call.on("data", (request: ProcessingRequest) => {
    const response = answer(request);
    if (!response || !open) return;
    call.write(response);
    // After the request-headers answer Envoy needs nothing more (the mode override says so).
    if (request.request.case === "requestHeaders") close();
  });
}

if (import.meta.main) {
  const [socket] = Deno.args;
  await prepareSocketPath(socket);
  const server = new grpc.Server();
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
