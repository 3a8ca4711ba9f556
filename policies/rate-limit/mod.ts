/**
 * rate-limit: counts requests per key (client address, header, metadata such as a JWT claim,
 * route, ...) against one or more limits with a token bucket, fixed window or sliding window,
 * in this engine's memory or in Redis shared by every replica. Limited requests get a 429;
 * allowed ones get the RateLimit fields in the response phase.
 */
import {
  type HeaderRecord,
  type PolicyFactory,
  type SharedContext,
  UpstreamRequestModifications,
  UpstreamResponseModifications,
} from "@tollgate/sdk";
import { reject } from "../shared/reject.ts";
import { UncheckedRequests } from "./fail_open.ts";
import { compileKey } from "./keys.ts";
import { durationMs, parseLimits } from "./limits.ts";
import { type LimitStore, MemoryStore, StoreUnavailable } from "./memory_store.ts";
import { limitedResponse, policyField, rateLimitHeaders } from "./response.ts";
import type { RateLimitParams } from "../../src/gen/params.ts";

export const getPolicy: PolicyFactory<RateLimitParams> = async (metadata, params) => {
  const limits = parseLimits(params.limits);
  const keyOf = compileKey(params.keyExtraction);
  const { redis } = params;
  // The Redis client is loaded only for a Redis store: it is the largest module graph of any
  // policy (~20 MiB resident, docs/performance.md "Memory"), and most engines never use it.
  const store: LimitStore = params.backend === "redis"
    ? await (await import("./redis_store.ts")).RedisStore.open(params.algorithm, limits, {
      host: redis.host,
      port: redis.port,
      username: redis.username,
      password: redis.password,
      db: redis.db,
      keyPrefix: redis.keyPrefix,
      connectTimeoutMs: durationMs(redis.connectTimeout),
      commandTimeoutMs: durationMs(redis.commandTimeout),
    })
    : new MemoryStore(params.algorithm, limits, params.memory.maxEntries);
  const policy = policyField(limits, params.algorithm === "token-bucket");
  const unchecked = new UncheckedRequests(metadata.routeName);
  // RateLimit fields of allowed requests, waiting for their response phase.
  const pending = new WeakMap<SharedContext, HeaderRecord>();
  const withHeaders = params.headers.includeIETF;

  return {
    async onRequest(ctx) {
      // Routes never share counters, in memory or in Redis.
      const key = `${encodeURIComponent(metadata.routeName)}:${keyOf(ctx)}`;
      let decision;
      try {
        decision = await store.take(key);
      } catch (error) {
        if (!(error instanceof StoreUnavailable)) throw error;
        if (params.failOpen) {
          unchecked.note(error.message);
          return new UpstreamRequestModifications({ analyticsMetadata: { rateLimit: "unchecked" } });
        }
        return reject(503, "rate_limit_unavailable", "the rate limit store is unavailable; try again later", {
          "retry-after": "1",
        });
      }
      const fields = withHeaders ? rateLimitHeaders(limits, decision, policy) : undefined;
      if (!decision.allowed) return limitedResponse(limits, decision, fields);
      if (fields) pending.set(ctx.shared, fields);
      return undefined;
    },
    onResponse(ctx) {
      const fields = pending.get(ctx.shared);
      if (!fields) return undefined;
      pending.delete(ctx.shared);
      return new UpstreamResponseModifications({ setHeaders: fields });
    },
    close: () => store.close(),
  };
};
