from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import pytest

from lockgate.auth.oidc import OidcVerifier
from lockgate.config.models import OidcIssuerConfig
from tests.auth.issuer import AUDIENCE, Issuer


class FakeClock:
    """Monotonic time that moves only when a test says so (cache ages, refetch intervals)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    running = await Issuer().start()
    yield running
    await running.close()


@pytest.fixture
async def http() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


MakeVerifier = Callable[..., OidcVerifier]


@pytest.fixture
async def make_verifier(
    http: aiohttp.ClientSession, clock: FakeClock
) -> AsyncIterator[MakeVerifier]:
    """`make_verifier(issuer_url, **config)`: a verifier trusting one issuer; closed at teardown.

    Options of the verifier itself (min_refetch_s, fetch_timeout_s) may be passed too.
    """
    made: list[OidcVerifier] = []

    def make(url: str, **fields: Any) -> OidcVerifier:
        options = {
            name: fields.pop(name)
            for name in ("min_refetch_s", "fetch_timeout_s")
            if name in fields
        }
        config = OidcIssuerConfig.model_validate({"issuer": url, "audience": AUDIENCE, **fields})
        verifier = OidcVerifier([config], http, clock=clock, **options)
        made.append(verifier)
        return verifier

    yield make
    for verifier in made:
        await verifier.close()
