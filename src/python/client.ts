/**
 * The engine's side of the executor contract: one bidirectional ExecuteStream carrying every
 * Python call, multiplexed by call id.
 *
 * - Each call has a deadline; past it the call fails as a timeout (a late answer is dropped).
 * - At most `maxInFlight` calls are pending; more fail fast as unavailable (backpressure,
 *   instead of an unbounded queue in front of a slow executor).
 * - When the stream breaks, every pending call fails at once as unavailable, and the stream
 *   is reopened with exponential backoff (or at once when the supervisor says the executor is
 *   back).
 */
import * as grpc from "@grpc/grpc-js";
import { create, type MessageInitShape } from "@bufbuild/protobuf";
import { getLogger } from "@logtape/logtape";
import { PolicyFailure } from "../executor/failure.ts";
import {
  type ExecuteRequest,
  ExecuteRequestSchema,
  type ExecuteResponse,
  ExecuteResponseSchema,
  HealthCheckRequestSchema,
  type HealthCheckResponse,
  HealthCheckResponseSchema,
} from "../gen/proto/tollgate/executor/v1/executor_pb.ts";
import { bidiMethod, channelOptions, unaryMethod } from "../transport/grpc.ts";

const log = getLogger(["tollgate", "python", "bridge"]);

const EXECUTE = bidiMethod(
  "/tollgate.executor.v1.PythonExecutor/ExecuteStream",
  ExecuteRequestSchema,
  ExecuteResponseSchema,
);
const HEALTH = unaryMethod(
  "/tollgate.executor.v1.PythonExecutor/HealthCheck",
  HealthCheckRequestSchema,
  HealthCheckResponseSchema,
);

const MIN_BACKOFF_MS = 100;
const MAX_BACKOFF_MS = 5000;

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

interface Pending {
  readonly resolve: (response: ExecuteResponse) => void;
  readonly reject: (error: PolicyFailure) => void;
  readonly timer: ReturnType<typeof setTimeout>;
  readonly started: number;
}

type ExecuteStream = grpc.ClientDuplexStream<ExecuteRequest, ExecuteResponse>;

export class ExecutorClient {
  readonly #client: grpc.Client;
  readonly #pending = new Map<bigint, Pending>();
  #stream: ExecuteStream | undefined;
  #nextId = 1n;
  #backoffMs = MIN_BACKOFF_MS;
  /** Until when (ms since epoch) no new stream is opened, after a break. */
  #retryAt = 0;
  #closed = false;

  constructor(private readonly options: ExecutorClientOptions) {
    this.#client = new grpc.Client(`unix:${options.socket}`, grpc.credentials.createInsecure(), {
      ...channelOptions(options.maxMessageBytes),
      // The executor may restart: find it again within a fraction of a second.
      "grpc.initial_reconnect_backoff_ms": MIN_BACKOFF_MS,
      "grpc.max_reconnect_backoff_ms": 1000,
      // A connection of its own: when the executor is recycled, the successor's client must
      // reach the new process rather than share the old one's connection.
      "grpc.use_local_subchannel_pool": 1,
    });
  }

  /** Calls in flight. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Forgets the backoff: the supervisor knows the executor is healthy again. */
  reconnectNow(): void {
    this.#backoffMs = MIN_BACKOFF_MS;
    this.#retryAt = 0;
  }

  #open(): ExecuteStream | undefined {
    if (this.#stream) return this.#stream;
    if (this.#closed || Date.now() < this.#retryAt) return undefined;
    const stream: ExecuteStream = this.#client.makeBidiStreamRequest(
      EXECUTE.path,
      EXECUTE.requestSerialize,
      EXECUTE.responseDeserialize,
    );
    stream.on("data", (response: ExecuteResponse) => this.#settle(response));
    stream.on("error", (error: grpc.ServiceError) => this.#broken(stream, error.details || error.message));
    stream.on("end", () => this.#broken(stream, "the executor ended the stream"));
    this.#stream = stream;
    return stream;
  }

  #settle(response: ExecuteResponse): void {
    this.#backoffMs = MIN_BACKOFF_MS;
    const pending = this.#pending.get(response.callId);
    if (!pending) return; // timed out already
    this.#pending.delete(response.callId);
    clearTimeout(pending.timer);
    this.options.observer?.pythonCall("ok", (performance.now() - pending.started) / 1000);
    this.options.observer?.pythonInFlight(this.#pending.size);
    pending.resolve(response);
  }

  #broken(stream: ExecuteStream, reason: string): void {
    if (this.#stream !== stream) return;
    this.#stream = undefined;
    this.#retryAt = Date.now() + this.#backoffMs;
    this.#backoffMs = Math.min(this.#backoffMs * 2, MAX_BACKOFF_MS);
    this.options.observer?.pythonStreamBroken();
    const failed = [...this.#pending.values()];
    this.#pending.clear();
    if (failed.length > 0 || !this.#closed) {
      log.warn("executor stream broke ({reason}); {count} calls failed", { reason, count: failed.length });
    }
    for (const pending of failed) {
      clearTimeout(pending.timer);
      this.options.observer?.pythonCall("unavailable", (performance.now() - pending.started) / 1000);
      pending.reject(new PolicyFailure("unavailable", `python executor unavailable: ${reason}`));
    }
    this.options.observer?.pythonInFlight(0);
    try {
      stream.cancel();
    } catch {
      // already closed
    }
  }

  /** Sends one call and waits for its answer, at most `deadlineMs`. */
  call(request: CallRequest, deadlineMs: number): Promise<ExecuteResponse> {
    if (this.#pending.size >= this.options.maxInFlight) {
      this.options.observer?.pythonCall("unavailable", 0);
      return Promise.reject(
        new PolicyFailure("unavailable", `${this.#pending.size} Python calls already in flight`),
      );
    }
    const stream = this.#open();
    if (!stream) {
      this.options.observer?.pythonCall("unavailable", 0);
      return Promise.reject(new PolicyFailure("unavailable", "python executor unavailable (reconnecting)"));
    }
    const callId = this.#nextId++;
    return new Promise<ExecuteResponse>((resolve, reject) => {
      const started = performance.now();
      const timer = setTimeout(() => {
        if (!this.#pending.delete(callId)) return;
        this.options.observer?.pythonCall("timeout", (performance.now() - started) / 1000);
        this.options.observer?.pythonInFlight(this.#pending.size);
        reject(new PolicyFailure("timeout", `python call exceeded its ${deadlineMs}ms deadline`));
      }, deadlineMs);
      this.#pending.set(callId, { resolve, reject, timer, started });
      this.options.observer?.pythonInFlight(this.#pending.size);
      stream.write(create(ExecuteRequestSchema, { ...request, callId }));
    });
  }

  /** The executor's HealthCheck. */
  health(timeoutMs: number): Promise<HealthCheckResponse> {
    return new Promise((resolve, reject) => {
      this.#client.makeUnaryRequest(
        HEALTH.path,
        HEALTH.requestSerialize,
        HEALTH.responseDeserialize,
        create(HealthCheckRequestSchema),
        { deadline: Date.now() + timeoutMs },
        (error, response) =>
          error || !response ? reject(error ?? new Error("no health response")) : resolve(response),
      );
    });
  }

  /** Resolves once no call is pending: every call ends by its deadline at the latest. */
  async drained(): Promise<void> {
    while (this.#pending.size > 0) await new Promise((resolve) => setTimeout(resolve, 20));
  }

  /** Fails what is pending and closes the connection. */
  close(): void {
    this.#closed = true;
    if (this.#stream) this.#broken(this.#stream, "the engine is shutting down");
    this.#client.close();
  }
}
