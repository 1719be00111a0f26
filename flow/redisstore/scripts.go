package redisstore

import "github.com/redis/go-redis/v9"

// The Lua scripts of the store. Redis runs a script to its end before any
// other command, so a script reads, decides and writes as one step,
// whichever instance sent it. Every key a script touches is passed in KEYS
// and carries the namespace's hash tag, so that in a cluster they all live
// in one slot.
//
// Under the prefix and hash tag, a value is a hash at v:KEY: v the bytes,
// r the revision, e the expiry in Unix milliseconds by the writer's clock
// (absent for none), t the token of the Apply that wrote it, when it was
// that Apply's first write. Revisions come from the counter at rev.
//
// Timers live in sorted sets: due holds all by due time (Unix
// milliseconds), for Claim; keys holds all by key (all scores 0), to count
// and list any prefix; and due:KIND holds those of one kind of key by due
// time, so that the first timers of a kind come at once however many there
// are. A key's kind is its text up to and including its first "/" ("d/"
// for deliveries); keys without one have no kind, and are only in due and
// keys. The sets of kinds came after the others: the hash at layout holds,
// in v, the version of the layout once they were filled from the timers of
// a store written before them, and in c the cursor of a filling under way.
//
// Which sets of kinds exist is not known in advance, and a script may not
// make up the name of a key: it must be passed. A fixed list would tie the
// store to the engine's key names, and one set for all kinds, ordered by a
// score that puts the kind above the due time, would not fit both in the
// 53 bits a score holds exactly. So Apply passes the sets of the kinds of
// the keys it schedules and unschedules. Claim and the filling, which
// cannot know what timers they will meet, are passed the sets of the kinds
// the store has seen; when they meet another they write nothing and name
// it, and the store learns it and runs them again. Each instance learns
// each kind once: the cost is one round trip, the first time it claims a
// kind of key it has not scheduled.

// kindFuncs are the Lua functions of the scripts that move timers of any key:
// kindOf returns the kind of key k, or nil when it has none; unknownKinds
// returns the kinds of keys that have no set in sets, a table by kind.
const kindFuncs = `
local function kindOf(k)
  local i = string.find(k, '/', 1, true)
  if i then return string.sub(k, 1, i) end
end

local function unknownKinds(keys, sets)
  local out, named = {}, {}
  for _, k in ipairs(keys) do
    local kind = kindOf(k)
    if kind and not sets[kind] and not named[kind] then
      named[kind] = true
      out[#out + 1] = kind
    end
  end
  return out
end
`

// applyScript checks every condition, then performs every write, or none.
// It returns 0, or the 1-based index of the op whose condition failed.
//
//	KEYS[1] the revision counter, KEYS[2] timers by due, KEYS[3] timers by
//	key, KEYS[3+i] the value of op i, then the timers of the kinds of the
//	keys scheduled or unscheduled.
//	ARGV[1] now (ms), ARGV[2] this call's token, ARGV[3] how long Redis
//	keeps a value past its expiry (ms), then seven per op: kind
//	(C create, U update, D delete, S schedule, X unschedule), key, revision,
//	ttl (ms), due (ms), value, and the index in KEYS of the timers of the
//	key's kind, 0 for none.
var applyScript = redis.NewScript(`
local now, token, grace = tonumber(ARGV[1]), ARGV[2], tonumber(ARGV[3])
local n = (#ARGV - 3) / 7
local function arg(i, j) return ARGV[3 + (i - 1) * 7 + j] end
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
    local set = tonumber(arg(i, 7))
    if set > 0 then redis.call('ZADD', KEYS[set], arg(i, 5), key) end
  elseif kind == 'X' then
    redis.call('ZREM', KEYS[2], key)
    redis.call('ZREM', KEYS[3], key)
    local set = tonumber(arg(i, 7))
    if set > 0 then redis.call('ZREM', KEYS[set], key) end
  end
end
return 0
`)

