/**
 * The engine's side of the executor contract: one Unix-socket connection per executor
 * process carrying every Python call (batches of header/body handlers, and body chunks of
 * streamed exchanges) as length-prefixed protobuf frames (./frames.ts), multiplexed by call
 * id, plus health requests answered in order.
 *
 * - Each call has a deadline; past it the call fails as a timeout (a late answer is dropped).
 * - At most `maxInFlight` calls are pending; more fail fast as unavailable (backpressure,
 *   instead of an unbounded queue in front of a slow executor).
 * - A frame over `maxMessageBytes` is never sent (the call fails) and never accepted (the
 *   connection is dropped as broken).
 * - When the connection breaks (or the executor says it is going away), every pending call
 *   fails at once as unavailable, and the connection is reopened with exponential backoff
 *   (or at once when the supervisor says the executor is back).
 */
import { create, fromBinary, type MessageInitShape, toBinary } from "@bufbuild/protobuf";
import { getLogger } from "@logtape/logtape";
import { PolicyFailure } from "../chain/failure.ts";
import {
  type ChunkRequest,
  ChunkRequestSchema,
  type ChunkResponse,
  ChunkResponseSchema,
  type ExecuteRequest,
  ExecuteRequestSchema,
  type ExecuteResponse,
  ExecuteResponseSchema,
  type HealthCheckResponse,
  HealthCheckResponseSchema,
} from "../gen/proto/tollgate/executor/v1/executor_pb.ts";
import { encodeFrame, type Frame, FrameDecoder, FrameKind } from "./frames.ts";

const log = getLogger(["tollgate", "python", "bridge"]);

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5000;
const READ_CHUNK_BYTES = 64 * 1024;
const NOTHING = new Uint8Array(0);

/** Counts what happens on the Python hop, for metrics. */
export interface ClientObserver {
  pythonCall(outcome: "ok" | "timeout" | "unavailable", seconds: number): void;
  pythonInFlight(count: number): void;
  pythonStreamBroken(): void;
}

export interface ExecutorClientOptions {
  readonly socket: string;
  readonly maxInFlight: number;
  readonly maxMessageBytes: number;
  readonly observer?: ClientObserver;
}

/** A call's request without its id (the client assigns ids). */
export type CallRequest = Omit<
  Exclude<MessageInitShape<typeof ExecuteRequestSchema>, ExecuteRequest>,
  "callId" | "$typeName"
>;

/** A chunk call's request without its id. */
export type ChunkCallRequest = Omit<
  Exclude<MessageInitShape<typeof ChunkRequestSchema>, ChunkRequest>,
  "callId" | "$typeName"
>;

interface Pending {
  /** The frame kind the answer must come in. */
  readonly answer: FrameKind;
  readonly resolve: (response: ExecuteResponse | ChunkResponse) => void;
  readonly reject: (error: PolicyFailure) => void;
  readonly started: number;
  /** When the call fails as timed out (`performance.now()` time), and its deadline as given. */
  readonly expires: number;
  readonly deadlineMs: number;
}

/** A health request waiting for its answer; answers come in order. */
interface HealthWaiter {
  settled: boolean;
  readonly resolve: (response: HealthCheckResponse) => void;
  readonly reject: (error: Error) => void;
}

/** One open connection and what is waiting to be written on it. */
class Connection {
  readonly outbox: Uint8Array[] = [];
  writing = false;
  closed = false;
  constructor(readonly conn: Deno.UnixConn) {}
}

export class ExecutorClient {
  readonly #pending = new Map<bigint, Pending>();
  /**
   * One timer for every deadline, armed for the earliest: calls with the same budget
   * arrive in deadline order, so a call mostly costs no timer at all.
   */
  #deadlineTimer: ReturnType<typeof setTimeout> | undefined;
  #deadlineAt = Infinity;
  readonly #health: HealthWaiter[] = [];
  #connection: Promise<Connection> | undefined;
  /** The connection `#connection` resolved to, once it did: frames go to it without a promise hop. */
  #established: { readonly opening: Promise<Connection>; readonly connection: Connection } | undefined;
  /** Frames waiting for a connection to open. */
  #waitingForOpen = 0;
  #nextId = 1n;
  #backoffMs = MIN_BACKOFF_MS;
  /** Until when (ms since epoch) no new connection is opened, after a break. */
  #retryAt = 0;
  #closed = false;

