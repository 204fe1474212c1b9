"""Rate limits shared by every process and instance through one Redis.

Each acquire is one Lua script over all of the request's quotas, so the check and the charge are
atomic across processes and all-or-nothing across quotas; the clock is Redis's own `TIME`, one
for every instance. Per quota there are two keys: a hash with the request and token buckets and
their timestamp, which expires once the buckets would be full again, and a sorted set of the
leases in flight scored by their expiry, so a crashed worker's slots free themselves.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from redis.asyncio import Redis

from lockgate.limits.buckets import Levels
from lockgate.limits.lua import LuaScript
from lockgate.limits.quotas import LEASE_S, Grant, Quota, QuotaState, active_quotas, quota_state
from lockgate.limits.verdict import grant_headers, refusal, too_large

__all__ = ["RedisRateLimiter"]

_PRELUDE = """
local function clock()
  local t = redis.call('TIME')
  return tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local function fmt(x)
  if x == nil then return '' end
  return string.format('%.17g', x)
end
local function refill(level, limit, elapsed)
  if limit <= 0 then return nil end
  if level == nil then return limit end
  return math.min(limit, level + elapsed * limit / 60)
end
local function levels(bucket, rpm, tpm, now)
  local state = redis.call('HMGET', bucket, 'r', 't', 'at')
  local elapsed = 0
  local at = tonumber(state[3])
  if at ~= nil then elapsed = math.max(0, now - at) end
  return refill(tonumber(state[1]), rpm, elapsed), refill(tonumber(state[2]), tpm, elapsed)
end
local function store(bucket, r, tk, rpm, tpm, now)
  local full_in = 0
  if r ~= nil then full_in = math.max(full_in, (rpm - r) * 60 / rpm) end
  if tk ~= nil then full_in = math.max(full_in, (tpm - tk) * 60 / tpm) end
  redis.call('HSET', bucket, 'r', fmt(r), 't', fmt(tk), 'at', fmt(now))
  redis.call('PEXPIRE', bucket, math.ceil(full_in * 1000) + 1000)
end
"""

_ACQUIRE = (
    _PRELUDE
    + """
-- KEYS: per quota its bucket hash and its lease set.
-- ARGV: tokens, lease id, lease seconds, then per quota rpm, tpm, parallel (0: no limit).
local now = clock()
local tokens = tonumber(ARGV[1])
local lease, lease_s = ARGV[2], tonumber(ARGV[3])
local n = #KEYS / 2
local r, tk, busy = {}, {}, {}
local ok = true
for i = 1, n do
  local rpm, tpm, par = tonumber(ARGV[3*i+1]), tonumber(ARGV[3*i+2]), tonumber(ARGV[3*i+3])
  r[i], tk[i] = levels(KEYS[2*i-1], rpm, tpm, now)
  if par > 0 then
    redis.call('ZREMRANGEBYSCORE', KEYS[2*i], '-inf', fmt(now))
    busy[i] = redis.call('ZCARD', KEYS[2*i])
    if busy[i] >= par then ok = false end
  end
  if r[i] ~= nil and r[i] < 1 then ok = false end
  if tk[i] ~= nil and tk[i] < tokens then ok = false end
end
if ok then
  for i = 1, n do
    local rpm, tpm, par = tonumber(ARGV[3*i+1]), tonumber(ARGV[3*i+2]), tonumber(ARGV[3*i+3])
    if r[i] ~= nil then r[i] = r[i] - 1 end
    if tk[i] ~= nil then tk[i] = tk[i] - tokens end
    if rpm > 0 or tpm > 0 then store(KEYS[2*i-1], r[i], tk[i], rpm, tpm, now) end
    if par > 0 then
      redis.call('ZADD', KEYS[2*i], fmt(now + lease_s), lease)
      redis.call('PEXPIRE', KEYS[2*i], math.ceil(lease_s * 1000) + 1000)
      busy[i] = busy[i] + 1
    end
  end
