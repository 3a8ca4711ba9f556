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
import type { ConnectionLimits, ListenConfig } from "../config/types.ts";
import {
  type ProcessingRequest,
  ProcessingRequestSchema,
  type ProcessingResponse,
  ProcessingResponseSchema,
} from "../gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";
import type { Kernel } from "../kernel/routes.ts";
import { bidiMethod, serverOptions } from "../transport/grpc.ts";
import { socketInode, type SocketWatch, watchSocket } from "../transport/socket_watch.ts";
import { prepareSocketPath, removeSocketFile } from "../transport/unix_socket.ts";
import { ExchangeStream, ProtocolError, type StreamObserver } from "./stream.ts";

const log = getLogger(["tollgate", "extproc"]);

const processMethod = bidiMethod(
  "/envoy.service.ext_proc.v3.ExternalProcessor/Process",
  ProcessingRequestSchema,
  ProcessingResponseSchema,
);

/** How often the socket file is checked, and a failed recreation retried. */
const SOCKET_CHECK_MS = 1000;

export interface ExtProcServerOptions {
  readonly kernel: Kernel;
  readonly listen: ListenConfig;
  readonly connections: ConnectionLimits;
  /** Largest gRPC message accepted (a buffered body plus headers). */
  readonly maxMessageBytes: number;
  readonly observer?: ServerObserver;
}

/** Counts what the server sees, for metrics. */
export interface ServerObserver extends StreamObserver {
  streamsChanged(active: number): void;
  /** A stream ended for breaking the protocol (`reason`: e.g. `second_request_headers`). */
  malformedStream(reason: string): void;
  /** The socket file was found missing or replaced. */
  socketLost(): void;
}

type ProcessCall = grpc.ServerDuplexStream<ProcessingRequest, ProcessingResponse>;

export class ExtProcServer {
  #active = 0;
  #socketInode: number | undefined;
  /** The listener of a lost socket file is still open (its connections keep serving). */
  #staleListener = false;
  #watch: SocketWatch | undefined;
  /** Why the server cannot take new connections, while it recreates its socket. */
  #unready: string | undefined;

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
            instance.#malformed("undecodable_message", String(error)); // grpc-js answers INTERNAL
            throw error;
          }
        },
      },
    }, { Process: (call: ProcessCall) => instance.#serve(call) });
    const { listen } = options;
    if (listen.kind === "unix") {
      await prepareSocketPath(listen.socket);
      await instance.#bindSocket(listen.socket, listen.socketMode);
      instance.#watch = watchSocket(
        listen.socket,
        SOCKET_CHECK_MS,
        () => instance.#socketInode,
        () => instance.#recreateSocket(listen.socket, listen.socketMode),
      );
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

  async #bindSocket(path: string, mode: number): Promise<void> {
    await this.#bind(`unix:${path}`);
    try {
      await Deno.chmod(path, mode);
      this.#socketInode = await socketInode(path);
    } catch (error) {
      this.server.unbind(`unix:${path}`);
      throw error;
    }
  }

  /**
   * The socket file is gone or replaced. Once the path is free (a dead socket left there is
   * removed; a live one or another file is waited out, never deleted), the old listener is
   * closed (its connections end gracefully, so Envoy reconnects) and a new one bound.
   * Retried on every check until it works; never throws: readiness carries the reason.
   * The old listener is closed only on a free path because closing a Unix listener in Deno
   * unlinks whatever file is at its path by then.
   */
  async #recreateSocket(path: string, mode: number): Promise<void> {
    if (this.#socketInode !== undefined) {
      this.#socketInode = undefined;
      this.#staleListener = true;
      this.#unready = `ext_proc socket ${path} was removed or replaced; recreating it`;
      log.error("ext_proc socket {path} was removed or replaced; recreating it", { path });
      this.options.observer?.socketLost();
    }
    try {
      await prepareSocketPath(path);
      if (this.#staleListener) {
        this.server.unbind(`unix:${path}`);
        this.#staleListener = false;
      }
      await this.#bindSocket(path, mode);
      this.#unready = undefined;
      log.info("ext_proc socket {path} recreated", { path });
    } catch (error) {
      const reason = `ext_proc socket ${path} cannot be recreated: ${(error as Error)?.message ?? error}`;
      if (reason !== this.#unready) log.error("{reason}; retrying", { reason });
      this.#unready = reason;
    }
  }

  /** Why new connections would fail right now, or undefined when the listener is fine. */
  unreadyReason(): string | undefined {
    return this.#unready;
  }

  #malformed(reason: string, detail: string): void {
    log.debug("malformed ext_proc stream ({reason}): {detail}", { reason, detail });
    this.options.observer?.malformedStream(reason);
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
        if (error instanceof ProtocolError) {
          this.#malformed(error.reason, error.message);
          if (!open) return;
          close();
          call.emit("error", { code: grpc.status.INVALID_ARGUMENT, details: error.message });
          return;
        }
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
    this.#watch?.stop();
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
    const { listen } = this.options;
    // Only our own socket file: after a loss, the path may be another process's by now.
    if (listen.kind === "unix" && this.#socketInode !== undefined) {
      if (await socketInode(listen.socket) === this.#socketInode) await removeSocketFile(listen.socket);
    }
  }
}
