"""Budgets shared by every process and instance through one Redis.

Per scope and period there is a hash with `spent` and `held` (the sum of reservations), and a
sorted set of the reservations themselves, each member `id:micros` scored by its expiry (Redis
`TIME`), so the holds of a crashed process drop out of the sum. Reserve, settle and release are
one Lua script each, atomic across all the request's scopes. A counter met for the first time is
seeded from the durable records (`load`) with HSETNX, so processes racing to seed it cannot
count the spend twice; counters expire a day after their period ends (`total` ones after weeks
without use) and are seeded again if ever needed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime, timedelta

from redis.asyncio import Redis

from lockgate.limits.budgets import (
    HOLD_S,
    BudgetScope,
    BudgetUsage,
    Crossing,
    LoadSpend,
    Reservation,
    budget_exceeded,
    unique_scopes,
)
from lockgate.limits.lua import LuaScript
from lockgate.limits.periods import period_end, period_id

__all__ = ["RedisBudgetLedger"]

GRACE = timedelta(days=1)
"""How long a period's counters outlive it: late settlements still find them."""
TOTAL_IDLE = timedelta(days=35)
"""How long an unused `total` counter is kept before it is seeded again from the records."""
SEED_ATTEMPTS = 3

_PRELUDE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function int(x)
  return string.format('%.0f', x)
