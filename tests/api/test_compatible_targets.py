"""Every catalogue service (`type: groq`, `type: ollama`, ...) through a real gateway to the simulator.

Each type gets a provider pointing at the simulator with `x-sim-echo-headers: 1`, so the echo log
(`GET /sim/echoes`) shows what arrived upstream: path, auth header, renamed and dropped parameters.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import openai
import pytest

from lockgate.providers.catalogue import CATALOGUE, CatalogueEntry
from lockgate.simulate.server import RunningSimulator
from tests.conftest import config_from_yaml, running_gateway

PROVIDER_KEY = "sk-compatible-secret-93d1"
QUIRKY = [entry for entry in CATALOGUE if entry.unsupported]
# A value of each parameter that asks for something (its no-op value would be removed silently).
ASKING = {
    "logprobs": True,
    "top_logprobs": 2,
    "logit_bias": {"50256": -100},
    "n": 2,
    "tool_choice": "required",
    "parallel_tool_calls": False,
    "stream_options": {"include_usage": True},
    "seed": 7,
    "user": "u-1",
}


def provider_yaml(name: str, entry: CatalogueEntry, base_url: str, **extra: str) -> str:
    lines = [
        f"  - name: {name}",
        f"    type: {entry.name}",
        f'    base_url: "{base_url}"',
        '    headers: {x-sim-echo-headers: "1"}',
    ]
    lines += [f"    {key}: {value}" for key, value in extra.items()]
    return "\n".join(lines)


def gateway_yaml(sim: RunningSimulator) -> str:
    providers, models = [], []
    for entry in CATALOGUE:
        # hosted services need a key; local servers are tried without one (and with one)
        variants: dict[str, dict[str, str]] = {
            entry.name: {"api_key": '"${KEY}"'} if entry.key_required else {},
            f"{entry.name}-keyed": {"api_key": '"${KEY}"'},
            f"{entry.name}-drop": {"api_key": '"${KEY}"', "drop_unsupported": "true"},
        }
        for name, extra in variants.items():
            providers.append(provider_yaml(name, entry, sim.base_url, **extra))
            models.append(
                f"  - {{name: {name}, targets: [{{provider: {name}, model: up-{name}}}]}}"
            )
    return (
        "providers:\n"
        + "\n".join(providers)
        + "\nmodels:\n"
        + "\n".join(models)
        + "\nrouting: {timeout_s: 5, retries: 0}\n"
    )


@pytest.fixture(scope="module")
async def gateway_url(simulator: RunningSimulator) -> AsyncIterator[str]:
    async with running_gateway(config_from_yaml(gateway_yaml(simulator), KEY=PROVIDER_KEY)) as url:
        yield url


@pytest.fixture
def client(gateway_url: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=f"{gateway_url}/v1", api_key="unused", max_retries=0)


def ask(marker: str) -> list[Any]:
    return [{"role": "user", "content": f"hello [{marker}]"}]


async def received(simulator: RunningSimulator, marker: str) -> dict[str, Any]:
    """What the simulator received for the request whose body holds `marker`."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{simulator.root_url}/sim/echoes") as resp,
    ):
        echoes = await resp.json()
    matching = [echo for echo in echoes if marker in json.dumps(echo["body"])]
    assert len(matching) == 1, f"{len(matching)} echoes hold {marker!r}"
    return matching[0]  # type: ignore[no-any-return]


def ids(entries: list[CatalogueEntry]) -> list[str]:
    return [entry.name for entry in entries]


@pytest.mark.parametrize("entry", CATALOGUE, ids=ids(list(CATALOGUE)))
async def test_request_arrives_with_the_right_auth(
    client: openai.AsyncOpenAI, simulator: RunningSimulator, entry: CatalogueEntry
) -> None:
    marker = uuid.uuid4().hex
    if entry.key_required:
        raw = await client.chat.completions.with_raw_response.create(
            model=entry.name, messages=ask(marker), temperature=0.3
        )
        assert raw.headers["x-lockgate-model"] == f"{entry.name}/up-{entry.name}"
        assert raw.parse().choices[0].message.content
    else:
        # No key is sent to a local server; the simulator, unlike one, insists on a key (401),
        # which the gateway reports as the provider refusing its credentials.
        with pytest.raises(openai.APIStatusError) as info:
            await client.chat.completions.create(model=entry.name, messages=ask(marker))
        assert info.value.status_code == 502
    seen = await received(simulator, marker)
    assert seen["path"] == "/v1/chat/completions"
    assert seen["body"]["model"] == f"up-{entry.name}"
    if entry.key_required:
        assert seen["headers"]["authorization"] == f"Bearer {PROVIDER_KEY}"
    else:
        assert "authorization" not in seen["headers"]


