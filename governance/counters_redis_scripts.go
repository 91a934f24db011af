package governance

import "github.com/redis/go-redis/v9"

// The Lua scripts behind RedisCounters. Each runs atomically inside Redis, so
// every Caddy instance of a fleet sees one consistent set of counters.
//
// Conventions shared by all scripts:
//
//   - Time is the caller's clock in Unix milliseconds, passed in ARGV; no
//     script reads Redis TIME, so tests control time and a fleet agrees on
//     period and window boundaries computed in Go.
//   - Money and token counts are integers. Lua numbers are doubles, exact up
//     to 2^53 (RedisMaxMoney); Go validates limits and amounts against that
//     bound. Numbers handed back to Redis commands go through int(), which
//     formats with %d, never through Lua's lossy %.14g.
//   - Every key shares the prefix's hash tag ("{llmgw}:…"), so a Redis Cluster
//     keeps them in one slot. Ticket and budget keys found through the lease
//     zset or a ticket hash are not declared in KEYS; that is allowed for
//     EVAL scripts without a shebang as long as they live in the same slot,
//     which the hash tag guarantees.
//
// Key layout (P is the hash-tagged prefix, "{llmgw}:" by default):
//
//	P b:<kind>:<name>:<period>:<periodStartUnixSec>  hash spent, reserved, partials
//	P rl:<kind>:<name>:<unit>:<windowMs>             hash index, curr, prev
//	P t:<ticketID>                                   hash n, then k<j> (budget key),
//	                                                 a<j> (amount), p<j> (1 if partial),
//	                                                 r<j> (limit − spent at admission)
//	P leases                                         zset ticketID → lease expiry (ms)
//	P s:<ticketID>                                   "1" once settled (short TTL)

// redisLuaPrelude is the helpers every mutating script shares.
const redisLuaPrelude = `
local function int(n) return string.format('%d', n) end

-- release frees what the ticket at tkey holds and deletes it. Budget keys
-- that have expired meanwhile are not recreated; counts never go below 0.
local function release(tkey)
  local n = tonumber(redis.call('HGET', tkey, 'n'))
  if n then
    for j = 1, n do
      local f = redis.call('HMGET', tkey, 'k' .. j, 'a' .. j, 'p' .. j)
      local k, a = f[1], tonumber(f[2])
      if k and redis.call('EXISTS', k) == 1 then
        if a and a > 0 and redis.call('HINCRBY', k, 'reserved', int(-a)) < 0 then
          redis.call('HSET', k, 'reserved', 0)
        end
        if f[3] == '1' and redis.call('HINCRBY', k, 'partials', -1) < 0 then
          redis.call('HSET', k, 'partials', 0)
        end
      end
    end
  end
  redis.call('DEL', tkey)
end

-- sweep releases up to limit tickets whose lease ended at or before now and
-- returns how many it released.
local function sweep(leases, tprefix, now, limit)
  local ids = redis.call('ZRANGEBYSCORE', leases, '-inf', now, 'LIMIT', 0, limit)
  for _, id in ipairs(ids) do
    release(tprefix .. id)
    redis.call('ZREM', leases, id)
  end
  return #ids
end

-- roll brings a sliding-window limiter to window idx: the stored window
-- becomes prev when it is the one before, and both counts are dropped when
-- it is older. A stored window ahead of idx (another instance's clock runs
-- ahead) is kept: a limiter never moves backwards. Returns the window the
-- counts now belong to, curr and prev.
local function roll(k, idx)
  local s = redis.call('HMGET', k, 'index', 'curr', 'prev')
  local si, c, p = tonumber(s[1]), tonumber(s[2]) or 0, tonumber(s[3]) or 0
  if si == nil then
    return idx, 0, 0
  elseif si == idx or si > idx then
    return si, c, p
  elseif si == idx - 1 then
    return idx, 0, c
  end
  return idx, 0, 0
end
`

