"""The simulator speaking Gemini: credentials, directives, stream faults and strict parsing."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest

from lockgate.simulate.server import RunningSimulator
from tests.simulate.gemini_helpers import HELLO, KEY, VERTEX, gemini_url, post, sse


async def test_error_after_sends_an_in_band_error_event(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    url = gemini_url(sim, "g", "streamGenerateContent?alt=sse")
    events = await sse(http, url, {**HELLO, "simulate": {"tokens": 6, "error_after": 2}})
    assert len(events) == 3
    assert all("finishReason" not in e["candidates"][0] for e in events[:2])
    assert events[-1] == {
        "error": {
            "code": 500,
            "message": "Simulated stream error after 2 chunks.",
            "status": "INTERNAL",
        }
    }


async def test_truncate_after_cuts_the_connection(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    url = gemini_url(sim, "g", "streamGenerateContent?alt=sse")
    seen: list[bytes] = []
    with pytest.raises(aiohttp.ClientPayloadError):
        async with http.post(
            url, json=HELLO, headers={**KEY, "x-simulate": "truncate_after=2"}
        ) as resp:
            async for line in resp.content:
                seen.append(line)
    assert sum(line.startswith(b"data: ") for line in seen) == 2


@pytest.mark.parametrize(
    ("path", "headers", "status", "google_status"),
    [
        ("/v1beta/models/g:generateContent", {}, 403, "PERMISSION_DENIED"),
        (f"{VERTEX}/g:generateContent", {}, 401, "UNAUTHENTICATED"),
        ("/v1beta/models/g:generateContent?key=AIza-query", {}, 200, None),
        (f"{VERTEX}/g:generateContent", {"Authorization": "Bearer ya29.x"}, 200, None),
    ],
)
async def test_credentials(
    sim: RunningSimulator,
    http: aiohttp.ClientSession,
    path: str,
    headers: dict[str, str],
    status: int,
    google_status: str | None,
) -> None:
    code, body = await post(http, f"{sim.root_url}{path}", HELLO, headers)
    assert code == status
    if google_status is not None:
        assert body["error"]["code"] == status
        assert body["error"]["status"] == google_status


@pytest.mark.parametrize(
    ("source", "status", "google_status"),
    [
        ({"model": "g%3Fstatus%3D503"}, 503, "UNAVAILABLE"),
        ({"header": "status=404"}, 404, "NOT_FOUND"),
        ({"body": {"status": 400}}, 400, "INVALID_ARGUMENT"),
    ],
)
async def test_status_directives_answer_google_errors(
    sim: RunningSimulator,
    http: aiohttp.ClientSession,
    source: dict[str, Any],
    status: int,
    google_status: str,
) -> None:
    url = gemini_url(sim, source.get("model", "g"))
    headers = {**KEY, "x-simulate": source["header"]} if "header" in source else KEY
    body = {**HELLO, "simulate": source["body"]} if "body" in source else HELLO
    code, answer = await post(http, url, body, headers)
    assert code == status
    assert set(answer["error"]) == {"code", "message", "status"}
    assert answer["error"]["status"] == google_status


async def test_rate_limit_carries_retry_info_and_fail_times_recovers(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    url = gemini_url(sim, "g%3Fstatus%3D429%26retry_after%3D2.5%26fail_times%3D1")
    code, answer = await post(http, url, HELLO)
    assert code == 429
    assert answer["error"]["status"] == "RESOURCE_EXHAUSTED"
    assert answer["error"]["details"] == [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.5s"}
    ]
    code, _ = await post(http, url, HELLO)
    assert code == 200


@pytest.mark.parametrize(
    ("body", "name"),
    [
        ({**HELLO, "messages": []}, "messages"),
        ({**HELLO, "generationConfig": {"max_tokens": 5}}, "maxTokens"),
        (
            {**HELLO, "tools": [{"functionDeclarations": [{"name": "f", "parameters": {
                "type": "OBJECT", "properties": {"a": {"type": "STRING"}},
                "additionalProperties": False,
            }}]}]},
            "additionalProperties",
        ),
    ],
)  # fmt: skip
async def test_unknown_fields_are_400_like_the_real_api(
    sim: RunningSimulator, http: aiohttp.ClientSession, body: dict[str, Any], name: str
) -> None:
    code, answer = await post(http, gemini_url(sim, "g"), body)
    assert code == 400
    assert answer["error"]["status"] == "INVALID_ARGUMENT"
    assert f'Unknown name "{name}"' in answer["error"]["message"]


async def test_bad_methods_and_non_sse_streams(
    sim: RunningSimulator, http: aiohttp.ClientSession
) -> None:
    code, answer = await post(http, gemini_url(sim, "g", "countTokens"), HELLO)
    assert (code, answer["error"]["status"]) == (404, "NOT_FOUND")
    code, answer = await post(http, gemini_url(sim, "g", "streamGenerateContent"), HELLO)
    assert code == 400
    assert "alt=sse" in answer["error"]["message"]
