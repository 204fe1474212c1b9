"""The upstream client under test, closed after each test."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from lockgate.transport.client import UpstreamClient


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    client = UpstreamClient(connect_timeout_s=2)
    yield client
    await client.close()
