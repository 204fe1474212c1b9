"""A second OS process acquiring against a shared Redis, for the cross-process tests.

    python -m tests.limits.rate_worker URL PREFIX ACQUIRES RPM

Prints "ready" once connected, waits for a line on stdin, fires ACQUIRES concurrent acquires
against one `key:shared` quota of RPM, and prints how many were granted.
"""

from __future__ import annotations

import asyncio
import sys

from lockgate.errors import RateLimited
from lockgate.limits import Quota
from lockgate.limits.redis_rate import RedisRateLimiter
from tests.limits.conftest import connect, warm


async def main(url: str, prefix: str, acquires: int, rpm: int) -> None:
    client = connect(url)
    await warm(client)
    limiter = RedisRateLimiter(client, prefix)
    quota = Quota("key:shared", "key 'shared'", rpm=rpm)
    await limiter.snapshot([quota])  # loads the scripts, so the burst is not the first call
    print("ready", flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
    results = await asyncio.gather(
        *(limiter.acquire([quota], 0) for _ in range(acquires)), return_exceptions=True
    )
    for result in results:
        if isinstance(result, BaseException) and not isinstance(result, RateLimited):
            raise result
    print(sum(not isinstance(result, BaseException) for result in results), flush=True)
    await client.aclose()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
