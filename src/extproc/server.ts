/**
 * The ext_proc gRPC service Envoy connects to: grpc-js over a Unix socket (default) or TCP,
 * with protobuf-es codecs. Each `Process` stream gets an {@link ExchangeStream}; its
 * messages are handled strictly in order, and nothing is written after Envoy cancels or
 * resets the stream (which it does routinely when it no longer needs us). A stream that
 * breaks the protocol is ended with an error status and counted. A socket file that
 * disappears is recreated, and the server reports not-ready until it is back.
 */
import * as grpc from "@grpc/grpc-js";
import { getLogger } from "@logtape/logtape";
import {
  type ProcessingRequest,
  ProcessingRequestSchema,
  type ProcessingResponse,
  ProcessingResponseSchema,
} from "../gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";
import { bidiMethod, serverOptions } from "../transport/grpc.ts";
import { SocketKeeper } from "../transport/socket_keeper.ts";
import { failureStatus, malformedStream } from "./failures.ts";
import type { ExtProcServerOptions } from "./options.ts";
import { ExchangeStream } from "./stream.ts";

const log = getLogger(["tollgate", "extproc"]);

const processMethod = bidiMethod(
  "/envoy.service.ext_proc.v3.ExternalProcessor/Process",
  ProcessingRequestSchema,
  ProcessingResponseSchema,
);

type ProcessCall = grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>;

export class ExtProcServer {
  #active = 0;
  #socket: SocketKeeper | undefined;

  private constructor(private readonly server: grpc.Server, private readonly options: ExtProcServerOptions) {}

  /** Binds and starts serving; rejects if the socket is owned by a live process or cannot be bound. */
  static async start(options: ExtProcServerOptions): Promise<ExtProcServer> {
    const server = new grpc.Server(serverOptions(options.maxMessageBytes, options.connections));
    const instance = new ExtProcServer(server, options);
    server.addService({
      Process: {
        ...processMethod,
        requestDeserialize: (bytes: Uint8Array) => {
          try {
            return processMethod.requestDeserialize(bytes);
          } catch (error) {
            malformedStream(options.observer, "undecodable_message", String(error)); // grpc-js answers INTERNAL
            throw error;
          }
        },
      },
    }, { Process: (call: ProcessCall) => instance.#serve(call) });
    const { listen } = options;
    if (listen.kind === "unix") {
      instance.#socket = await SocketKeeper.start(listen.socket, listen.socketMode, {
        listen: (path) => instance.#bind(`unix:${path}`),
        close: () => server.unbind(`unix:${listen.socket}`),
      }, () => options.observer?.socketLost());
    } else {
      await instance.#bind(listen.address);
    }
    log.info("ext_proc listening on {target}", {
      target: listen.kind === "unix" ? listen.socket : listen.address,
    });
    return instance;
  }

  #bind(target: string): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.server.bindAsync(
        target,
        grpc.ServerCredentials.createInsecure(),
        (error) => error ? reject(error) : resolve(),
      );
    });
  }

  /** Why new connections would fail right now, or undefined when the listener is fine. */
  unreadyReason(): string | undefined {
    return this.#socket?.unreadyReason();
  }

  /** Streams currently open. */
  get activeStreams(): number {
    return this.#active;
  }

  #serve(call: ProcessCall): void {
    const exchange = new ExchangeStream(this.options.kernel, this.options.observer, this.options.tracing);
    const observer = this.options.observer;
    let open = true;
    let queue: Promise<void> = Promise.resolve();
    this.#active++;
    observer?.streamsChanged(this.#active);
    const close = () => {
      if (!open) return;
      open = false;
      exchange.cancel();
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
        const { code, message } = failureStatus(error, observer);
        if (!open) return;
        close();
        call.emit("error", { code, details: message });
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
    this.#socket?.stop();
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
    await this.#socket?.removeOwnFile();
  }
}