// claimScript returns up to limit keys due at now, earliest first, and
// moves their timers to now+lease, in the sets of their kinds too. It
// returns the keys, and the kinds it was not given the sets of: then it
// wrote nothing and returns no keys.
//
//	KEYS[1] timers by due, KEYS[1+i] the timers of kind ARGV[3+i].
//	ARGV[1] now (ms), ARGV[2] lease (ms), ARGV[3] limit, then the kinds.
var claimScript = redis.NewScript(kindFuncs + `
local sets = {}
for i = 2, #KEYS do sets[ARGV[i + 2]] = KEYS[i] end
local keys = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[3])

local missing = unknownKinds(keys, sets)
if #missing > 0 then return {{}, missing} end

local due = string.format('%d', tonumber(ARGV[1]) + tonumber(ARGV[2]))
for _, k in ipairs(keys) do
  redis.call('ZADD', KEYS[1], due, k)
  local kind = kindOf(k)
  if kind then redis.call('ZADD', sets[kind], due, k) end
end
return {keys, {}}
`)

// timersScript returns how many timers have keys starting with a prefix,
// and the first limit of them by due time, as key, due (ms) pairs.
//
// For a prefix that is a kind, it reads the kind's set: its cost follows
// limit, not the number of timers. It returns -1 for the count when the
// layout marker says the sets of kinds are not filled yet. For another
// prefix it reads every matching timer: its cost follows their number.
//
//	KEYS[1] timers by due, KEYS[2] timers by key; for a kind, KEYS[3] the
//	layout marker and KEYS[4] the timers of the kind.
//	ARGV[1] the prefix, ARGV[2] and ARGV[3] its range for ZRANGEBYLEX,
//	ARGV[4] limit, ARGV[5] the layout's version.
var timersScript = redis.NewScript(`
local limit = tonumber(ARGV[4])
local function first(set)
  local total = redis.call('ZCARD', set)
  if limit == 0 then return {total, {}} end
  return {total, redis.call('ZRANGE', set, 0, limit - 1, 'WITHSCORES')}
end
if ARGV[1] == '' then return first(KEYS[1]) end
if KEYS[4] then
  if redis.call('HGET', KEYS[3], 'v') ~= ARGV[5] then return {-1, {}} end
  return first(KEYS[4])
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

// fillScript fills the sets of kinds from the timers by key, for a store
// written before there were any: one batch of keys after the cursor the
// layout marker keeps, each added to its kind's set with the score it has
// among all timers. After the last batch it marks the layout's version,
// in the same step, so that the sets are filled once. It returns 1 when
// the layout is marked, else 0 and the kinds it was not given the sets of
// (then it wrote nothing).
//
// The filling may take several batches, and run from several instances at
// once: each batch moves the shared cursor, and a batch done twice adds
// what is there already. Apply and Claim keep the sets of kinds of the
// timers they touch meanwhile.
//
//	KEYS[1] the layout marker (a hash: v the version, c the cursor), KEYS[2]
//	timers by key, KEYS[3] timers by due, KEYS[3+i] the timers of kind
//	ARGV[2+i].
//	ARGV[1] the layout's version, ARGV[2] the batch's size, then the kinds.
var fillScript = redis.NewScript(kindFuncs + `
if redis.call('HGET', KEYS[1], 'v') == ARGV[1] then return {1, {}} end
local sets = {}
for i = 4, #KEYS do sets[ARGV[i - 1]] = KEYS[i] end
local cursor = redis.call('HGET', KEYS[1], 'c')
local from = cursor and '(' .. cursor or '-'
local keys = redis.call('ZRANGEBYLEX', KEYS[2], from, '+', 'LIMIT', 0, ARGV[2])

local missing = unknownKinds(keys, sets)
if #missing > 0 then return {0, missing} end

for _, k in ipairs(keys) do
  local kind, due = kindOf(k), redis.call('ZSCORE', KEYS[3], k)
  if kind and due then redis.call('ZADD', sets[kind], due, k) end
end
if #keys < tonumber(ARGV[2]) then
  redis.call('HSET', KEYS[1], 'v', ARGV[1])
  redis.call('HDEL', KEYS[1], 'c')
  return {1, {}}
end
redis.call('HSET', KEYS[1], 'c', keys[#keys])
return {0, {}}
`)