// redisAdmitSource checks every budget and rate limit and, only if all pass,
// applies every reservation and limiter count, creates the ticket and its
// lease. Before checking it releases up to a batch of expired leases.
//
//	KEYS[1] leases zset, KEYS[2] ticket hash,
//	KEYS[3 .. 2+nb] budget hashes, KEYS[3+nb .. 2+nb+nr] limiter hashes
//	ARGV[1] now ms, [2] ticket id, [3] lease expiry ms (0: none),
//	[4] ticket TTL ms (0: none), [5] ticket key prefix, [6] sweep batch,
//	[7] worst case, [8] tokens, [9] nb, [10] nr,
//	then nb × (limit, key TTL ms (0: none)),
//	then nr × (limit, unit "r"|"t", window ms, window index, elapsed ms)
//
// Replies (all integers):
//
//	{1, nb, amount_1, partial_1, remaining_1, …, window_1, …, window_nr}
//	    admitted; window_j is the window limiter j counted the request in
//	{2, j, spent, reserved, heldByPartial, heldUntil}  budget j refused;
//	    heldUntil is the lease expiry (ms) of the first ticket holding on
//	    budget j that expires within HeldRetryAfter, else 0 (also when the
//	    budget is spent)
//	{3, j, curr, prev, window}              rate limit j refused
//
// Two budgets of one scope with the same period share one hash: both are
// checked against it as it was and both reservations are added to it (and
// released from it), as MemoryCounters does. The same limiter twice is
// checked twice and counted once.
//
// A ticket id that already exists is a retried call (the client resent the
// script after a lost reply): the first answer is replayed from the ticket
// (with the current window for each limiter).
const redisAdmitSource = redisLuaPrelude + `
local tkey = KEYS[2]
local nb, nr = tonumber(ARGV[9]), tonumber(ARGV[10])
if redis.call('EXISTS', tkey) == 1 then
  local n = tonumber(redis.call('HGET', tkey, 'n')) or 0
  local out = {1, n}
  for j = 1, n do
    local f = redis.call('HMGET', tkey, 'a' .. j, 'p' .. j, 'r' .. j)
    out[#out + 1] = tonumber(f[1])
    out[#out + 1] = tonumber(f[2])
    out[#out + 1] = tonumber(f[3])
  end
  for j = 1, nr do out[#out + 1] = tonumber(ARGV[10 + 2 * nb + 5 * j - 1]) end
  return out
end

sweep(KEYS[1], ARGV[5], ARGV[1], tonumber(ARGV[6]))

-- held_until is the lease expiry of the first ticket holding on budget key
-- bk among those expiring within HeldRetryAfter (5000 ms), else 0: when a
-- request refused because requests in flight hold the headroom may retry.
-- It looks at a bounded number of leases, however many are in flight.
local function held_until(bk, spent, limit)
  if spent >= limit then return 0 end
  local now = tonumber(ARGV[1])
  local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. int(now), int(now + 5000), 'WITHSCORES', 'LIMIT', 0, 64)
  for i = 1, #ids, 2 do
    local tk = ARGV[5] .. ids[i]
    local n = tonumber(redis.call('HGET', tk, 'n')) or 0
    for j = 1, n do
      if redis.call('HGET', tk, 'k' .. j) == bk then return tonumber(ids[i + 1]) end
    end
  end
  return 0
end

local worst = tonumber(ARGV[7])
local out = {1, nb}
local amounts, partials, remaining = {}, {}, {}
local a = 11
for j = 1, nb do
  local limit = tonumber(ARGV[a])
  local s = redis.call('HMGET', KEYS[2 + j], 'spent', 'reserved', 'partials')
  local spent, reserved, held = tonumber(s[1]) or 0, tonumber(s[2]) or 0, tonumber(s[3]) or 0
  local headroom = limit - spent - reserved
  if headroom <= 0 then
    return {2, j, spent, reserved, 0, held_until(KEYS[2 + j], spent, limit)}
  elseif worst <= headroom then
    amounts[j], partials[j] = worst, 0
  elseif held == 0 then
    amounts[j], partials[j] = headroom, 1
  else
    return {2, j, spent, reserved, 1, held_until(KEYS[2 + j], spent, limit)}
  end
  remaining[j] = limit - spent
  out[#out + 1] = amounts[j]
  out[#out + 1] = partials[j]
  out[#out + 1] = remaining[j]
  a = a + 2
end

local tokens = tonumber(ARGV[8])
local limiters = {}
for j = 1, nr do
  local limit, unit, w = tonumber(ARGV[a]), ARGV[a + 1], tonumber(ARGV[a + 2])
  local idx, e = tonumber(ARGV[a + 3]), tonumber(ARGV[a + 4])
  a = a + 5
  local cur, c, p = roll(KEYS[2 + nb + j], idx)
  if cur ~= idx then e = 0 end
  local est = c + p * (w - e) / w
  local cost = 1
  if unit == 't' then
    cost = tokens
    if not (est < limit) then return {3, j, c, p, cur} end
  elseif not (est + 1 <= limit) then
    return {3, j, c, p, cur}
  end
  limiters[j] = {cur, c + cost, p, w}
  out[2 + 3 * nb + j] = cur
end

-- Every check passed: apply everything.
local fields = {'n', int(nb)}
a = 11
for j = 1, nb do
  local k = KEYS[2 + j]
  redis.call('HINCRBY', k, 'reserved', int(amounts[j]))
  if partials[j] == 1 then redis.call('HINCRBY', k, 'partials', 1) end
  if tonumber(ARGV[a + 1]) > 0 then redis.call('PEXPIRE', k, ARGV[a + 1]) end
  a = a + 2
  fields[#fields + 1] = 'k' .. j
  fields[#fields + 1] = k
  fields[#fields + 1] = 'a' .. j
  fields[#fields + 1] = int(amounts[j])
  fields[#fields + 1] = 'p' .. j
  fields[#fields + 1] = int(partials[j])
  fields[#fields + 1] = 'r' .. j
  fields[#fields + 1] = int(remaining[j])
end
local counted = {}
for j = 1, nr do
  local k, l = KEYS[2 + nb + j], limiters[j]
  if not counted[k] then -- the same limiter twice on a path counts once
    counted[k] = true
    redis.call('HSET', k, 'index', int(l[1]), 'curr', int(l[2]), 'prev', int(l[3]))
    redis.call('PEXPIRE', k, int(2 * l[4]))
  end
end
redis.call('HSET', tkey, unpack(fields))
if tonumber(ARGV[4]) > 0 then redis.call('PEXPIRE', tkey, ARGV[4]) end
if tonumber(ARGV[3]) > 0 then redis.call('ZADD', KEYS[1], ARGV[3], ARGV[2]) end
return out
`