  constructor(private readonly options: ExecutorClientOptions) {}

  /** Calls in flight. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Forgets the backoff: the supervisor knows the executor is healthy again. */
  reconnectNow(): void {
    this.#backoffMs = MIN_BACKOFF_MS;
    this.#retryAt = 0;
  }

  #open(): Promise<Connection> | undefined {
    if (this.#connection) return this.#connection;
    if (this.#closed || Date.now() < this.#retryAt) return undefined;
    const opening = Deno.connect({ transport: "unix", path: this.options.socket }).then(
      (conn) => {
        const connection = new Connection(conn);
        if (this.#connection === opening) this.#established = { opening, connection };
        this.#read(opening, connection);
        return connection;
      },
      (error: Error) => {
        this.#broken(opening, `cannot connect: ${error.message}`, false);
        throw error;
      },
    );
    opening.catch(() => {}); // reported by #broken; callers see their own rejection
    this.#connection = opening;
    return opening;
  }

  async #read(opening: Promise<Connection>, connection: Connection): Promise<void> {
    const decoder = new FrameDecoder(this.options.maxMessageBytes);
    const chunk = new Uint8Array(READ_CHUNK_BYTES);
    let reason = "the executor closed the connection";
    try {
      while (true) {
        const n = await connection.conn.read(chunk);
        if (n === null) break;
        for (const frame of decoder.push(chunk.subarray(0, n))) {
          if (frame.kind === FrameKind.GoingAway) {
            reason = "the executor is shutting down";
            return;
          }
          this.#received(frame);
        }
      }
    } catch (error) {
      reason = (error as Error).message;
    } finally {
      this.#broken(opening, reason);
    }
  }

  #received(frame: Frame): void {
    if (frame.kind === FrameKind.ExecuteResponse) {
      this.#settle(frame.kind, fromBinary(ExecuteResponseSchema, frame.payload));
    } else if (frame.kind === FrameKind.ChunkResponse) {
      this.#settle(frame.kind, fromBinary(ChunkResponseSchema, frame.payload));
    } else if (frame.kind === FrameKind.HealthResponse) {
      const waiter = this.#health.shift();
      if (waiter && !waiter.settled) {
        waiter.settled = true;
        waiter.resolve(fromBinary(HealthCheckResponseSchema, frame.payload));
      }
    } else {
      throw new Error(`unexpected frame kind ${FrameKind[frame.kind]} from the executor`);
    }
  }

  #settle(kind: FrameKind, response: ExecuteResponse | ChunkResponse): void {
    this.#backoffMs = MIN_BACKOFF_MS;
    const pending = this.#pending.get(response.callId);
    if (!pending) return; // timed out already
    // Answering a call with the other kind's message breaks the contract: nothing after it can be trusted.
    if (pending.answer !== kind) {
      throw new Error(
        `the executor answered call ${response.callId} with a frame of kind ${FrameKind[kind]}`,
      );
    }
    this.#pending.delete(response.callId);
    this.options.observer?.pythonCall("ok", (performance.now() - pending.started) / 1000);
    this.options.observer?.pythonInFlight(this.#pending.size);
    pending.resolve(response);
  }

