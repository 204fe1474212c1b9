"""Budgets, the same behaviour from both backends."""

from __future__ import annotations

import asyncio
import random

import pytest

from lockgate.config.models import BudgetConfig
from lockgate.errors import BudgetExceeded
from lockgate.limits import BudgetScope, Reservation
from lockgate.limits.budgets import format_usd
from tests.limits.conftest import Rig

CENT = 10_000
DOLLAR = 1_000_000


def key_budget(limit: int = DOLLAR, *alert_at: float) -> BudgetScope:
    return BudgetScope("key:ci-bot", "key 'ci-bot'", limit, "month", alert_at)


TEAM = BudgetScope("team:platform", "team 'platform'", 5 * DOLLAR, "month")


async def test_concurrent_reservations_never_overshoot(rig: Rig) -> None:
    ledger = rig.ledger()
    budget = key_budget()

    results = await asyncio.gather(
        *(ledger.reserve([budget], CENT) for _ in range(200)), return_exceptions=True
    )

    held = [result for result in results if isinstance(result, Reservation)]
    refused = [result for result in results if isinstance(result, BudgetExceeded)]
    assert len(held) == 100
    assert len(refused) == 100
    assert refused[0].status == 429
    assert refused[0].code == "budget_exceeded"
    assert refused[0].headers == {"x-should-retry": "false"}
    assert await ledger.usage(budget) == (0, DOLLAR, "2026-11")

    costs = random.Random(7)
    await asyncio.gather(
        *(ledger.settle(reservation, costs.randint(0, CENT)) for reservation in held)
    )

    spent, reserved, _ = await ledger.usage(budget)
    assert 0 < spent <= DOLLAR
    assert reserved == 0


async def test_settling_below_the_estimate_frees_room(rig: Rig) -> None:
    ledger = rig.ledger()
    budget = key_budget()
    first = await ledger.reserve([budget], 60 * CENT)
    with pytest.raises(BudgetExceeded):
        await ledger.reserve([budget], 50 * CENT)

    await ledger.settle(first, 10 * CENT)

    second = await ledger.reserve([budget], 90 * CENT)
    assert await ledger.usage(budget) == (10 * CENT, 90 * CENT, "2026-11")
    with pytest.raises(BudgetExceeded) as refused:
        await ledger.reserve([budget], 1)
    assert refused.value.message == (
        "Budget of $1.00 per month for key 'ci-bot' is spent ($0.10 used, $0.90 held by requests "
        "in flight); it resets at 2026-12-01T00:00:00Z"
    )
    await ledger.settle(second, 90 * CENT)
    with pytest.raises(BudgetExceeded, match=r"is spent \(\$1\.00 used\)"):
        await ledger.reserve([budget], 0)  # a spent budget admits not even a free request


async def test_release_gives_everything_back_once(rig: Rig) -> None:
    ledger = rig.ledger()
    budget = key_budget()
    reservation = await ledger.reserve([budget, TEAM], DOLLAR)

    await ledger.release(reservation)
    await ledger.release(reservation)
    assert await ledger.settle(reservation, DOLLAR) == []  # already done: nothing is spent

    assert await ledger.usage(budget) == (0, 0, "2026-11")
    assert await ledger.usage(TEAM) == (0, 0, "2026-11")
    again = await ledger.reserve([budget], DOLLAR)
    await ledger.settle(again, DOLLAR)
    await ledger.settle(again, DOLLAR)
    assert await ledger.usage(budget) == (DOLLAR, 0, "2026-11")


async def test_one_refusing_scope_holds_nothing_anywhere(rig: Rig) -> None:
    ledger = rig.ledger()
    team = BudgetScope("team:platform", "team 'platform'", 5 * DOLLAR, "week")
    rig.records.spent[("team:platform", "2026-W48")] = 4_990_000
    generous = key_budget(100 * DOLLAR)

    with pytest.raises(BudgetExceeded) as refused:
        await ledger.reserve([generous, team], 2 * CENT)

    assert refused.value.message == (
        "Budget of $5.00 per week for team 'platform' has no room for this request "
        "($4.99 used, $0.02 estimated for this request); it resets at 2026-11-30T00:00:00Z"
    )
    assert await ledger.usage(generous) == (0, 0, "2026-11")
    assert await ledger.usage(team) == (4_990_000, 0, "2026-W48")


async def test_spend_already_recorded_counts_and_is_loaded_once(rig: Rig) -> None:
    rig.records.spent[("key:ci-bot", "2026-11")] = 95 * CENT
    rig.records.delay_s = 0.01  # so the first requests all wait on the same load
    ledger = rig.ledger()
    budget = key_budget()

    results = await asyncio.gather(
        *(ledger.reserve([budget], 2 * CENT) for _ in range(5)), return_exceptions=True
    )

    assert sum(isinstance(result, Reservation) for result in results) == 2
    assert await ledger.usage(budget) == (95 * CENT, 4 * CENT, "2026-11")
    if rig.exact:
        assert rig.records.calls == [("key:ci-bot", "2026-11")]
    else:  # each request that found no counter loaded; one seed won
        assert set(rig.records.calls) == {("key:ci-bot", "2026-11")}


