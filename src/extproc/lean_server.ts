/**
 * The lean ext_proc transport: a gRPC server for exactly ext_proc's one bidirectional
 * method, on `node:http2` with protobuf-es codecs and no gRPC library (docs/performance.md,
 * "Lean transport", has the measurements behind it). Same public surface and per-stream
 * contract as the grpc-js {@link ExtProcServer}: each stream drives one
 * {@link ExchangeStream}, its messages are handled strictly in order, nothing is written
 * after Envoy resets the stream, and every stream we end carries `grpc-status` trailers
 * (Envoy fails the request on a stream that ends without them).
 */
import http2 from "node:http2";
import { fromBinary, toBinary } from "@bufbuild/protobuf";
import { getLogger } from "@logtape/logtape";
import {
  type ProcessingRequest,
  ProcessingRequestSchema,
  type ProcessingResponse,
  ProcessingResponseSchema,
} from "../gen/proto/envoy/service/ext_proc/v3/external_processor_pb.ts";
import {
  encodeGrpcMessage,
  encodeMessage,
  FrameError,
  GrpcStatus,
  type GrpcStatusCode,
  MessageDecoder,
} from "../transport/grpc_frames.ts";
import { SocketKeeper } from "../transport/socket_keeper.ts";
import { failureStatus, malformedStream } from "./failures.ts";
import type { ExtProcServerOptions } from "./options.ts";
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

type Http2Server = ReturnType<typeof http2.createServer>;
type Session = http2.ServerHttp2Session;
type Stream = http2.ServerHttp2Stream;

/** The timers of one connection and how many streams it has open. */
interface SessionState {
  streams: number;
  idle?: ReturnType<typeof setTimeout>;
  preface?: ReturnType<typeof setTimeout>;
  keepalive?: ReturnType<typeof setInterval>;
  /** Set while a keepalive ping is unanswered: destroys the connection when it fires. */
  pingDeadline?: ReturnType<typeof setTimeout>;
}