  /** Fails everything waiting on the connection; `established` is false when it never opened. */
  #broken(opening: Promise<Connection>, reason: string, established = true): void {
    if (this.#connection !== opening) return;
    this.#connection = undefined;
    this.#established = undefined;
    this.#retryAt = Date.now() + this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, MAX_BACKOFF_MS);
    if (established) this.options.observer?.pythonStreamBroken();
    const failed = [...this.#pending.values()];
    this.#pending.clear();
    // An executor still starting refuses connections: only a lost connection or lost calls are news.
    if (failed.length > 0 || (established && !this.#closed)) {
      log.warn("executor connection broke ({reason}); {count} calls failed", {
        reason,
        count: failed.length,
      });
    }
    this.#disarm();
    for (const pending of failed) {
      this.options.observer?.pythonCall("unavailable", (performance.now() - pending.started) / 1000);
      pending.reject(new PolicyFailure("unavailable", `python executor unavailable: ${reason}`));
    }
    for (const waiter of this.#health.splice(0)) {
      if (!waiter.settled) waiter.reject(new Error(`python executor unavailable: ${reason}`));
      waiter.settled = true;
    }
    this.options.observer?.pythonInFlight(0);
    opening.then((connection) => {
      connection.closed = true;
      try {
        connection.conn.close();
      } catch {
        // already closed
      }
    }, () => {});
  }

  /** Queues a frame; one writer per connection sends everything queued in one write. */
  #send(opening: Promise<Connection>, frame: Uint8Array): void {
    const open = this.#established;
    // Frames sent while the connection was opening go first, in order.
    if (open?.opening === opening && this.#waitingForOpen === 0) {
      open.connection.outbox.push(frame);
      if (!open.connection.writing) this.#write(opening, open.connection);
      return;
    }
    this.#waitingForOpen++;
    opening.then((connection) => {
      this.#waitingForOpen--;
      connection.outbox.push(frame);
      if (!connection.writing) this.#write(opening, connection);
    }, () => this.#waitingForOpen--);
  }

  async #write(opening: Promise<Connection>, connection: Connection): Promise<void> {
    connection.writing = true;
    try {
      while (connection.outbox.length > 0 && !connection.closed) {
        const frames = connection.outbox.splice(0);
        const bytes = frames.length === 1 ? frames[0] : concatAll(frames);
        // Awaiting each write is the backpressure: a slow reader holds frames here.
        for (let at = 0; at < bytes.length;) at += await connection.conn.write(bytes.subarray(at));
      }
    } catch (error) {
      this.#broken(opening, `write failed: ${(error as Error).message}`);
    } finally {
      connection.writing = false;
    }
  }

  /** Fails the calls past their deadline; arms the timer for the next deadline. */
  #sweep(): void {
    this.#deadlineTimer = undefined;
    this.#deadlineAt = Infinity;
    const now = performance.now();
    let next = Infinity;
    for (const [callId, pending] of this.#pending) {
      if (pending.expires > now) {
        next = Math.min(next, pending.expires);
        continue;
      }
      this.#pending.delete(callId);
      this.options.observer?.pythonCall("timeout", (now - pending.started) / 1000);
      pending.reject(
        new PolicyFailure("timeout", `python call exceeded its ${pending.deadlineMs}ms deadline`),
      );
    }
    this.options.observer?.pythonInFlight(this.#pending.size);
    this.#arm(next);
  }

  #arm(expires: number): void {
    if (expires >= this.#deadlineAt) return;
    clearTimeout(this.#deadlineTimer);
    this.#deadlineAt = expires;
    this.#deadlineTimer = setTimeout(
      () => this.#sweep(),
      Math.max(0, Math.ceil(expires - performance.now())),
    );
  }

  #disarm(): void {
    clearTimeout(this.#deadlineTimer);
    this.#deadlineTimer = undefined;
    this.#deadlineAt = Infinity;
  }

  /**
   * Sends one call and waits for its answer, at most `deadlineMs`. `encoded`: fields of the
   * request encoded beforehand (the batch's policies, the same on every call), sent with it.
   */
  call(request: CallRequest, deadlineMs: number, encoded: Uint8Array = NOTHING): Promise<ExecuteResponse> {
    return this.#call(
      (callId) => toBinary(ExecuteRequestSchema, create(ExecuteRequestSchema, { ...request, callId })),
      encoded,
      FrameKind.ExecuteRequest,
      FrameKind.ExecuteResponse,
      deadlineMs,
    ) as Promise<ExecuteResponse>;
  }

