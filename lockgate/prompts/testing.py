"""Running a prompt's test cases against a gateway's `POST /v1/prompts/{name}`.

Each case is one HTTP call; its answer is judged by `cases.check_answer` and, where the prompt
has one, by the answered version's output schema in the local prompts folder.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp

from lockgate.prompts.cases import Answer, Case, check_answer, render_value
from lockgate.prompts.registry import PromptRegistry, PromptVersion

__all__ = ["CaseResult", "Runner", "Suite", "Unusable"]


@dataclass(frozen=True)
class Suite:
    """The cases of one prompt's tests.yaml, and the version reference they are run against."""

    name: str
    file: Path
    cases: Sequence[Case]
    version: str | None


@dataclass(frozen=True)
class CaseResult:
    prompt: str
    case: Case
    reasons: list[str]
    status: int | None = None
    version: str | None = None
    latency_ms: float = 0.0
    cost_usd: float | None = None
    request_id: str | None = None
    body: Any = None

    @property
    def passed(self) -> bool:
        return not self.reasons


class Unusable(Exception):
    """The gateway cannot run any case: unreachable, or it refused the credential."""


@dataclass
class Runner:
    url: str
    registry: PromptRegistry
    session: aiohttp.ClientSession
    slots: asyncio.Semaphore
    timeout_s: float
    progress: Callable[[int], None]
    """Called with the number of cases done after each one."""
    results: dict[tuple[str, str], CaseResult] = field(default_factory=dict)

    async def run(self, suite: Suite, case: Case) -> None:
        async with self.slots:
            result = await self._call(suite, case)
        self.results[suite.name, case.name] = result
        self.progress(len(self.results))

    async def _call(self, suite: Suite, case: Case) -> CaseResult:
        params = {} if suite.version is None else {"version": suite.version}
        url = f"{self.url}/v1/prompts/{quote(suite.name, safe='')}"
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        started = time.perf_counter()
        try:
            async with self.session.post(
                url, json=case.input, params=params, timeout=timeout
            ) as response:
                raw = await response.read()
        except aiohttp.ClientConnectorError as exc:
            raise Unusable(f"cannot reach the gateway at {self.url}: {exc.os_error}") from None
        except TimeoutError:
            return CaseResult(suite.name, case, [f"no answer within {self.timeout_s:g} s"])
        except aiohttp.ClientError as exc:
            return CaseResult(suite.name, case, [f"the request failed: {exc}"])
        latency_ms = (time.perf_counter() - started) * 1000
        if response.status == 401:
            raise Unusable(f"the gateway refused the key (HTTP 401): {_error_message(raw)}")
        headers = response.headers
        base = CaseResult(
            suite.name,
            case,
            [],
            status=response.status,
            version=headers.get("x-lockgate-prompt-version"),
            latency_ms=latency_ms,
            cost_usd=_float(headers.get("x-lockgate-cost-usd")),
            request_id=headers.get("x-request-id"),
        )
        try:
            body = json.loads(raw)
        except ValueError:
            text = raw.decode("utf-8", "replace")[:200]
            reason = f"HTTP {response.status}: the body is not JSON: {text!r}"
            return replace(base, reasons=[reason], body=text)
        if response.status != 200:
            return replace(base, reasons=_http_failure(response.status, body), body=body)
        return replace(base, reasons=self._judge(case, base, body), body=body)

    def _judge(self, case: Case, base: CaseResult, body: Any) -> list[str]:
        local = self._version(base.prompt, base.version)
        if case.schema_valid is not False and local is None:
            if base.version is None:
                return ["the answer has no x-lockgate-prompt-version: no schema to check it with"]
            return [
                f"cannot check the output schema: the gateway answered version {base.version}, "
                "which this prompts folder does not hold"
            ]
        violations = local.output_violations(body) if local and local.has_output else None
        answer = Answer(body, base.latency_ms, base.cost_usd, violations)
        return check_answer(case, answer, has_output_schema=local is not None and local.has_output)

    def _version(self, name: str, version: str | None) -> PromptVersion | None:
        for candidate in self.registry.versions(name):
            if candidate.version == version:
                return candidate
        return None


def _http_failure(status: int, body: Any) -> list[str]:
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return [f"HTTP {status}: {render_value(body, 300)}"]
    code = error.get("code") or error.get("type") or "error"
    violations = error.get("violations")
    if isinstance(violations, list) and violations:
        # The message repeats the first violations: list them all instead.
        reasons = [f"HTTP {status} {code}: the input is not valid"]
        reasons += [f"input: {violation}" for violation in violations]
    else:
        reasons = [f"HTTP {status} {code}: {error.get('message', '')}"]
    raw_output = error.get("raw_output")
    if isinstance(raw_output, str):
        reasons.append(f"raw output: {render_value(raw_output, 300)}")
    return reasons


def _error_message(raw: bytes) -> str:
    try:
        body = json.loads(raw)
        return str(body["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return raw.decode("utf-8", "replace")[:200]


def _float(text: str | None) -> float | None:
    try:
        return None if text is None else float(text)
    except ValueError:
        return None