end
-- Expired holds leave the set and their amounts (after the member's last ':') the sum.
local function purge(account, holds, now)
  local expired = redis.call('ZRANGEBYSCORE', holds, '-inf', int(now))
  if #expired == 0 then return end
  local sum = 0
  for _, member in ipairs(expired) do sum = sum + tonumber(string.match(member, ':(%d+)$')) end
  redis.call('ZREMRANGEBYSCORE', holds, '-inf', int(now))
  if sum > 0 then redis.call('HINCRBY', account, 'held', int(-sum)) end
end
-- The spend so far, seeded when the counter does not exist; nil when it does not and no seed
-- was given: the caller loads one from the durable records and asks again.
local function spent(account, seed, ttl)
  if redis.call('HEXISTS', account, 'spent') == 1 then return true end
  if seed == '' then return nil end
  redis.call('HSETNX', account, 'spent', seed)
  redis.call('PEXPIRE', account, ttl)
  return true
end
"""

_RESERVE = (
    _PRELUDE
    + """
-- KEYS: per scope its account hash and its holds set.
-- ARGV: micros, member (id:micros), hold ms, then per scope limit, ttl ms, seed ('': unknown).
local now = now_ms()
local micros, hold_ms = tonumber(ARGV[1]), tonumber(ARGV[3])
local n = #KEYS / 2
local missing = {'missing'}
for i = 1, n do
  if not spent(KEYS[2*i-1], ARGV[3*i+3], ARGV[3*i+2]) then missing[#missing+1] = tostring(i) end
end
if #missing > 1 then return missing end
local out = {'ok'}
local refused = nil
for i = 1, n do
  local account, holds = KEYS[2*i-1], KEYS[2*i]
  purge(account, holds, now)
  local used = tonumber(redis.call('HGET', account, 'spent'))
  local held = tonumber(redis.call('HGET', account, 'held')) or 0
  local limit = tonumber(ARGV[3*i+1])
  out[#out+1] = int(used)
  out[#out+1] = int(held)
  if refused == nil and not (used < limit and used + held + micros <= limit) then refused = i end
end
if refused ~= nil then
  out[1] = 'refused'
  out[#out+1] = tostring(refused)
  return out
end
for i = 1, n do
  local ttl = tonumber(ARGV[3*i+2])
  redis.call('HINCRBY', KEYS[2*i-1], 'held', ARGV[1])
  redis.call('ZADD', KEYS[2*i], int(now + hold_ms), ARGV[2])
  redis.call('PEXPIRE', KEYS[2*i-1], ttl)
  redis.call('PEXPIRE', KEYS[2*i], math.max(ttl, hold_ms + 1000))
end
return out
"""
)

_SETTLE = (
    _PRELUDE
    + """
-- KEYS: per scope its account hash, its holds set, then one marker key per alert threshold.
-- ARGV: member, amount held, real cost, then per scope ttl ms, threshold count, thresholds.
local member, held, cost = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local out = {}
local k, a, scope = 1, 4, 0
while k <= #KEYS do
  scope = scope + 1
  local account, holds = KEYS[k], KEYS[k+1]
  local ttl, count = ARGV[a], tonumber(ARGV[a+1])
  local removed = redis.call('ZREM', holds, member)
  local before = tonumber(redis.call('HGET', account, 'spent'))
  -- A counter gone (its period long over) is left alone: the durable record has the cost.
  if before ~= nil then
    if removed == 1 and held > 0 then redis.call('HINCRBY', account, 'held', int(-held)) end
    local after = before
    if cost > 0 then after = redis.call('HINCRBY', account, 'spent', ARGV[3]) end
    redis.call('PEXPIRE', account, ttl)
    for j = 1, count do
      local threshold = tonumber(ARGV[a+1+j])
      if before < threshold and threshold <= after
          and redis.call('SET', KEYS[k+1+j], '1', 'NX', 'PX', ttl) then
        out[#out+1] = tostring(scope)
        out[#out+1] = tostring(j)
        out[#out+1] = int(after)
      end
    end
  end
  k = k + 2 + count
  a = a + 2 + count
end
return out
"""
)

_RELEASE = (
    _PRELUDE
    + """
-- KEYS: per scope its account hash and its holds set. ARGV: member, amount held.
local held = tonumber(ARGV[2])
for i = 1, #KEYS / 2 do
  local removed = redis.call('ZREM', KEYS[2*i], ARGV[1])
  if removed == 1 and held > 0 and redis.call('HEXISTS', KEYS[2*i-1], 'spent') == 1 then
    redis.call('HINCRBY', KEYS[2*i-1], 'held', int(-held))
  end
end
return {}
"""
)

_USAGE = (
    _PRELUDE
    + """
-- KEYS: account hash, holds set. ARGV: ttl ms, seed ('': unknown).
if not spent(KEYS[1], ARGV[2], ARGV[1]) then return {'missing', '1'} end
purge(KEYS[1], KEYS[2], now_ms())
return {'ok', redis.call('HGET', KEYS[1], 'spent'), redis.call('HGET', KEYS[1], 'held') or '0'}
"""
)


class RedisBudgetLedger:
    """Global budgets; the Redis client belongs to the caller, who closes it."""

    def __init__(
        self,
        client: Redis,
        prefix: str,
        load: LoadSpend,
        *,
        hold_s: float = HOLD_S,
        clock: Callable[[], float] = time.time,
    ) -> None:
        """`clock` (seconds since the epoch) decides the period; expiries use Redis's clock."""
        self._prefix = prefix
        self._load = load
        self._hold_ms = max(round(hold_s * 1000), 1)
        self._clock = clock
        self._reserve = LuaScript(client, _RESERVE)
        self._settle = LuaScript(client, _SETTLE)
        self._release = LuaScript(client, _RELEASE)
        self._usage = LuaScript(client, _USAGE)

    async def reserve(self, scopes: Sequence[BudgetScope], micros: int) -> Reservation:
        if micros < 0:
            raise ValueError(f"a reservation cannot be negative, got {micros}")
        unique = unique_scopes(scopes)
        when = self._now()
        periods = tuple(period_id(scope.period, when) for scope in unique)
        reservation = Reservation(uuid.uuid4().hex, unique, periods, micros)
        if not unique:
            return reservation
        keys = []
        for scope, period in zip(unique, periods, strict=True):
            keys += [self._account_key(scope, period), self._holds_key(scope, period)]

        def args(seeds: Sequence[str]) -> list[str | int]:
            values: list[str | int] = [micros, _member(reservation), self._hold_ms]
            for scope, seed in zip(unique, seeds, strict=True):
                values += [scope.limit_micros, self._ttl_ms(scope, when), seed]
            return values

        reply = await self._seeded(self._reserve, keys, args, unique, periods)
        if reply[0] == "refused":
            index = int(reply[-1]) - 1
            spent, held = int(reply[1 + 2 * index]), int(reply[2 + 2 * index])
            scope = unique[index]
            raise budget_exceeded(scope, spent, held, micros, period_end(scope.period, when))
        return reservation

    async def settle(self, reservation: Reservation, micros: int) -> list[Crossing]:
        if reservation.done:
            return []
        reservation.done = True
        if not reservation.scopes:
            return []
        when = self._now()
        keys: list[str] = []
        args: list[str | int] = [_member(reservation), reservation.micros, max(micros, 0)]
        for scope, period in zip(reservation.scopes, reservation.period_ids, strict=True):
            thresholds = scope.thresholds()
            keys += [self._account_key(scope, period), self._holds_key(scope, period)]
            keys += [self._marker_key(scope, period, fraction) for fraction, _ in thresholds]
            args += [self._ttl_ms(scope, when), len(thresholds)]
            args += [amount for _, amount in thresholds]
        reply = await self._settle(keys, args)
        crossings = []
        for i in range(0, len(reply), 3):
            index, threshold, spent = int(reply[i]) - 1, int(reply[i + 1]) - 1, int(reply[i + 2])
            scope = reservation.scopes[index]
            fraction = scope.thresholds()[threshold][0]
            period = reservation.period_ids[index]
            crossings.append(Crossing.of(scope, fraction, spent, period))
        return crossings

    async def release(self, reservation: Reservation) -> None:
        if reservation.done:
            return
        reservation.done = True
        if not reservation.scopes:
            return
        keys = []
        for scope, period in zip(reservation.scopes, reservation.period_ids, strict=True):
            keys += [self._account_key(scope, period), self._holds_key(scope, period)]
        await self._release(keys, [_member(reservation), reservation.micros])

    async def usage(self, scope: BudgetScope) -> BudgetUsage:
        when = self._now()
        period = period_id(scope.period, when)
        keys = [self._account_key(scope, period), self._holds_key(scope, period)]
        ttl = self._ttl_ms(scope, when)
        reply = await self._seeded(
            self._usage, keys, lambda seeds: [ttl, seeds[0]], (scope,), (period,)
        )
        return BudgetUsage(int(reply[1]), int(reply[2]), period)

    async def close(self) -> None:
        """Nothing to release: the client is shared and closed by its owner."""

    async def _seeded(
        self,
        script: LuaScript,
        keys: list[str],
        args: Callable[[Sequence[str]], list[str | int]],
        scopes: Sequence[BudgetScope],
        periods: Sequence[str],
    ) -> list[str]:
        """Run `script`; when it names counters that do not exist yet, load their spend and run
        it again with those seeds (two round trips, once per scope and period)."""
        seeds = [""] * len(scopes)
        for _ in range(SEED_ATTEMPTS):
            reply = await script(keys, args(seeds))
            if reply[0] != "missing":
                return reply
            missing = [int(index) - 1 for index in reply[1:]]
            loaded = await asyncio.gather(
                *(self._load(scopes[index].key, periods[index]) for index in missing)
            )
            for index, spent in zip(missing, loaded, strict=True):
                seeds[index] = str(spent)
        raise RuntimeError("budget counters kept vanishing while being seeded")

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self._clock(), UTC)

    def _ttl_ms(self, scope: BudgetScope, when: datetime) -> int:
        ends = period_end(scope.period, when)
        keep = TOTAL_IDLE if ends is None else ends - when + GRACE
        return max(round(keep.total_seconds() * 1000), self._hold_ms + 1000)

    def _account_key(self, scope: BudgetScope, period: str) -> str:
        return f"{self._prefix}budget:{scope.key}:{period}"

    def _holds_key(self, scope: BudgetScope, period: str) -> str:
        return f"{self._prefix}budget-holds:{scope.key}:{period}"

    def _marker_key(self, scope: BudgetScope, period: str, fraction: float) -> str:
        return f"{self._prefix}budget-alert:{scope.key}:{period}:{fraction!r}"


def _member(reservation: Reservation) -> str:
    """The holds-set member: the amount rides along so an expired hold can be subtracted."""
    return f"{reservation.id}:{reservation.micros}"