export class LeanExtProcServer {
  #active = 0;
  #closing = false;
  /** The listening server; a recreated socket gets a new one (the old one's connections go on). */
  #server: Http2Server | undefined;
  #socket: SocketKeeper | undefined;
  readonly #sessions = new Map<Session, SessionState>();
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
        listen: (path) => instance.#listen((server, ready) => server.listen(path, ready)),
        close: () => {
          instance.#server?.close();
          instance.#server = undefined;
        },
      }, () => options.observer?.socketLost());
    } else {
      target = listen.address;
      const at = listen.address.lastIndexOf(":");
      const host = listen.address.slice(0, at).replace(/^\[(.*)\]$/, "$1");
      const port = Number(listen.address.slice(at + 1));
      await instance.#listen((server, ready) => server.listen(port, host, ready));
    }
    // A quarter of the limit: a silent stream ends between 1 and 1.25 times it.
    instance.#sweep = setInterval(() => instance.#sweepIdleStreams(), instance.#streamIdleTimeoutMs / 4);
    log.info("ext_proc listening on {target} (lean transport)", { target });
    return instance;
  }

  /** Creates a server and starts it listening with `bind`; it becomes the current one. */
  async #listen(bind: (server: Http2Server, ready: () => void) => void): Promise<void> {
    const { maxConcurrentStreams } = this.options.connections;
    const server = http2.createServer({
      settings: { maxConcurrentStreams, initialWindowSize: INITIAL_WINDOW_BYTES },
      // Node's default (10 MB) would refuse streams of a busy connection carrying large bodies.
      maxSessionMemory: Math.max(64, Math.ceil((8 * this.options.maxMessageBytes) / (1024 * 1024))),
    });
    server.on("session", (session) => this.#onSession(session));
    server.on("stream", (stream, headers) => this.#onStream(stream as Stream, headers));
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      bind(server, () => {
        server.off("error", reject);
        resolve();
      });
    });
    server.on("error", (error) => log.error("ext_proc server error: {error}", { error: String(error) }));
    server.on(
      "sessionError",
      (error) => log.debug("ext_proc connection error: {error}", { error: String(error) }),
    );
    this.#server = server;
  }

  /** Streams currently open. */
  get activeStreams(): number {
    return this.#active;
  }

  /** Why the server cannot take new connections right now, or undefined when it can. */
  unreadyReason(): string | undefined {
    return this.#socket?.unreadyReason();
  }

  #onSession(session: Session): void {
    if (this.#closing) {
      session.close();
      return;
    }
    const state: SessionState = { streams: 0 };
    this.#sessions.set(session, state);
    this.#armIdle(session, state);
    state.preface = setTimeout(() => {
      log.debug("ext_proc connection closed: no HTTP/2 preface within the timeout");
      session.destroy();
    }, this.#prefaceTimeoutMs);
    session.once("remoteSettings", () => clearTimeout(state.preface));
    this.#startKeepalive(session, state);
    // A broken connection: its streams see "close" and release themselves.
    session.on("error", (error) => log.debug("ext_proc connection error: {error}", { error: String(error) }));
    session.on("close", () => {
      clearTimeout(state.idle);
      clearTimeout(state.preface);
      clearInterval(state.keepalive);
      clearTimeout(state.pingDeadline);
      this.#sessions.delete(session);
    });
  }

  #armIdle(session: Session, state: SessionState): void {
    clearTimeout(state.idle);
    state.idle = setTimeout(() => {
      if (state.streams === 0) session.close();
    }, this.options.connections.idleTimeoutMs);
  }

  /**
   * Pings the peer every keepalive interval; a ping unanswered within the keepalive timeout
   * destroys the connection, which releases its streams (a frozen or vanished client must
   * not hold them, nor their chains, forever).
   */
  #startKeepalive(session: Session, state: SessionState): void {
    const { keepaliveIntervalMs, keepaliveTimeoutMs } = this.options.connections;
    state.keepalive = setInterval(() => {
      if (state.pingDeadline !== undefined || session.closed || session.destroyed) return;
      state.pingDeadline = setTimeout(() => {
        log.debug("ext_proc connection closed: keepalive ping unanswered within {ms} ms", {
          ms: keepaliveTimeoutMs,
        });
        session.destroy();
      }, keepaliveTimeoutMs);
      try {
        session.ping(() => {
          // An error here is a connection going away: its "close" cleans up.
          clearTimeout(state.pingDeadline);
          state.pingDeadline = undefined;
        });
      } catch (error) {
        clearTimeout(state.pingDeadline);
        state.pingDeadline = undefined;
        log.debug("ext_proc keepalive ping failed: {error}", { error: String(error) });
      }
    }, keepaliveIntervalMs);
  }

  #onStream(stream: Stream, headers: http2.IncomingHttpHeaders): void {
    const session = stream.session as Session | undefined;
    const state = session ? this.#sessions.get(session) : undefined;
    if (state) {
      state.streams++;
      clearTimeout(state.idle);
    }
    const refusal = this.#refusal(headers);
    const closed = refusal ? undefined : this.#serve(stream);
    if (refusal) respondWithStatus(stream, ...refusal);
    // "close" comes once per stream, however it ends: reset by Envoy, cut, or finished.
    stream.once("close", () => {
      closed?.();
      if (state && --state.streams === 0 && !this.#closing && session && !session.closed) {
        this.#armIdle(session, state);
      }
    });
  }

  /** Why a stream cannot be served, as [gRPC status, message, HTTP status]; undefined to serve it. */
  #refusal(headers: http2.IncomingHttpHeaders): [GrpcStatusCode, string, number] | undefined {
    if (this.#closing) return [GrpcStatus.UNAVAILABLE, "the server is shutting down", 200];
    const contentType = headers["content-type"];
    if (typeof contentType !== "string" || !/^application\/grpc(?:[+;]|$)/.test(contentType)) {
      return [GrpcStatus.UNKNOWN, `content-type ${contentType ?? "(none)"} is not application/grpc`, 415];
    }
    if (headers[":method"] !== "POST") {
      return [GrpcStatus.UNIMPLEMENTED, `method ${headers[":method"]} is not POST`, 200];
    }
    if (headers[":path"] !== PROCESS_PATH) {
      return [GrpcStatus.UNIMPLEMENTED, `unknown method ${headers[":path"]}`, 200];
    }
    return undefined;
  }

  /**
   * Serves one Process stream; returns what to do when it closes. An answer that is ready at
   * once (a route without policies, trailers) is written in the same tick as the message
   * that asked for it, without a promise hop; answers that wait for policies queue in order.
   */
  #serve(stream: Stream): () => void {
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
    stream.on("error", (error) => log.debug("ext_proc stream error: {error}", { error: String(error) }));
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
    stream.on("data", (chunk: Uint8Array) => {
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
          request = fromBinary(ProcessingRequestSchema, payload);
        } catch (error) {
          const message = `cannot decode the request message: ${(error as Error).message}`;
          malformedStream(observer, "undecodable_message", message);
          return fail(GrpcStatus.INTERNAL, message);
        }
        run(answer(request));
      }
    });
    stream.on("end", () =>
      run(() => {
        if (!call.writable) return;
        try {
          decoder.finish();
        } catch (error) {
          if (!(error instanceof FrameError)) throw error;
          return call.finish(error.code, error.message);
        }
        call.finish(GrpcStatus.OK);
      }));
    return () => {
      call.cancel();
      exchange.cancel();
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
    const server = this.#server;
    this.#server = undefined;
    const closed = new Promise<void>((resolve) => server ? server.close(() => resolve()) : resolve());
    const sessions = [...this.#sessions.keys()];
    const drained = Promise.all(sessions.map((session) =>
      new Promise<void>((resolve) => {
        if (session.closed || session.destroyed) return resolve();
        session.once("close", () => resolve());
        session.close();
      })
    ));
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<"expired">((resolve) =>
      timer = setTimeout(() => resolve("expired"), graceMs)
    );
    if (await Promise.race([drained, expired]) === "expired") {
      log.warn("grace period over; closing {count} open streams", { count: this.#active });
      for (const session of this.#sessions.keys()) session.destroy();
    }
    clearTimeout(timer);
    await closed;
    await this.#socket?.removeOwnFile();
  }
}

/** The writing side of one stream: headers once, messages with backpressure, one status at the end. */
class Call {
  #ended = false;

  constructor(private readonly stream: Stream) {}

  /** False once the stream is finished, reset or closed: nothing may be written. */
  get writable(): boolean {
    return !this.#ended && !this.stream.closed && !this.stream.destroyed;
  }

  /** Envoy reset the stream, or it closed: stop writing. */
  cancel(): void {
    this.#ended = true;
  }

  /** Sends the response headers (the status comes in the trailers). */
  start(): void {
    this.stream.respond({ ":status": 200, "content-type": "application/grpc" }, { waitForTrailers: true });
  }

  /** Resets the stream (if still open) after a status was sent. */
  reset(): void {
    if (!this.stream.closed && !this.stream.destroyed) this.stream.close(http2.constants.NGHTTP2_CANCEL);
  }

  /** Writes one message; resolves when the stream can take more (or is gone). */
  send(message: ProcessingResponse): Promise<void> | void {
    if (!this.writable) return;
    if (this.stream.write(encodeMessage(toBinary(ProcessingResponseSchema, message)))) return;
    return new Promise<void>((resolve) => {
      const done = () => {
        this.stream.off("drain", done);
        this.stream.off("close", done);
        resolve();
      };
      this.stream.on("drain", done);
      this.stream.on("close", done);
    });
  }

  /** Ends the stream with `code` in its trailers. */
  finish(code: GrpcStatusCode, message?: string): void {
    if (!this.writable) return;
    this.#ended = true;
    const status = statusHeaders(code, message);
    this.stream.once("wantTrailers", () => this.stream.sendTrailers(status));
    this.stream.end();
  }
}

function statusHeaders(code: GrpcStatusCode, message?: string): Record<string, string> {
  return message === undefined
    ? { "grpc-status": String(code) }
    : { "grpc-status": String(code), "grpc-message": encodeGrpcMessage(message) };
}

/** A trailers-only answer for a stream that is not served. */
function respondWithStatus(stream: Stream, code: GrpcStatusCode, message: string, httpStatus: number): void {
  stream.on("error", () => {});
  stream.respond({
    ":status": httpStatus,
    "content-type": "application/grpc",
    ...statusHeaders(code, message),
  }, { endStream: true });
  // Read and drop whatever the client still sends on it.
  stream.resume();
}
