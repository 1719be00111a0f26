package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts that make Apply and Claim atomic. Redis runs a script to
// its end before any other command, so a script reads, decides and writes
// as one step, whichever instance sent it. Every key a script touches is
// passed in KEYS and carries the namespace's hash tag, so that in a cluster
// they all live in one slot.
//
// A value is a hash: v the bytes, r the revision, e the expiry in Unix
// milliseconds by the writer's clock (absent for none), t the token of the
// Apply that wrote it, when it was that Apply's first write. Timers live in
// two sorted sets: one by due time (Unix milliseconds) for Claim, one by key
// (all scores 0) to count and list a prefix.

// applyScript checks every condition, then performs every write, or none.
// It returns 0, or the 1-based index of the op whose condition failed.
//
//	KEYS[1] the revision counter, KEYS[2] timers by due, KEYS[3] timers by
//	key, KEYS[3+i] the value of op i.
//	ARGV[1] now (ms), ARGV[2] this call's token, ARGV[3] how long Redis
//	keeps a value past its expiry (ms), then six per op: kind
//	(C create, U update, D delete, S schedule, X unschedule), key, revision,
//	ttl (ms), due (ms), value.
var applyScript = redis.NewScript(`
local now, token, grace = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local n = #KEYS - 3
local function arg(i, j) return ARGV[3 + (i - 1) * 6 + j] end
local function writes(kind) return kind == 'C' or kind == 'U' end

-- Read each value an op writes or checks, once: its revision, whether it
-- is live (present and not expired), and the token of the call that wrote
-- it first.
local old, live, first = {}, {}, nil
for i = 1, n do
  local kind = arg(i, 1)
  if writes(kind) or (kind == 'D' and arg(i, 3) ~= '0') then
    local f = redis.call('HMGET', KEYS[3 + i], 'r', 'e', 't')
    old[i] = tonumber(f[1] or '0')
    live[i] = f[1] and not (f[2] and tonumber(f[2]) <= now) and f[1]
    if writes(kind) and not first then
      first = i
      -- A call the client sent again, after losing the answer, finds
      -- its token and succeeds without writing twice.
      if f[3] == token then return 0 end
    end
  end
end

for i = 1, n do
  local kind, want = arg(i, 1), arg(i, 3)
  if (kind == 'C' and live[i]) or (kind == 'U' and live[i] ~= want) or
     (kind == 'D' and want ~= '0' and live[i] ~= want) then
    return i
  end
end

for i = 1, n do
  local kind, key, k = arg(i, 1), arg(i, 2), KEYS[3 + i]
  if writes(kind) then
    -- Revisions come from one counter, and always exceed the key's last
    -- one, even if the counter was lost.
    local rev = redis.call('INCR', KEYS[1])
    if rev <= old[i] then
      rev = old[i] + 1
      redis.call('SET', KEYS[1], string.format('%d', rev))
    end
    local fields = {'v', arg(i, 6), 'r', string.format('%d', rev)}
    local ttl = tonumber(arg(i, 4))
    if ttl > 0 then
      fields[#fields + 1] = 'e'
      fields[#fields + 1] = string.format('%d', now + ttl)
    end
    if i == first then
      fields[#fields + 1] = 't'
      fields[#fields + 1] = token
    end
    redis.call('DEL', k)
    redis.call('HSET', k, unpack(fields))
    if ttl > 0 then
      redis.call('PEXPIRE', k, string.format('%d', ttl + grace))
    end
    old[i] = rev
  elseif kind == 'D' then
    redis.call('DEL', k)
  elseif kind == 'S' then
    redis.call('ZADD', KEYS[2], arg(i, 5), key)
    redis.call('ZADD', KEYS[3], 0, key)
  elseif kind == 'X' then
    redis.call('ZREM', KEYS[2], key)
    redis.call('ZREM', KEYS[3], key)
  end
end
return 0
`)

// claimScript returns up to limit keys due at now, earliest first, and
// moves their timers to now+lease.
//
//	KEYS[1] timers by due.
//	ARGV[1] now (ms), ARGV[2] lease (ms), ARGV[3] limit.
var claimScript = redis.NewScript(`
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])
local due = string.format('%d', tonumber(ARGV[1]) + tonumber(ARGV[2]))
for _, k in ipairs(keys) do
  redis.call('ZADD', KEYS[1], due, k)
end
return keys
`)

// timersScript returns how many timers have keys starting with a prefix,
// and the first limit of them by due time, as key, due (ms) pairs. With a
// prefix it reads every matching timer: its cost follows their number.
//
//	KEYS[1] timers by due, KEYS[2] timers by key.
//	ARGV[1] the prefix, ARGV[2] and ARGV[3] its range for ZRANGEBYLEX,
//	ARGV[4] limit.
var timersScript = redis.NewScript(`
local limit = tonumber(ARGV[4])
if ARGV[1] == '' then
  local total = redis.call('ZCARD', KEYS[1])
  if limit == 0 then return {total, {}} end
  return {total, redis.call('ZRANGE', KEYS[1], 0, limit - 1, 'WITHSCORES')}
end

local total = redis.call('ZLEXCOUNT', KEYS[2], ARGV[2], ARGV[3])
if limit == 0 or total == 0 then return {total, {}} end
local timers = {}
for _, k in ipairs(redis.call('ZRANGEBYLEX', KEYS[2], ARGV[2], ARGV[3])) do
  timers[#timers + 1] = {tonumber(redis.call('ZSCORE', KEYS[1], k)), k}
end
table.sort(timers, function(a, b) return a[1] < b[1] or (a[1] == b[1] and a[2] < b[2]) end)
local out = {}
for i = 1, math.min(limit, #timers) do
  out[#out + 1] = timers[i][2]
  out[#out + 1] = string.format('%d', timers[i][1])
end
return {total, out}
`)
