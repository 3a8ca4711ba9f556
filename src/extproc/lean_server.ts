/**
 * The lean ext_proc transport: a gRPC server for exactly ext_proc's one bidirectional
 * method, on Tollgate's own HTTP/2 layer (src/transport/h2/) over Deno sockets, with
 * protobuf-es codecs and no gRPC library (docs/performance.md, "Lean transport" and "Own
 * HTTP/2", has the measurements behind it). Same public surface and per-stream
 * contract as the grpc-js {@link ExtProcServer}: each stream drives one
 * {@link ExchangeStream}, its messages are handled strictly in order, nothing is written
 * after Envoy resets the stream, and every stream we end carries `grpc-status` trailers
 * (Envoy fails the request on a stream that ends without them).
 */
import { getLogger } from "@logtape/logtape";
import type {
  ProcessingRequest,
  ProcessingResponse,
} from "../gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";
import {
  encodeGrpcMessage,
  encodeMessage,
  FrameError,
  GrpcStatus,
  type GrpcStatusCode,
  MessageDecoder,
} from "../transport/grpc_frames.ts";
import { H2Connection } from "../transport/h2/connection.ts";
import { ErrorCode } from "../transport/h2/frames.ts";
import { encodeHeaders } from "../transport/h2/hpack.ts";
import type { H2Stream } from "../transport/h2/stream.ts";
import { SocketKeeper } from "../transport/socket_keeper.ts";
import { failureStatus, malformedStream } from "./failures.ts";
import type { ExtProcServerOptions } from "./options.ts";
import { decodeProcessingRequest } from "./request_codec.ts";
import { encodeProcessingResponse } from "./response_codec.ts";
import { ExchangeStream } from "./stream.ts";

const log = getLogger(["tollgate", "extproc"]);

export const PROCESS_PATH = "/envoy.service.ext_proc.v3.ExternalProcessor/Process";

/** Limits of the lean transport beyond the configured connection limits. */
export interface LeanTransportLimits {
  /** A stream on which nothing arrives for this long ends with DEADLINE_EXCEEDED. */
  readonly streamIdleTimeoutMs?: number;
  /** A connection that has not sent the HTTP/2 preface within this long is closed. */
  readonly prefaceTimeoutMs?: number;
}

/**
 * Longer than any upstream Envoy would wait for between two phases of one exchange. Not a
 * setting: Envoy's `message_timeout` bounds each phase on its side, and keepalive releases
 * the streams of a peer that is gone; this only stops a live peer from holding a stream
 * open forever without sending anything.
 */
const DEFAULT_STREAM_IDLE_TIMEOUT_MS = 10 * 60_000;
/**
 * A connection that has not sent the HTTP/2 preface (its SETTINGS) within this long, or
 * within the idle timeout if shorter, is closed. Envoy sends it at once.
 */
const DEFAULT_PREFACE_TIMEOUT_MS = 10_000;
/** Messages queued on a stream before reading from it pauses (HTTP/2 flow control then holds the peer). */
const MAX_QUEUED_MESSAGES = 4;
/** How long a timed-out stream's peer gets to read the status before the stream is reset. */
const RESET_AFTER_STATUS_MS = 1000;
/** Per-stream receive window: a buffered 64 KB body arrives without waiting for window updates. */
const INITIAL_WINDOW_BYTES = 1024 * 1024;

/**
 * The connection's receive window: room for several streams' buffered bodies at once before
 * any window update (a paused stream holds at most its own window of it).
 */
const CONNECTION_WINDOW_BYTES = 16 * 1024 * 1024;
/**
 * Unwritten output beyond which a connection is closed: far above what flow control lets
 * streams queue (one message each at a time), so only a peer that has stopped reading hits it.
 */
const MAX_OUTPUT_BYTES = 64 * 1024 * 1024;
/** Largest request header list: a gRPC client's are well under 1 KiB. */
const MAX_HEADER_LIST_BYTES = 16 * 1024;