  /**
   * Sends one chunk call and waits for its answer, at most `deadlineMs`: the same connection,
   * call ids, in-flight cap and failures as {@link call}.
   */
  callChunk(
    request: ChunkCallRequest,
    deadlineMs: number,
    encoded: Uint8Array = NOTHING,
  ): Promise<ChunkResponse> {
    return this.#call(
      (callId) => toBinary(ChunkRequestSchema, create(ChunkRequestSchema, { ...request, callId })),
      encoded,
      FrameKind.ChunkRequest,
      FrameKind.ChunkResponse,
      deadlineMs,
    ) as Promise<ChunkResponse>;
  }

  #call(
    encode: (callId: bigint) => Uint8Array,
    encoded: Uint8Array,
    kind: FrameKind,
    answer: FrameKind,
    deadlineMs: number,
  ): Promise<ExecuteResponse | ChunkResponse> {
    if (this.#pending.size >= this.options.maxInFlight) {
      this.options.observer?.pythonCall("unavailable", 0);
      return Promise.reject(
        new PolicyFailure("unavailable", `${this.#pending.size} Python calls already in flight`),
      );
    }
    const callId = this.#nextId++;
    const payload = encode(callId);
    const bytes = payload.length + encoded.length;
    if (bytes > this.options.maxMessageBytes) {
      return Promise.reject(
        new PolicyFailure(
          "error",
          `the Python call (${bytes} bytes) is over the ${this.options.maxMessageBytes}-byte message limit`,
        ),
      );
    }
    const opening = this.#open();
    if (!opening) {
      this.options.observer?.pythonCall("unavailable", 0);
      return Promise.reject(new PolicyFailure("unavailable", "python executor unavailable (reconnecting)"));
    }
    return new Promise<ExecuteResponse | ChunkResponse>((resolve, reject) => {
      const started = performance.now();
      const expires = started + deadlineMs;
      this.#pending.set(callId, { answer, resolve, reject, started, expires, deadlineMs });
      this.#arm(expires);
      this.options.observer?.pythonInFlight(this.#pending.size);
      this.#send(opening, encodeFrame(kind, payload, encoded));
    });
  }

  /** The executor's health answer (on this client's connection), within `timeoutMs`. */
  health(timeoutMs: number): Promise<HealthCheckResponse> {
    // A health check is how the supervisor finds the executor again: it does not wait out the backoff.
    if (!this.#connection) this.reconnectNow();
    const opening = this.#open();
    if (!opening) return Promise.reject(new Error("the client is closed"));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        if (waiter.settled) return;
        waiter.settled = true; // its answer, if it comes, is skipped in order
        reject(new Error(`no health answer within ${timeoutMs}ms`));
      }, timeoutMs);
      const waiter: HealthWaiter = {
        settled: false,
        resolve: (response) => {
          clearTimeout(timer);
          resolve(response);
        },
        reject: (error) => {
          clearTimeout(timer);
          reject(error);
        },
      };
      this.#health.push(waiter);
      this.#send(opening, encodeFrame(FrameKind.HealthRequest, new Uint8Array(0)));
    });
  }

  /** Resolves once no call is pending: every call ends by its deadline at the latest. */
  async drained(): Promise<void> {
    while (this.#pending.size > 0) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  /** Fails what is pending and closes the connection. */
  close(): void {
    this.#closed = true;
    if (this.#connection) this.#broken(this.#connection, "the engine is shutting down");
  }
}

function concatAll(frames: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(frames.reduce((sum, f) => sum + f.length, 0));
  let at = 0;
  for (const frame of frames) {
    out.set(frame, at);
    at += frame.length;
  }
  return out;
}