async def test_a_new_period_starts_from_its_own_recorded_spend(rig: Rig) -> None:
    ledger = rig.ledger()
    budget = key_budget()
    reservation = await ledger.reserve([budget], DOLLAR)
    await ledger.settle(reservation, DOLLAR)
    with pytest.raises(BudgetExceeded):
        await ledger.reserve([budget], CENT)
    rig.records.spent[("key:ci-bot", "2026-12")] = 3 * CENT

    rig.clock.advance(4 * 86400)  # into December

    assert await ledger.usage(budget) == (3 * CENT, 0, "2026-12")
    await ledger.reserve([budget], 97 * CENT)
    assert ("key:ci-bot", "2026-12") in rig.records.calls


async def test_alerts_fire_once_per_threshold_and_period(rig: Rig) -> None:
    ledger = rig.ledger()
    budget = key_budget(DOLLAR, 0.5, 0.8, 0.9)

    async def spend(micros: int) -> list[tuple[float, int]]:
        reservation = await ledger.reserve([budget], micros)
        crossings = await ledger.settle(reservation, micros)
        return [(crossing.fraction, crossing.spent_micros) for crossing in crossings]

    assert await spend(30 * CENT) == []
    assert await spend(30 * CENT) == [(0.5, 60 * CENT)]
    assert await spend(19 * CENT) == []
    assert await spend(CENT) == [(0.8, 80 * CENT)]  # exactly at the threshold
    assert await spend(5 * CENT) == []
    reservation = await ledger.reserve([budget], 15 * CENT)
    [crossing] = await ledger.settle(reservation, 15 * CENT)
    assert crossing.scope == "key:ci-bot"
    assert crossing.label == "key 'ci-bot'"
    assert (crossing.fraction, crossing.spent_micros, crossing.limit_micros) == (
        0.9,
        DOLLAR,
        DOLLAR,
    )
    assert crossing.period == "2026-11"


async def test_alerts_fire_again_in_the_next_period(rig: Rig) -> None:
    ledger = rig.ledger()
    budget = BudgetScope("key:ci-bot", "key 'ci-bot'", DOLLAR, "day", (0.5,))
    today = await ledger.reserve([budget], 60 * CENT)
    assert [c.period for c in await ledger.settle(today, 60 * CENT)] == ["2026-11-27"]

    rig.clock.advance(86400)

    tomorrow = await ledger.reserve([budget], 60 * CENT)
    assert [c.period for c in await ledger.settle(tomorrow, 60 * CENT)] == ["2026-11-28"]


async def test_one_settlement_can_cross_several_thresholds(rig: Rig) -> None:
    ledger = rig.ledger()
    budget = key_budget(DOLLAR, 0.5, 0.8)
    reservation = await ledger.reserve([budget, TEAM], 90 * CENT)

    crossings = await ledger.settle(reservation, 85 * CENT)

    assert [(crossing.scope, crossing.fraction) for crossing in crossings] == [
        ("key:ci-bot", 0.5),
        ("key:ci-bot", 0.8),
    ]


async def test_spend_already_past_a_threshold_does_not_alert_again(rig: Rig) -> None:
    rig.records.spent[("key:ci-bot", "2026-11")] = 60 * CENT
    ledger = rig.ledger()
    budget = key_budget(DOLLAR, 0.5, 0.8)
    reservation = await ledger.reserve([budget], 10 * CENT)
    assert await ledger.settle(reservation, 10 * CENT) == []


async def test_holds_of_a_lost_reservation_expire(rig: Rig) -> None:
    ledger = rig.ledger(hold_s=0.2)
    budget = key_budget()
    lost = await ledger.reserve([budget], 80 * CENT)  # never settled, as if its process died
    with pytest.raises(BudgetExceeded):
        await ledger.reserve([budget], 30 * CENT)

    await rig.wait(0.3)

    fresh = await ledger.reserve([budget], 30 * CENT)
    assert await ledger.usage(budget) == (0, 30 * CENT, "2026-11")
    await ledger.settle(lost, 20 * CENT)  # a late settle still counts the cost, once
    assert await ledger.usage(budget) == (20 * CENT, 30 * CENT, "2026-11")
    await ledger.release(fresh)
    assert await ledger.usage(budget) == (20 * CENT, 0, "2026-11")


async def test_reservation_names_each_scope_period(rig: Rig) -> None:
    ledger = rig.ledger()
    weekly = BudgetScope("team:platform", "team 'platform'", DOLLAR, "week")
    reservation = await ledger.reserve([key_budget(), weekly, key_budget()], CENT)
    assert reservation.periods() == (("key:ci-bot", "2026-11"), ("team:platform", "2026-W48"))
    await ledger.release(reservation)
    await ledger.close()


def test_scopes_from_config_count_in_micro_dollars() -> None:
    config = BudgetConfig(usd=0.3, period="day", alert_at=[0.5, 0.8])
    scope = BudgetScope.of("team:x", "team 'x'", config)
    assert scope.limit_micros == 300_000
    assert scope.thresholds() == ((0.5, 150_000), (0.8, 240_000))
    assert format_usd(4_990_000) == "$4.99"
    assert format_usd(1_234_567_890_000) == "$1,234,567.89"
    assert format_usd(1_234) == "$0.001234"
