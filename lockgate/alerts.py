"""Budget alerts: a log event and a POST to each configured webhook, once per threshold.

The JSON carries the facts as fields and a human sentence in `text`, which is what a Slack
incoming webhook displays, so one format serves both.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

from lockgate.config.models import AlertConfig
from lockgate.limits import Crossing
from lockgate.transport.proxies import aiohttp_proxy

if TYPE_CHECKING:
    import aiohttp

    from lockgate.transport.proxies import Proxies

__all__ = ["AlertSender"]

log = logging.getLogger("lockgate.alerts")

TIMEOUT_S = 5.0


class AlertSender:
    """Posts budget alerts; `session` is called only when there is a webhook to post to."""

    def __init__(
        self,
        alerts: Sequence[AlertConfig],
        session: Callable[[], aiohttp.ClientSession],
        proxies: Proxies | None = None,
    ) -> None:
        self._urls = [alert.url.get_secret_value() for alert in alerts]
        self._session = session
        self._proxies = proxies
        self._tasks: set[asyncio.Task[None]] = set()

    def budget_crossed(self, crossing: Crossing) -> None:
        spent = crossing.spent_micros / 1_000_000
        limit = crossing.limit_micros / 1_000_000
        text = (
            f"Lockgate budget alert: {crossing.label} has used {crossing.fraction:.0%} of its "
            f"budget (${spent:,.2f} of ${limit:,.2f}, period {crossing.period})"
        )
        log.warning("%s", text)
        payload = {
            "text": text,
            "event": "budget_threshold",
            "scope": crossing.scope,
            "threshold": crossing.fraction,
            "spent_usd": spent,
            "budget_usd": limit,
            "period": crossing.period,
        }
        for url in self._urls:
            task = asyncio.get_running_loop().create_task(self._post(url, payload))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _post(self, url: str, payload: dict[str, object]) -> None:
        import aiohttp  # loaded with the session, which a gateway without webhooks never makes

        try:
            async with self._session().post(
                url,
                json=payload,
                timeout=aiohttp.ClientTimeout(total=TIMEOUT_S),
                **aiohttp_proxy(self._proxies, url),
            ) as response:
                if response.status >= 400:
                    log.warning("alert webhook answered %d", response.status)
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("alert webhook failed: %s", type(exc).__name__)

    async def close(self) -> None:
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
