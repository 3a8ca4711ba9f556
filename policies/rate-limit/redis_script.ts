/**
 * The Lua script the `redis` store runs: one atomic call decides a request against every
 * limit of a key, with the same rules as algorithms.ts (the shared store tests hold both to
 * the same cases). Every field of a key's hash is a number: token bucket a=tokens
 * b=updatedAt; windows a=windowStart b=count (sliding: c=previousCount).
 *
 * KEYS: one per limit. ARGV: algorithm, now (ms), then limit, windowMs, burst per key.
 * Reply: allowed (0/1), retryAfterMs, then remaining and resetMs per limit.
 */
import { createHash } from "node:crypto";

export const RATE_LIMIT_SCRIPT = `
local algorithm = ARGV[1]
local now = tonumber(ARGV[2])
local probes = {}
local allowed = 1
for i = 1, #KEYS do
  local limit, w, burst = tonumber(ARGV[3 * i]), tonumber(ARGV[3 * i + 1]), tonumber(ARGV[3 * i + 2])
  local s = redis.call('HMGET', KEYS[i], 'a', 'b', 'c')
  local a, b, c = tonumber(s[1]), tonumber(s[2]), tonumber(s[3])
  local p = {}
  if algorithm == 'token-bucket' then
    local rate = limit / w
    local tokens = math.min(burst, (a or burst) + math.max(0, now - (b or now)) * rate)
    p.allows = tokens >= 1
    p.write = {'a', tokens - 1, 'b', now}
    p.ttl = math.ceil(burst / rate)
    p.counted = {math.floor(tokens - 1), math.ceil((burst - tokens + 1) / rate)}
    p.current = {math.floor(tokens), math.ceil((burst - tokens) / rate)}
    p.retry = p.allows and 0 or math.ceil((1 - tokens) / rate)
  else
    local start = now - (now % w)
    local count, previous = 0, 0
    if a == start then
      count, previous = b, (c or 0)
    elseif a == start - w and algorithm == 'sliding-window' then
      previous = b
    end
    local elapsed = now - start
    local estimate = count
    if algorithm == 'sliding-window' then estimate = previous * (w - elapsed) / w + count end
    p.allows = estimate + 1 <= limit
    p.write = {'a', start, 'b', count + 1, 'c', previous}
    p.ttl = (algorithm == 'sliding-window' and 2 * w or w) - elapsed
    p.counted = {math.max(0, math.floor(limit - estimate - 1)), w - elapsed}
    p.current = {math.max(0, math.floor(limit - estimate)), w - elapsed}
    p.retry = 0
    if not p.allows then
      if algorithm == 'fixed-window' then
        p.retry = w - elapsed
      elseif count + 1 > limit then
        p.retry = (w - elapsed) + math.ceil(w * (1 - (limit - 1) / count))
      else
        p.retry = math.max(1, math.ceil(w * (1 - (limit - 1 - count) / previous)) - elapsed)
      end
    end
  end
  if not p.allows then allowed = 0 end
  probes[i] = p
end
local reply = {allowed, 0}
for i = 1, #KEYS do
  local p = probes[i]
  local status = p.current
  if allowed == 1 then
    redis.call('HSET', KEYS[i], unpack(p.write))
    redis.call('PEXPIRE', KEYS[i], p.ttl)
    status = p.counted
  elseif p.retry > reply[2] then
    reply[2] = p.retry
  end
  reply[#reply + 1] = status[1]
  reply[#reply + 1] = status[2]
end
return reply
`;

/** The script's SHA-1, the name EVALSHA calls it by. */
export const RATE_LIMIT_SCRIPT_SHA = createHash("sha1").update(RATE_LIMIT_SCRIPT).digest("hex");