const RESPONSE_HEADERS = encodeHeaders([[":status", "200"], ["content-type", "application/grpc"]]);
const OK_TRAILERS = encodeHeaders([["grpc-status", "0"]]);

/** The timers of one connection and how many streams it has open. */
interface ConnectionState {
  streams: number;
  idle?: ReturnType<typeof setTimeout>;
  preface?: ReturnType<typeof setTimeout>;
  keepalive?: ReturnType<typeof setInterval>;
  /** Set while a keepalive ping is unanswered: destroys the connection when it fires. */
  pingDeadline?: ReturnType<typeof setTimeout>;
  /** Settles when the connection is gone. */
  served?: Promise<void>;
}

export class LeanExtProcServer {
  #active = 0;
  #closing = false;
  /** The listener; a recreated socket gets a new one (the old one's connections go on). */
  #listener: Deno.Listener | undefined;
  /** The current listener's accept loop. */
  #accepting: Promise<void> | undefined;
  #socket: SocketKeeper | undefined;
  readonly #connections = new Map<H2Connection, ConnectionState>();
  readonly #streamIdleTimeoutMs: number;
  readonly #prefaceTimeoutMs: number;
  readonly #calls = new Set<{ readonly call: Call; lastActive: number }>();
  #sweep: ReturnType<typeof setInterval> | undefined;

