"""The Lua scripts behind :mod:`ceso.locks`; each runs atomically in Redis.

A lock key holds ``<fencing token>:<holder>``, a semaphore ZSET holds members
of the same form scored by their expiry (Redis server time, in ms). The token
makes every acquisition's value unique, so a stale run of a job (same job id,
earlier attempt) can never renew or delete the lock of the run that replaced it.
"""

from __future__ import annotations

__all__ = [
    "LOCK_ACQUIRE",
    "LOCK_RELEASE",
    "LOCK_RENEW",
    "SEMAPHORE_ACQUIRE",
    "SEMAPHORE_RELEASE",
    "SEMAPHORE_RENEW",
]

#: KEYS[1..n] lock keys, KEYS[n+1..2n] their fence counters; ARGV holder, ttl ms.
#: -> {1, token1, ..., tokenN} or {0, index of a held key, its value}.
LOCK_ACQUIRE = """
local n = #KEYS / 2
for i = 1, n do
  local v = redis.call('GET', KEYS[i])
  if v then return {0, i, v} end
end
local out = {1}
for i = 1, n do
  local t = redis.call('INCR', KEYS[n + i])
  redis.call('SET', KEYS[i], t .. ':' .. ARGV[1], 'PX', ARGV[2])
  out[i + 1] = t
end
return out
"""

#: KEYS lock keys; ARGV ttl ms, then the value each key must still hold.
#: -> {0} when all were extended, else {index of the first lost key, its value or nil}
#: and nothing is extended.
LOCK_RENEW = """
for i = 1, #KEYS do
  local v = redis.call('GET', KEYS[i])
  if v ~= ARGV[i + 1] then return {i, v} end
end
for i = 1, #KEYS do
  redis.call('PEXPIRE', KEYS[i], ARGV[1])
end
return {0}
"""

#: KEYS lock keys; ARGV the value each must hold to be deleted. -> number deleted.
LOCK_RELEASE = """
local n = 0
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i] then
    redis.call('DEL', KEYS[i])
    n = n + 1
  end
end
return n
"""

# Server time keeps every worker's view of "expired" the same, whatever their clocks say.
_NOW = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
"""

# The ZSET itself expires no earlier than its newest member, so an abandoned one goes away.
_KEEP_KEY = """
if redis.call('PTTL', KEYS[1]) < ttl then redis.call('PEXPIRE', KEYS[1], ttl) end
"""

#: KEYS[1] semaphore ZSET, KEYS[2] fence counter; ARGV holder, ttl ms, limit.
#: -> {1, token} | {0, members...} (full) | {2, member} (this holder already has a slot).
SEMAPHORE_ACQUIRE = (
    _NOW
    + """
local ttl = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local members = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, m in ipairs(members) do
  local p = string.find(m, ':', 1, true)
  if p and string.sub(m, p + 1) == ARGV[1] then return {2, m} end
end
if #members >= tonumber(ARGV[3]) then
  local out = {0}
  for i, m in ipairs(members) do out[i + 1] = m end
  return out
end
local t = redis.call('INCR', KEYS[2])
redis.call('ZADD', KEYS[1], now + ttl, t .. ':' .. ARGV[1])
"""
    + _KEEP_KEY
    + """
return {1, t}
"""
)

#: KEYS[1] semaphore ZSET; ARGV ttl ms, member. -> 1 extended, 0 lost (expired or removed).
#: An expired member is removed here too: its slot may already have been given away.
SEMAPHORE_RENEW = (
    _NOW
    + """
local ttl = tonumber(ARGV[1])
local score = redis.call('ZSCORE', KEYS[1], ARGV[2])
if not score then return 0 end
if tonumber(score) <= now then
  redis.call('ZREM', KEYS[1], ARGV[2])
  return 0
end
redis.call('ZADD', KEYS[1], 'XX', now + ttl, ARGV[2])
"""
    + _KEEP_KEY
    + """
return 1
"""
)

#: KEYS[1] semaphore ZSET; ARGV member. -> 1 removed, 0 it was not there.
SEMAPHORE_RELEASE = """
return redis.call('ZREM', KEYS[1], ARGV[1])
"""