end
local out = {ok and '1' or '0'}
for i = 1, n do
  out[#out+1] = fmt(r[i])
  out[#out+1] = fmt(tk[i])
  out[#out+1] = busy[i] and tostring(busy[i]) or ''
end
return out
"""
)

_SETTLE = (
    _PRELUDE
    + """
-- KEYS: per quota its bucket hash and its lease set.
-- ARGV: tokens used beyond the charge (negative: fewer), lease id, then per quota rpm, tpm.
local now = clock()
local excess = tonumber(ARGV[1])
local lease = ARGV[2]
for i = 1, #KEYS / 2 do
  local rpm, tpm = tonumber(ARGV[2*i+1]), tonumber(ARGV[2*i+2])
  if tpm > 0 and excess ~= 0 then
    local r, tk = levels(KEYS[2*i-1], rpm, tpm, now)
    store(KEYS[2*i-1], r, math.min(tpm, tk - excess), rpm, tpm, now)
  end
  redis.call('ZREM', KEYS[2*i], lease)
end
return {}
"""
)

_SNAPSHOT = (
    _PRELUDE
    + """
-- KEYS and ARGV as settle's, without the first two arguments; changes nothing.
local now = clock()
local out = {}
for i = 1, #KEYS / 2 do
  local rpm, tpm, par = tonumber(ARGV[3*i-2]), tonumber(ARGV[3*i-1]), tonumber(ARGV[3*i])
  local r, tk = levels(KEYS[2*i-1], rpm, tpm, now)
  local busy = ''
  if par > 0 then busy = tostring(redis.call('ZCOUNT', KEYS[2*i], '(' .. fmt(now), '+inf')) end
  out[#out+1] = fmt(r)
  out[#out+1] = fmt(tk)
  out[#out+1] = busy
end
return out
"""
)


class RedisRateLimiter:
    """Global rate limits; the Redis client belongs to the caller, who closes it."""

    def __init__(self, client: Redis, prefix: str, *, lease_s: float = LEASE_S) -> None:
        self._prefix = prefix
        self._lease_s = lease_s
        self._acquire = LuaScript(client, _ACQUIRE)
        self._settle = LuaScript(client, _SETTLE)
        self._snapshot = LuaScript(client, _SNAPSHOT)

    async def acquire(self, quotas: Sequence[Quota], tokens: int) -> Grant:
        active = active_quotas(quotas)
        tokens = max(tokens, 0)
        lease = uuid.uuid4().hex
        if not active:
            return Grant(lease, active, tokens, [])
        error = too_large(active, tokens)
        if error is not None:
            raise error
        args: list[str | int] = [tokens, lease, repr(self._lease_s)]
        for quota in active:
            args += [quota.rpm or 0, quota.tpm or 0, quota.parallel or 0]
        reply = await self._acquire(self._keys(active), args)
        levels = _levels(reply[1:])
        if reply[0] != "1":
            raise refusal(active, levels, tokens) or _disagreement(active)
        return Grant(lease, active, tokens, grant_headers(active, levels))

    async def settle(self, grant: Grant, tokens: int) -> None:
        if grant.settled:
            return
        grant.settled = True
        excess = max(tokens, 0) - grant.tokens
        touched = tuple(
            quota
            for quota in grant.quotas
            if quota.parallel is not None or (excess and quota.tpm is not None)
        )
        if not touched:
            return
        args: list[str | int] = [excess, grant.lease]
        for quota in touched:
            args += [quota.rpm or 0, quota.tpm or 0]
        await self._settle(self._keys(touched), args)

    async def snapshot(self, quotas: Sequence[Quota]) -> list[QuotaState]:
        if not quotas:
            return []
        args: list[str | int] = []
        for quota in quotas:
            args += [quota.rpm or 0, quota.tpm or 0, quota.parallel or 0]
        levels = _levels(await self._snapshot(self._keys(quotas), args))
        return [quota_state(quota, level) for quota, level in zip(quotas, levels, strict=True)]

    async def close(self) -> None:
        """Nothing to release: the client is shared and closed by its owner."""

    def _keys(self, quotas: Sequence[Quota]) -> list[str]:
        keys = []
        for quota in quotas:
            keys += [f"{self._prefix}rl:bucket:{quota.key}", f"{self._prefix}rl:leases:{quota.key}"]
        return keys


def _levels(fields: Sequence[str]) -> list[Levels]:
    return [
        Levels(
            float(fields[i]) if fields[i] else None,
            float(fields[i + 1]) if fields[i + 1] else None,
            int(fields[i + 2]) if fields[i + 2] else None,
        )
        for i in range(0, len(fields), 3)
    ]


def _disagreement(quotas: Sequence[Quota]) -> RuntimeError:
    keys = ", ".join(quota.key for quota in quotas)
    return RuntimeError(f"the rate-limit script refused {keys} but its counters allow the request")
