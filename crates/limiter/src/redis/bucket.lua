-- One rate-limit bucket, checked or read atomically. The same algorithms as the in-memory
-- limiter (crates/limiter/src/ratelimit/algorithms.rs), over the caller's clock in ms.
--
-- KEYS[1]  the bucket's hash: the spec it was last checked with and the counter state
-- KEYS[2]  the bucket's sorted set of counted requests (sliding window only)
-- ARGV[1]  "check" (count one request unless the limit is reached) or "peek" (remaining only)
-- ARGV[2]  now, ms since the epoch
-- check also takes ARGV[3..6]: algorithm, requests (>= 1), window ms (>= 1), token capacity.
--
-- check returns {allowed 0|1, limit, remaining, reset_at_ms, retry_after_ms};
-- peek returns {algorithm, remaining}, or nil when there is no bucket.
-- Each write sets both keys to expire when the bucket is back to its full allowance.

local meta, hits = KEYS[1], KEYS[2]
local mode, now = ARGV[1], tonumber(ARGV[2])

local families = {
  sliding_window = 'sliding', fixed_window = 'fixed',
  token_bucket = 'tokens', leaky_bucket = 'tokens',
}

-- Integral numbers as exact decimal strings (Lua would print large ones in exponent form).
local function int(x)
  return string.format('%.0f', x)
end

local function num(field)
  return tonumber(redis.call('HGET', meta, field))
end

-- Sliding window: the requests counted within the last window.
local function sliding_used(window)
  return redis.call('ZCOUNT', hits, '(' .. int(now - window), '+inf')
end

local function sliding_check(limit, window)
  redis.call('ZREMRANGEBYSCORE', hits, '-inf', int(now - window))
  local used = redis.call('ZCARD', hits)
  if used >= limit then
    local oldest = tonumber(redis.call('ZRANGE', hits, 0, 0, 'WITHSCORES')[2])
    local newest = tonumber(redis.call('ZRANGE', hits, -1, -1, 'WITHSCORES')[2])
    return {0, limit, 0, newest + window, math.max(oldest + window - now, 1)}, newest + window
  end
  local seq = redis.call('HINCRBY', meta, 'seq', 1)
  redis.call('ZADD', hits, int(now), seq)
  local newest = tonumber(redis.call('ZRANGE', hits, -1, -1, 'WITHSCORES')[2])
  return {1, limit, limit - used - 1, now + window, 0}, newest + window
end

-- Fixed window: a count per window aligned on multiples of the window length.
local function fixed_count(window)
  local start = now - (now % window)
  if num('start') ~= start then
    return start, 0
  end
  return start, num('count') or 0
end

local function fixed_check(limit, window)
  local start, count = fixed_count(window)
  local reset_at = start + window
  if count >= limit then
    redis.call('HSET', meta, 'start', int(start), 'count', count)
    return {0, limit, 0, reset_at, math.max(reset_at - now, 1)}, reset_at
  end
  count = count + 1
  redis.call('HSET', meta, 'start', int(start), 'count', count)
  return {1, limit, limit - count, reset_at, 0}, reset_at
end

-- Token bucket: starts full at `capacity`, refills `requests` tokens per window.
local function refilled(requests, window, capacity)
  local rate = requests / window
  local tokens, last = num('tokens'), num('last')
  if tokens == nil then
    return capacity, now, rate
  end
  tokens = math.min(tokens + math.max(now - last, 0) * rate, capacity)
  return tokens, math.max(last, now), rate
end

local function tokens_check(requests, window, capacity)
  local tokens, last, rate = refilled(requests, window, capacity)
  local allowed = tokens >= 1
  if allowed then
    tokens = tokens - 1
  end
  redis.call('HSET', meta, 'tokens', string.format('%.17g', tokens), 'last', int(last))
  local until_full = math.ceil(math.max(capacity - tokens, 0) / rate)
  if not allowed then
    local wait = math.max(math.ceil((1 - tokens) / rate), 1)
    return {0, capacity, 0, now + until_full, wait}, last + until_full
  end
  return {1, capacity, math.floor(tokens), now + until_full, 0}, last + until_full
end

if mode == 'peek' then
  local algorithm = redis.call('HGET', meta, 'algorithm')
  if not algorithm then
    return nil
  end
  local requests, window, capacity = num('requests'), num('window'), num('capacity')
  local family = families[algorithm]
  local remaining
  if family == 'sliding' then
    remaining = requests - sliding_used(window)
  elseif family == 'fixed' then
    local _, count = fixed_count(window)
    remaining = requests - count
  else
    local tokens = refilled(requests, window, capacity)
    remaining = math.floor(tokens)
  end
  return {algorithm, math.max(remaining, 0)}
end

local algorithm = ARGV[3]
local requests, window, capacity = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local family = families[algorithm]
if not family then
  return redis.error_reply('unknown rate limit algorithm ' .. tostring(algorithm))
end
local previous = redis.call('HGET', meta, 'algorithm')
if previous and families[previous] ~= family then
  -- A changed rule starts a fresh bucket.
  redis.call('DEL', meta, hits)
end
redis.call('HSET', meta, 'algorithm', algorithm, 'requests', ARGV[4], 'window', ARGV[5],
  'capacity', ARGV[6])

local decision, idle_at
if family == 'sliding' then
  decision, idle_at = sliding_check(requests, window)
elseif family == 'fixed' then
  decision, idle_at = fixed_check(requests, window)
else
  decision, idle_at = tokens_check(requests, window, capacity)
end

local ttl = int(math.max(idle_at - now, 1))
redis.call('PEXPIRE', meta, ttl)
if family == 'sliding' then
  redis.call('PEXPIRE', hits, ttl)
end
return decision
