/**
 * The `redis` store: counters shared by every Tollgate replica, kept in a Redis or Valkey
 * server and updated atomically by one Lua script call per request (EVALSHA, falling back
 * to EVAL when the server does not have the script yet). When the server cannot be
 * reached or does not answer within the command timeout, `take` rejects with
 * {@link StoreUnavailable} at once; the client reconnects by itself in the background.
 */
import { getLogger } from "@logtape/logtape";
import { createClient, ErrorReply } from "@redis/client";
import type { Algorithm, Decision } from "./algorithms.ts";
import type { Limit } from "./limits.ts";
import { type LimitStore, StoreUnavailable } from "./memory_store.ts";
import { RATE_LIMIT_SCRIPT, RATE_LIMIT_SCRIPT_SHA } from "./redis_script.ts";

const log = getLogger(["tollgate", "policy", "rate-limit"]);

export interface RedisOptions {
  readonly host: string;
  readonly port: number;
  readonly username?: string;
  readonly password?: string;
  readonly db: number;
  readonly keyPrefix: string;
  readonly connectTimeoutMs: number;
  readonly commandTimeoutMs: number;
}

/** Longest pause between reconnection attempts. */
const MAX_RECONNECT_DELAY_MS = 1000;
/** At most one connection-error log line per this interval, per store. */
const ERROR_LOG_INTERVAL_MS = 10_000;

function newClient(options: RedisOptions) {
  return createClient({
    socket: {
      host: options.host,
      port: options.port,
      connectTimeout: options.connectTimeoutMs,
      reconnectStrategy: (retries: number) => Math.min(50 * 2 ** retries, MAX_RECONNECT_DELAY_MS),
    },
    username: options.username,
    password: options.password,
    database: options.db,
    // Fail at once while disconnected instead of queueing requests behind a dead server.
    disableOfflineQueue: true,
  });
}

type RedisClient = ReturnType<typeof newClient>;

export class RedisStore implements LimitStore {
  #lastErrorLog = 0;

  private constructor(
    private readonly client: RedisClient,
    private readonly algorithm: Algorithm,
    private readonly limits: readonly Limit[],
    private readonly options: RedisOptions,
    private readonly now: () => number,
  ) {}

  /**
   * Creates the store and starts connecting. Waits for the connection at most the connect
   * timeout: a server that is down makes requests fail (or pass, with `failOpen`) until it
   * is back, never the chain build.
   */
  static async open(
    algorithm: Algorithm,
    limits: readonly Limit[],
    options: RedisOptions,
    now: () => number = Date.now,
  ): Promise<RedisStore> {
    const client = newClient(options);
    const store = new RedisStore(client, algorithm, limits, options, now);
    client.on("error", (error: Error) => store.#logError(error));
    const connected = client.connect().then(() => {}, (error: Error) => store.#logError(error));
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([
      connected,
      new Promise((resolve) => timer = setTimeout(resolve, options.connectTimeoutMs)),
    ]);
    clearTimeout(timer);
    return store;
  }

  #logError(error: Error): void {
    const now = Date.now();
    if (now - this.#lastErrorLog < ERROR_LOG_INTERVAL_MS) return;
    this.#lastErrorLog = now;
    log.warn("rate-limit: Redis {address}: {error}", {
      address: `${this.options.host}:${this.options.port}`,
      error: error.message,
    });
  }

  async take(key: string): Promise<Decision> {
    const keys = this.limits.map((l) =>
      `${this.options.keyPrefix}${this.algorithm}:${l.limit}/${l.windowMs}:${key}`
    );
    const args = [
      this.algorithm,
      String(this.now()),
      ...this.limits.flatMap((l) => [String(l.limit), String(l.windowMs), String(l.burst)]),
    ];
    const reply = await this.#withDeadline(this.#evaluate(keys, args));
    return {
      allowed: reply[0] === 1,
      retryAfterMs: reply[1],
      limits: this.limits.map((_, i) => ({ remaining: reply[2 + 2 * i], resetMs: reply[3 + 2 * i] })),
    };
  }

  async #evaluate(keys: string[], args: string[]): Promise<number[]> {
    const call = (command: string, script: string) =>
      this.client.sendCommand([command, script, String(keys.length), ...keys, ...args]) as Promise<number[]>;
    try {
      try {
        return await call("EVALSHA", RATE_LIMIT_SCRIPT_SHA);
      } catch (error) {
        if (!(error instanceof ErrorReply && error.message.startsWith("NOSCRIPT"))) throw error;
        return await call("EVAL", RATE_LIMIT_SCRIPT);
      }
    } catch (error) {
      // A reply error (a bug, a wrong key type) is a policy failure, not an unreachable store.
      if (error instanceof ErrorReply) {
        throw new Error(`Redis refused the rate-limit script: ${error.message}`);
      }
      this.#logError(error as Error);
      throw new StoreUnavailable(
        `Redis ${this.options.host}:${this.options.port}: ${(error as Error).message}`,
      );
    }
  }

  /** The client times out only commands not yet sent; this bounds the whole round trip. */
  async #withDeadline<T>(work: Promise<T>): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new StoreUnavailable(`Redis did not answer within ${this.options.commandTimeoutMs}ms`)),
        this.options.commandTimeoutMs,
      );
    });
    try {
      return await Promise.race([work, deadline]);
    } finally {
      clearTimeout(timer);
    }
  }

  close(): Promise<void> {
    this.client.destroy();
    return Promise.resolve();
  }
}