@pytest.mark.parametrize("entry", CATALOGUE, ids=ids(list(CATALOGUE)))
async def test_a_given_key_is_sent_as_bearer(
    client: openai.AsyncOpenAI, simulator: RunningSimulator, entry: CatalogueEntry
) -> None:
    marker = uuid.uuid4().hex
    await client.chat.completions.create(model=f"{entry.name}-keyed", messages=ask(marker))
    seen = await received(simulator, marker)
    assert seen["headers"]["authorization"] == f"Bearer {PROVIDER_KEY}"


@pytest.mark.parametrize("entry", CATALOGUE, ids=ids(list(CATALOGUE)))
async def test_max_completion_tokens_is_renamed_where_the_service_wants(
    client: openai.AsyncOpenAI, simulator: RunningSimulator, entry: CatalogueEntry
) -> None:
    marker = uuid.uuid4().hex
    await client.chat.completions.create(
        model=f"{entry.name}-keyed", messages=ask(marker), max_completion_tokens=40
    )
    body = (await received(simulator, marker))["body"]
    renamed = dict(entry.renames).get("max_completion_tokens")
    if renamed:
        assert "max_completion_tokens" not in body
        assert body[renamed] == 40
    else:
        assert body["max_completion_tokens"] == 40


QUIRKS = [(entry, param) for entry in QUIRKY for param in entry.unsupported]
QUIRK_IDS = [f"{entry.name}-{param}" for entry, param in QUIRKS]


@pytest.mark.parametrize(("entry", "param"), QUIRKS, ids=QUIRK_IDS)
async def test_unsupported_parameter_is_refused(
    client: openai.AsyncOpenAI, entry: CatalogueEntry, param: str
) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await client.chat.completions.create(
            model=f"{entry.name}-keyed",
            messages=ask(uuid.uuid4().hex),
            extra_body={param: ASKING[param]},
        )
    error = info.value.body
    assert isinstance(error, dict)
    assert error["code"] == "unsupported_parameter"
    assert error["param"] == param
    assert f"'{param}'" in error["message"]
    assert f"'{entry.name}-keyed'" in error["message"]


@pytest.mark.parametrize(("entry", "param"), QUIRKS, ids=QUIRK_IDS)
async def test_unsupported_parameter_is_dropped_with_drop_unsupported(
    client: openai.AsyncOpenAI, simulator: RunningSimulator, entry: CatalogueEntry, param: str
) -> None:
    marker = uuid.uuid4().hex
    completion = await client.chat.completions.create(
        model=f"{entry.name}-drop", messages=ask(marker), extra_body={param: ASKING[param]}
    )
    assert completion.choices
    body = (await received(simulator, marker))["body"]
    assert param not in body


@pytest.mark.parametrize("entry", QUIRKY, ids=ids(QUIRKY))
async def test_no_op_values_are_accepted_and_not_forwarded(
    client: openai.AsyncOpenAI, simulator: RunningSimulator, entry: CatalogueEntry
) -> None:
    marker = uuid.uuid4().hex
    await client.chat.completions.create(
        model=f"{entry.name}-keyed", messages=ask(marker), n=1, logprobs=False, logit_bias={}
    )
    body = (await received(simulator, marker))["body"]
    assert not {"n", "logprobs", "logit_bias"} & set(entry.unsupported) & set(body)


async def test_streaming_applies_the_quirks(
    client: openai.AsyncOpenAI, simulator: RunningSimulator
) -> None:
    marker = uuid.uuid4().hex
    stream = await client.chat.completions.create(
        model="ollama-keyed", messages=ask(marker), max_completion_tokens=30, stream=True
    )
    chunks = [chunk async for chunk in stream]
    assert chunks
    body = (await received(simulator, marker))["body"]
    assert body["max_tokens"] == 30
    assert "max_completion_tokens" not in body
