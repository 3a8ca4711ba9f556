/**
 * The ext_proc gRPC service Envoy connects to: grpc-js over a Unix socket (default) or TCP,
 * with protobuf-es codecs. Each `Process` stream gets an {@link ExchangeStream}; its
 * messages are handled strictly in order, and nothing is written after Envoy cancels or
 * resets the stream (which it does routinely when it no longer needs us).
 */
import * as grpc from "@grpc/grpc-js";
import { getLogger } from "@logtape/logtape";
import type { ListenConfig } from "../config/types.ts";
import {
  type ProcessingRequest,
  ProcessingRequestSchema,
  type ProcessingResponse,
  ProcessingResponseSchema,
} from "../gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";
import type { Kernel } from "../kernel/routes.ts";
import { bidiMethod, channelOptions } from "../transport/grpc.ts";
import { prepareSocketPath, removeSocketFile } from "../transport/unix_socket.ts";
import { ExchangeStream, type StreamObserver } from "./stream.ts";

const log = getLogger(["tollgate", "extproc"]);

const serviceDefinition = {
  Process: bidiMethod(
    "/envoy.service.ext_proc.v3.ExternalProcessor/Process",
    ProcessingRequestSchema,
    ProcessingResponseSchema,
  ),
};

export interface ExtProcServerOptions {
  readonly kernel: Kernel;
  readonly listen: ListenConfig;
  /** Largest gRPC message accepted (a buffered body plus headers). */
  readonly maxMessageBytes: number;
  readonly observer?: StreamObserver & { streamsChanged(active: number): void };
}

type ProcessCall = grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>;

export class ExtProcServer {
  #active = 0;

  private constructor(private readonly server: grpc.Server, private readonly options: ExtProcServerOptions) {}

  /** Binds and starts serving; rejects if the socket is owned by a live process or cannot be bound. */
  static async start(options: ExtProcServerOptions): Promise<ExtProcServer> {
    const server = new grpc.Server(channelOptions(options.maxMessageBytes));
    const instance = new ExtProcServer(server, options);
    server.addService(serviceDefinition, { Process: (call: ProcessCall) => instance.#serve(call) });
    const { listen } = options;
    let target: string;
    if (listen.kind === "unix") {
      await prepareSocketPath(listen.socket);
      target = `unix:${listen.socket}`;
    } else {
      target = listen.address;
    }
    await new Promise<void>((resolve, reject) => {
      server.bindAsync(
        target,
        grpc.ServerCredentials.createInsecure(),
        (error) => error ? reject(error) : resolve(),
      );
    });
    if (listen.kind === "unix") await Deno.chmod(listen.socket, listen.socketMode);
    log.info("ext_proc listening on {target}", { target });
    return instance;
  }

  /** Streams currently open. */
  get activeStreams(): number {
    return this.#active;
  }

  #serve(call: ProcessCall): void {
    const exchange = new ExchangeStream(this.options.kernel, this.options.observer);
    const observer = this.options.observer;
    let open = true;
    let queue: Promise<void> = Promise.resolve();
    this.#active++;
    observer?.streamsChanged(this.#active);
    const close = () => {
      if (!open) return;
      open = false;
      // After the message being handled (if any) is done with the chain.
      queue.finally(() => exchange.release());
      this.#active--;
      observer?.streamsChanged(this.#active);
    };
    // Envoy cancels or resets streams it no longer needs: a normal end, not an error.
    call.on("cancelled", close);
    call.on("error", close);
    call.on("data", (request: ProcessingRequest) => {
      queue = queue.then(async () => {
        if (!open) return;
        const response = await exchange.handle(request);
        if (response && open) call.write(response);
      }).catch((error) => {
        log.error("ext_proc stream failed: {error}", { error: String(error?.stack ?? error) });
        if (!open) return;
        close();
        call.emit("error", { code: grpc.status.INTERNAL, details: "tollgate internal error" });
      });
    });
    call.on("end", () => {
      queue = queue.then(() => {
        if (!open) return;
        close();
        call.end();
      });
    });
  }

  /**
   * Stops accepting streams, lets in-flight ones finish within `graceMs`, then cuts the
   * rest and removes the socket file.
   */
  async shutdown(graceMs: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        log.warn("grace period over; closing {count} open streams", { count: this.#active });
        this.server.forceShutdown();
        resolve();
      }, graceMs);
      this.server.tryShutdown(() => {
        clearTimeout(timer);
        resolve();
      });
    });
    if (this.options.listen.kind === "unix") await removeSocketFile(this.options.listen.socket);
  }
}
