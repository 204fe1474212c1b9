"""A small client for a Lockgate gateway, as the `lockgate ci` jobs call it.

Two calls: a prompt API (`POST /v1/prompts/{name}?version=REF`, the answer's JSON and the
version that answered) and the gateway-side review (`POST /gitlab/merge-requests/review`, where
the gateway posts with its own GitLab token). The credential (an API key, or a GitLab CI ID token)
is sent as a Bearer token and never appears in an error message.

Busy answers (429, 503, 504) and connection failures are retried a few times, waiting what
`Retry-After` asks (at most `MAX_WAIT_S`); anything else is a `GatewayCallError` at once.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final
from urllib.parse import quote

import aiohttp

from lockgate import __version__

__all__ = ["GatewayCallError", "GatewayClient", "PromptAnswer", "split_reference"]

USER_AGENT: Final = f"lockgate-ci/{__version__}"
RETRY_STATUSES: Final = frozenset({429, 503, 504})
ATTEMPTS: Final = 3
MAX_WAIT_S: Final = 30.0
MAX_DETAIL_CHARS: Final = 500


class GatewayCallError(Exception):
    """A gateway call failed: `status` is None when the gateway was not reached."""

    def __init__(self, message: str, status: int | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.code = code


@dataclass(frozen=True, slots=True)
class PromptAnswer:
    body: Any
    """The prompt's validated JSON (`{"text": ...}` for a free-text prompt)."""
    version: str | None
    """`x-lockgate-prompt-version`: the version that answered."""
    request_id: str | None = None
    cost_usd: float | None = None


def split_reference(reference: str) -> tuple[str, str | None]:
    """`code-review@^1` as ("code-review", "^1"); no `@` means the default version."""
    name, at, version = reference.strip().partition("@")
    if not name or (at and not version):
        raise ValueError(f"{reference!r} is not a prompt reference like code-review@^1")
    return name, version or None


class GatewayClient:
    """Calls to one gateway; use as `async with GatewayClient(url, credential) as gateway:`."""

    def __init__(self, url: str, credential: str | None, *, timeout_s: float = 300.0) -> None:
        self.url = url.rstrip("/")
        self._credential = credential
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> GatewayClient:
        headers = {"user-agent": USER_AGENT, "accept": "application/json"}
        if self._credential:
            headers["authorization"] = f"Bearer {self._credential}"
        self._session = aiohttp.ClientSession(headers=headers, timeout=self._timeout)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def prompt(self, reference: str, body: Mapping[str, object]) -> PromptAnswer:
        """Call prompt `reference` (`name` or `name@version`) with `body` as its input."""
        name, version = split_reference(reference)
        query = {} if version is None else {"version": version}
        path = f"/v1/prompts/{quote(name, safe='')}"
        data, headers = await self._post(path, body, query, f"prompt {reference}")
        cost = headers.get("x-lockgate-cost-usd")
        return PromptAnswer(
            body=data,
            version=headers.get("x-lockgate-prompt-version"),
            request_id=headers.get("x-request-id"),
            cost_usd=_float(cost),
        )

    async def review_merge_request(
        self, project: str | int, iid: int, prompt: str | None = None
    ) -> Any:
        """Have the gateway review and post merge request `project`!`iid` (its JSON answer)."""
        body: dict[str, object] = {"project": project, "merge_request_iid": iid}
        if prompt is not None:
            body["prompt"] = prompt
        data, _ = await self._post(
            "/gitlab/merge-requests/review", body, {}, f"review of {project}!{iid}"
        )
        return data

    async def _post(
        self, path: str, body: Mapping[str, object], query: Mapping[str, str], what: str
    ) -> tuple[Any, Mapping[str, str]]:
        if self._session is None:
            raise RuntimeError("GatewayClient is used outside `async with`")
        url = f"{self.url}{path}"
        for attempt in range(1, ATTEMPTS + 1):
            try:
                async with self._session.post(url, json=dict(body), params=query) as answer:
                    text = await answer.text()
                    headers = {k.lower(): v for k, v in answer.headers.items()}
                    status = answer.status
            except (aiohttp.ClientError, TimeoutError) as exc:
                if attempt == ATTEMPTS:
                    reason = str(exc) or type(exc).__name__
                    raise GatewayCallError(
                        f"{what}: cannot reach the gateway at {self.url} ({reason})"
                    ) from None
                await asyncio.sleep(2**attempt)
                continue
            if status in RETRY_STATUSES and attempt < ATTEMPTS:
                await asyncio.sleep(_wait(headers.get("retry-after"), attempt))
                continue
            data = _json(text)
            if status >= 400:
                raise _error(what, status, data, text)
            if data is None:
                raise GatewayCallError(f"{what}: the gateway's answer is not JSON", status)
            return data, headers
        raise AssertionError("unreachable")


def _error(what: str, status: int, data: Any, text: str) -> GatewayCallError:
    error = data.get("error") if isinstance(data, dict) else None
    code = None
    if isinstance(error, dict):
        code = error.get("code") if isinstance(error.get("code"), str) else None
        detail = str(error.get("message") or "")
        violations = error.get("violations")
        if isinstance(violations, list) and violations:
            detail += " (" + "; ".join(str(v) for v in violations[:5]) + ")"
    else:
        detail = text.strip()
    hint = {
        401: "the gateway refused the credential (LOCKGATE_API_KEY or LOCKGATE_ID_TOKEN)",
        403: "the credential may not do this",
        404: "not found on this gateway",
    }.get(status)
    message = f"{what}: HTTP {status}"
    if hint:
        message += f", {hint}"
    if detail:
        message += f": {detail[:MAX_DETAIL_CHARS]}"
    return GatewayCallError(message, status, code)


def _json(text: str) -> Any:
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None


def _wait(retry_after: str | None, attempt: int) -> float:
    try:
        seconds = float(retry_after) if retry_after else 2.0**attempt
    except ValueError:
        seconds = 2.0**attempt
    return min(max(seconds, 0.0), MAX_WAIT_S)


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None