// redisSettleSource releases a ticket's reservations (if it still holds any),
// charges the cost to the budget keys of its admission periods and corrects
// its token charges. A settled marker makes a second call a no-op.
//
//	KEYS[1] leases zset, KEYS[2] ticket hash, KEYS[3] settled marker,
//	KEYS[4 .. 3+nb] budget hashes, KEYS[4+nb .. 3+nb+nt] limiter hashes
//	ARGV[1] ticket id, [2] cost, [3] marker TTL ms, [4] nb, [5] nt,
//	then nb × key TTL ms (0: none),
//	then nt × (current window index, charged window index, delta, window ms)
//
// Replies: {0} already settled; {1, after_1, …, after_nb} spent after.
const redisSettleSource = redisLuaPrelude + `
if redis.call('EXISTS', KEYS[3]) == 1 then return {0} end
redis.call('SET', KEYS[3], '1', 'PX', ARGV[3])
if redis.call('EXISTS', KEYS[2]) == 1 then release(KEYS[2]) end
redis.call('ZREM', KEYS[1], ARGV[1])

local nb, nt = tonumber(ARGV[4]), tonumber(ARGV[5])
local out = {1}
local a = 6
for j = 1, nb do
  local k = KEYS[3 + j]
  out[#out + 1] = redis.call('HINCRBY', k, 'spent', ARGV[2])
  if tonumber(ARGV[a]) > 0 and redis.call('PTTL', k) == -1 then redis.call('PEXPIRE', k, ARGV[a]) end
  a = a + 1
end
for j = 1, nt do
  local k = KEYS[3 + nb + j]
  local idx, win, delta, w = tonumber(ARGV[a]), tonumber(ARGV[a + 1]), tonumber(ARGV[a + 2]), tonumber(ARGV[a + 3])
  a = a + 4
  local cur, c, p = roll(k, idx)
  local apply = true
  if win == cur then
    c = math.max(0, c + delta)
  elseif win == cur - 1 then
    p = math.max(0, p + delta)
  else
    apply = false
  end
  if apply then
    redis.call('HSET', k, 'index', int(cur), 'curr', int(c), 'prev', int(p))
    redis.call('PEXPIRE', k, int(2 * w))
  end
end
return out
`

// redisRenewSource moves the lease of every listed ticket that is still
// live (in the zset with an expiry after now) to a new expiry and extends its
// ticket hash; expiry 0 removes the lease (the ticket no longer expires).
//
//	KEYS[1] leases zset, KEYS[2 .. 1+n] ticket hashes
//	ARGV[1] now ms, [2] expiry ms (0: none), [3] ticket TTL ms,
//	ARGV[4 .. 3+n] ticket ids
//
// Reply: how many leases were renewed.
const redisRenewSource = `
local now, exp, found = tonumber(ARGV[1]), tonumber(ARGV[2]), 0
for j = 4, #ARGV do
  local id = ARGV[j]
  local score = tonumber(redis.call('ZSCORE', KEYS[1], id))
  if score and score > now then
    found = found + 1
    if exp > 0 then
      redis.call('ZADD', KEYS[1], 'XX', ARGV[2], id)
      redis.call('PEXPIRE', KEYS[j - 2], ARGV[3])
    else
      redis.call('ZREM', KEYS[1], id)
      redis.call('PERSIST', KEYS[j - 2])
    end
  end
end
return found
`

// redisSweepSource releases one batch of expired leases.
//
//	KEYS[1] leases zset
//	ARGV[1] now ms, [2] ticket key prefix, [3] batch size
//
// Reply: how many were released (less than the batch: none left).
const redisSweepSource = redisLuaPrelude + `
return sweep(KEYS[1], ARGV[2], ARGV[1], tonumber(ARGV[3]))
`

var (
	redisAdmitScript  = redis.NewScript(redisAdmitSource)
	redisSettleScript = redis.NewScript(redisSettleSource)
	redisRenewScript  = redis.NewScript(redisRenewSource)
	redisSweepScript  = redis.NewScript(redisSweepSource)
)