  private constructor(private readonly options: ExtProcServerOptions & LeanTransportLimits) {
    this.#streamIdleTimeoutMs = options.streamIdleTimeoutMs ?? DEFAULT_STREAM_IDLE_TIMEOUT_MS;
    this.#prefaceTimeoutMs = Math.min(
      options.prefaceTimeoutMs ?? DEFAULT_PREFACE_TIMEOUT_MS,
      options.connections.idleTimeoutMs,
    );
  }

  /** Binds and starts serving; rejects if the socket is owned by a live process or cannot be bound. */
  static async start(options: ExtProcServerOptions & LeanTransportLimits): Promise<LeanExtProcServer> {
    const instance = new LeanExtProcServer(options);
    const { listen } = options;
    let target: string;
    if (listen.kind === "unix") {
      target = `unix:${listen.socket}`;
      instance.#socket = await SocketKeeper.start(listen.socket, listen.socketMode, {
        listen: (path) => {
          instance.#accept(Deno.listen({ transport: "unix", path }));
          return Promise.resolve();
        },
        close: async () => {
          await instance.#stopAccepting();
          // The socket file is being replaced: Envoy should reconnect to the new one.
          for (const connection of instance.#connections.keys()) connection.close();
        },
      }, () => options.observer?.socketLost());
    } else {
      target = listen.address;
      const at = listen.address.lastIndexOf(":");
      const hostname = listen.address.slice(0, at).replace(/^\[(.*)\]$/, "$1");
      const port = Number(listen.address.slice(at + 1));
      instance.#accept(Deno.listen({ hostname, port }));
    }
    // A quarter of the limit: a silent stream ends between 1 and 1.25 times it.
    instance.#sweep = setInterval(() => instance.#sweepIdleStreams(), instance.#streamIdleTimeoutMs / 4);
    log.info("ext_proc listening on {target} (lean transport)", { target });
    return instance;
  }

  /** Serves every connection `listener` accepts until it is closed; it becomes the current one. */
  #accept(listener: Deno.Listener): void {
    this.#listener = listener;
    this.#accepting = (async () => {
      try {
        for await (const conn of listener) this.#onConnection(conn);
      } catch (error) {
        // A closed listener ends the loop; anything else is worth a line.
        if (!(error instanceof Deno.errors.BadResource)) {
          log.error("ext_proc listener failed: {error}", { error: String(error) });
        }
      }
    })();
  }

  /** Closes the listener; settles once its accept loop is over and Deno has released it. */
  async #stopAccepting(): Promise<void> {
    this.#listener?.close();
    this.#listener = undefined;
    await this.#accepting;
  }

  /** Streams currently open. */
  get activeStreams(): number {
    return this.#active;
  }

  /** Why the server cannot take new connections right now, or undefined when it can. */
  unreadyReason(): string | undefined {
    return this.#socket?.unreadyReason();
  }

  #onConnection(conn: Deno.Conn): void {
    if (this.#closing) {
      conn.close();
      return;
    }
    const { maxConcurrentStreams } = this.options.connections;
    const state: ConnectionState = { streams: 0 };
    const connection = new H2Connection(conn, {
      maxConcurrentStreams,
      streamWindowBytes: INITIAL_WINDOW_BYTES,
      connectionWindowBytes: Math.max(CONNECTION_WINDOW_BYTES, 2 * INITIAL_WINDOW_BYTES),
      maxHeaderListBytes: MAX_HEADER_LIST_BYTES,
      maxOutputBytes: MAX_OUTPUT_BYTES,
    }, {
      stream: (stream, headers) => this.#onStream(connection, state, stream, headers),
      settings: () => clearTimeout(state.preface),
      malformed: (reason, detail) => malformedStream(this.options.observer, reason, detail),
      failed: (error) =>
        log.error("ext_proc connection ended on an internal error: {error}", { error: String(error) }),
      closed: () => {
        clearTimeout(state.idle);
        clearTimeout(state.preface);
        clearInterval(state.keepalive);
        clearTimeout(state.pingDeadline);
        this.#connections.delete(connection);
      },
    });
    this.#connections.set(connection, state);
    this.#armIdle(connection, state);
    state.preface = setTimeout(() => {
      log.debug("ext_proc connection closed: no HTTP/2 preface within the timeout");
      connection.destroy();
    }, this.#prefaceTimeoutMs);
    this.#startKeepalive(connection, state);
    state.served = connection.serve();
  }

  #armIdle(connection: H2Connection, state: ConnectionState): void {
    clearTimeout(state.idle);
    state.idle = setTimeout(() => {
      if (state.streams === 0) connection.close();
    }, this.options.connections.idleTimeoutMs);
  }

  /**
   * Pings the peer every keepalive interval; a ping unanswered within the keepalive timeout
   * destroys the connection, which releases its streams (a frozen or vanished client must
   * not hold them, nor their chains, forever).
   */
  #startKeepalive(connection: H2Connection, state: ConnectionState): void {
    const { keepaliveIntervalMs, keepaliveTimeoutMs } = this.options.connections;
    state.keepalive = setInterval(() => {
      if (state.pingDeadline !== undefined) return;
      state.pingDeadline = setTimeout(() => {
        log.debug("ext_proc connection closed: keepalive ping unanswered within {ms} ms", {
          ms: keepaliveTimeoutMs,
        });
        connection.destroy();
      }, keepaliveTimeoutMs);
      connection.ping(() => {
        clearTimeout(state.pingDeadline);
        state.pingDeadline = undefined;
      });
    }, keepaliveIntervalMs);
  }

  #onStream(connection: H2Connection, state: ConnectionState, stream: H2Stream, headers: string[]): void {
    state.streams++;
    clearTimeout(state.idle);
    const refusal = this.#refusal(headers);
    const closed = refusal ? undefined : this.#serve(stream);
    if (refusal) respondWithStatus(stream, ...refusal);
    // onClose comes once per stream, however it ends: reset by Envoy, cut, or finished.
    stream.onClose = () => {
      closed?.();
      if (--state.streams === 0 && !this.#closing && connection.open) this.#armIdle(connection, state);
    };
  }

  /** Why a stream cannot be served, as [gRPC status, message, HTTP status]; undefined to serve it. */
  #refusal(headers: string[]): [GrpcStatusCode, string, number] | undefined {
    const contentType = header(headers, "content-type");
    if (contentType === undefined || !/^application\/grpc(?:[+;]|$)/.test(contentType)) {
      return [GrpcStatus.UNKNOWN, `content-type ${contentType ?? "(none)"} is not application/grpc`, 415];
    }
    const method = header(headers, ":method");
    if (method !== "POST") return [GrpcStatus.UNIMPLEMENTED, `method ${method} is not POST`, 200];
    const path = header(headers, ":path");
    if (path !== PROCESS_PATH) return [GrpcStatus.UNIMPLEMENTED, `unknown method ${path}`, 200];
    return undefined;
  }

  /**
   * Serves one Process stream; returns what to do when it closes. An answer that is ready at
   * once (a route without policies, trailers) is written in the same tick as the message
   * that asked for it, without a promise hop; answers that wait for policies queue in order.
   */
  #serve(stream: H2Stream): () => void {
    const exchange = new ExchangeStream(this.options.kernel, this.options.observer, this.options.tracing);
    const observer = this.options.observer;
    const decoder = new MessageDecoder(this.options.maxMessageBytes);
    const call = new Call(stream);
    const watched = { call, lastActive: Date.now() };
    this.#calls.add(watched);
    /** The work still running (in order); undefined when the stream is idle. */
    let tail: Promise<void> | undefined;
    let queued = 0;
    this.#active++;
    observer?.streamsChanged(this.#active);
    call.start();
    const fail = (code: GrpcStatusCode, message: string) => {
      if (!call.writable) return;
      call.finish(code, message);
      // Keep reading (and discarding), so the peer can finish sending and see the status.
      stream.resume();
    };
    const failed = (error: unknown) => {
      const { code, message } = failureStatus(error, observer);
      fail(code, message);
    };
    const track = (work: Promise<void>) => {
      if (++queued >= MAX_QUEUED_MESSAGES) stream.pause();
      const settled: Promise<void> = work.catch(failed).finally(() => {
        if (--queued < MAX_QUEUED_MESSAGES && call.writable) stream.resume();
        if (tail === settled) tail = undefined;
      });
      tail = settled;
    };
    /** Runs `step` now if nothing is pending, else after what is: strictly in order either way. */
    const run = (step: () => Promise<void> | void) => {
      if (tail !== undefined) return track(tail.then(step));
      let result: Promise<void> | void;
      try {
        result = step();
      } catch (error) {
        return failed(error);
      }
      if (result) track(result);
    };
    const answer = (request: ProcessingRequest) => (): Promise<void> | void => {
      if (!call.writable) return;
      const response = exchange.handle(request);
      if (response instanceof Promise) {
        return response.then((r) => r && call.writable ? call.send(r) : undefined);
      }
      if (response) return call.send(response);
    };
    stream.onData = (chunk) => {
      if (!call.writable) return;
      watched.lastActive = Date.now();
      let payloads: Uint8Array[];
      try {
        payloads = decoder.push(chunk);
      } catch (error) {
        if (!(error instanceof FrameError)) throw error;
        return fail(error.code, error.message);
      }
      for (const payload of payloads) {
        let request: ProcessingRequest;
        try {
          request = decodeProcessingRequest(payload);
        } catch (error) {
          const message = `cannot decode the request message: ${(error as Error).message}`;
          malformedStream(observer, "undecodable_message", message);
          return fail(GrpcStatus.INTERNAL, message);
        }
        run(answer(request));
      }
    };
    stream.onEnd = () =>
      run(() => {
        if (!call.writable) return;
        try {
          decoder.finish();
        } catch (error) {
          if (!(error instanceof FrameError)) throw error;
          return call.finish(error.code, error.message);
        }
        call.finish(GrpcStatus.OK);
      });
    return () => {
      // Closed before we ended it: Envoy reset or cut the stream, so running policies are told.
      if (!call.ended) exchange.cancel();
      call.cancel();
      this.#calls.delete(watched);
      // After the message being handled (if any) is done with the chain.
      if (tail) tail.finally(() => exchange.release());
      else exchange.release();
      this.#active--;
      observer?.streamsChanged(this.#active);
    };
  }

  /** Ends streams on which nothing arrived within the stream idle timeout (one timer for all). */
  #sweepIdleStreams(): void {
    const limit = Date.now() - this.#streamIdleTimeoutMs;
    for (const watched of this.#calls) {
      if (watched.lastActive > limit) continue;
      this.#calls.delete(watched);
      watched.call.finish(GrpcStatus.DEADLINE_EXCEEDED, "no message on the stream within its idle timeout");
      // Once the status is out: a peer that still keeps its side open cannot hold the stream.
      setTimeout(() => watched.call.reset(), RESET_AFTER_STATUS_MS);
    }
  }

  /**
   * Stops accepting streams and sends GOAWAY on every connection; in-flight streams finish
   * within `graceMs`, then the rest are cut and the socket file is removed.
   */
  async shutdown(graceMs: number): Promise<void> {
    this.#closing = true;
    clearInterval(this.#sweep);
    this.#socket?.stop();
    await this.#stopAccepting();
    const served = [...this.#connections].map(([connection, state]) => {
      connection.close();
      return state.served;
    });
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<"expired">((resolve) =>
      timer = setTimeout(() => resolve("expired"), graceMs)
    );
    if (await Promise.race([Promise.all(served), expired]) === "expired") {
      log.warn("grace period over; closing {count} open streams", { count: this.#active });
      for (const connection of this.#connections.keys()) connection.destroy();
    }
    clearTimeout(timer);
    await this.#socket?.removeOwnFile();
  }
}

/** The writing side of one stream: headers once, messages with backpressure, one status at the end. */
class Call {
  #ended = false;
  /** Resolves a `send` waiting for the stream to drain. */
  #drained: (() => void) | undefined;

  constructor(private readonly stream: H2Stream) {
    stream.onDrain = () => this.#wake();
  }

  /** False once the stream is finished, reset or closed: nothing may be written. */
  get writable(): boolean {
    return !this.#ended && !this.stream.closed;
  }

  /** True once this side ended the stream (with a status) or stopped writing to it. */
  get ended(): boolean {
    return this.#ended;
  }

  /** Envoy reset the stream, or it closed: stop writing. */
  cancel(): void {
    this.#ended = true;
    this.#wake();
  }

  /** Sends the response headers (the status comes in the trailers). */
  start(): void {
    this.stream.respond(RESPONSE_HEADERS);
  }

  /** Resets the stream (if still open) after a status was sent. */
  reset(): void {
    this.stream.reset(ErrorCode.CANCEL);
  }

  /** Writes one message; resolves when the stream can take more (or is gone). */
  send(message: ProcessingResponse): Promise<void> | void {
    if (!this.writable) return;
    if (this.stream.write(encodeMessage(encodeProcessingResponse(message)))) return;
    return new Promise<void>((resolve) => this.#drained = resolve);
  }

  /** Ends the stream with `code` in its trailers. */
  finish(code: GrpcStatusCode, message?: string): void {
    if (!this.writable) return;
    this.#ended = true;
    this.stream.end(
      code === GrpcStatus.OK && message === undefined
        ? OK_TRAILERS
        : encodeHeaders(statusHeaders(code, message)),
    );
  }

  #wake(): void {
    const drained = this.#drained;
    this.#drained = undefined;
    drained?.();
  }
}

function statusHeaders(code: GrpcStatusCode, message?: string): [string, string][] {
  return message === undefined
    ? [["grpc-status", String(code)]]
    : [["grpc-status", String(code)], ["grpc-message", encodeGrpcMessage(message)]];
}

/** A trailers-only answer for a stream that is not served; what the client still sends is dropped. */
function respondWithStatus(
  stream: H2Stream,
  code: GrpcStatusCode,
  message: string,
  httpStatus: number,
): void {
  stream.respond(
    encodeHeaders([
      [":status", String(httpStatus)],
      ["content-type", "application/grpc"],
      ...statusHeaders(code, message),
    ]),
    true,
  );
}

/** The first value of `name` in a flat [name, value, …] header list. */
function header(headers: string[], name: string): string | undefined {
  for (let i = 0; i < headers.length; i += 2) if (headers[i] === name) return headers[i + 1];
  return undefined;
}
