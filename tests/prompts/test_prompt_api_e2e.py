"""Prompts served as REST APIs by a real gateway, with the simulator as the model.

Test prompts script the simulator's answer through their `params` (`simulate: {content: ...}`
passes through to the provider), so the model's JSON, or its failure to produce JSON, is known.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from lockgate.simulate.server import RunningSimulator, start_simulator
from lockgate.simulate.settings import SimulatorSettings
from tests.access.admin_helpers import ADMIN_KEY, declared_key_yaml, secret, wait_for
from tests.conftest import config_from_yaml, running_gateway
from tests.storage.raw import query

INPUT = """
input:
  type: object
  required: [text]
  additionalProperties: false
  properties: {text: {type: string, maxLength: 200}}
"""
OUTPUT = """
output:
  type: object
  required: [score, label]
  properties:
    score: {type: number, minimum: -1, maximum: 1}
    label: {enum: [positive, neutral, negative]}
"""


def version_file(answer: str, extra: str = "", scripted: str = "") -> str:
    content = orjson.dumps(answer).decode()
    return f"""model: m
params: {{temperature: 0, simulate: {{{scripted}content: {content}}}}}
messages:
  - {{role: system, content: "Rate the sentiment."}}
  - {{role: user, content: "{{{{ text }}}}"}}
{INPUT}{extra}"""


def write_prompts(root: Path) -> None:
    files = {
        "sentiment/1.0.0.yaml": version_file('{"score": 0.8, "label": "positive"}', OUTPUT),
        "sentiment/1.1.0.yaml": version_file('{"score": 0.7, "label": "positive"}', OUTPUT),
        "sentiment/labels.yaml": "production: 1.0.0\ncanary: {version: 1.1.0, weight: 50}\n",
        "chatty/1.0.0.yaml": version_file("Sure! The score is high.", OUTPUT),
        "summary/1.0.0.yaml": version_file("A short summary.", "stream: true\n"),
        # Bad JSON once; then the simulator fills the response_format schema with valid JSON.
        "repaired/1.0.0.yaml": version_file(
            "Sure! The score is high.", OUTPUT, scripted="content_times: 1, key: repaired, "
        ),
    }
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


@dataclass
class Setup:
    url: str
    sim: RunningSimulator
    database: str
    prompts: Path

    async def upstream_calls(self) -> int:
        stats = f"{self.sim.root_url}/sim/stats"
        async with aiohttp.ClientSession() as http, http.get(stats) as answer:
            return int((await answer.json())["total_requests"])

    async def post(
        self, path: str, body: Any, key: str | None = "k0", method: str = "POST"
    ) -> tuple[int, Any, dict[str, str]]:
        headers = {"authorization": f"Bearer {secret(key)}"} if key else {}
        async with aiohttp.ClientSession() as http:
            if method == "GET":
                call = http.get(f"{self.url}{path}", params=body, headers=headers)
            else:
                call = http.post(f"{self.url}{path}", json=body, headers=headers)
            async with call as answer:
                headers = {name.lower(): value for name, value in answer.headers.items()}
                return answer.status, await answer.json(), headers


KEYS = "".join(declared_key_yaml(f"k{n}") for n in range(40))


@pytest.fixture(scope="module")
async def setup(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Setup]:
    root = tmp_path_factory.mktemp("gateway")
    write_prompts(root / "prompts")
    database = f"sqlite:///{root / 'gateway.db'}"
    sim = await start_simulator(SimulatorSettings())
    yaml = f"""
server: {{admin_key: "{ADMIN_KEY}"}}
storage: {{database: "{database}"}}
providers: [{{name: sim, type: openai, base_url: "{sim.base_url}", api_key: sim-key}}]
routing: {{retries: 0, timeout_s: 10}}
models: [{{name: m, targets: [{{provider: sim, model: sim-small}}], price: {{input: 1, output: 2}}}}]
prompts: {{dir: prompts}}
apis:
  - {{path: /sentiment, prompt: sentiment}}
  - {{path: /sentiment-get, prompt: "sentiment@1.1.0", methods: [GET, POST]}}
keys:
{KEYS}"""
    source = root / "lockgate.yaml"
    source.write_text(yaml)
    try:
        async with running_gateway(config_from_yaml(yaml), source=source) as url:
            yield Setup(url, sim, database, root / "prompts")
    finally:
        await sim.close()


async def test_an_api_path_answers_with_the_validated_json(setup: Setup) -> None:
    status, body, headers = await setup.post("/sentiment", {"text": "Great work!"})
    assert status == 200
    assert body in ({"score": 0.8, "label": "positive"}, {"score": 0.7, "label": "positive"})
    assert headers["x-lockgate-prompt"] == "sentiment"
    assert headers["x-lockgate-prompt-version"] in ("1.0.0", "1.1.0")
    assert headers["x-lockgate-model"] == "sim/sim-small"
    assert "x-lockgate-cost-usd" in headers


async def test_the_generic_endpoint_takes_a_version_reference(setup: Setup) -> None:
    for version, expected in (("1.1.0", "1.1.0"), ("^1", "1.1.0"), ("canary", "1.1.0")):
        status, body, headers = await setup.post(
            f"/v1/prompts/sentiment?version={version}", {"text": "ok"}
        )
        assert status == 200, body
        assert headers["x-lockgate-prompt-version"] == expected
    status, body, _ = await setup.post("/v1/prompts/sentiment?version=9.0.0", {"text": "ok"})
    assert status == 404
    assert body["error"]["code"] == "prompt_not_found"
    assert "1.0.0" in body["error"]["message"]
    status, body, _ = await setup.post("/v1/prompts/nothing", {"text": "ok"})
    assert (status, body["error"]["code"]) == (404, "prompt_not_found")


async def test_get_takes_the_input_from_the_query_string(setup: Setup) -> None:
    status, body, headers = await setup.post("/sentiment-get", {"text": "fine"}, method="GET")
    assert status == 200
    assert body == {"score": 0.7, "label": "positive"}
    assert headers["x-lockgate-prompt-version"] == "1.1.0"


async def test_bad_input_is_422_listing_every_violation(setup: Setup) -> None:
    before = await setup.upstream_calls()
    status, body, _ = await setup.post("/sentiment", {"text": 5, "extra": True})
    assert status == 422
    error = body["error"]
    assert error["code"] == "invalid_input"
    assert len(error["violations"]) == 2
    assert any("$.text" in v and "string" in v for v in error["violations"])
    assert any("extra" in v for v in error["violations"])
    status, body, _ = await setup.post("/sentiment", {})
    assert status == 422
    assert any("'text' is a required property" in v for v in body["error"]["violations"])
    assert await setup.upstream_calls() == before


async def test_an_answer_that_is_not_valid_json_is_retried_once_then_502(setup: Setup) -> None:
    before = await setup.upstream_calls()
    status, body, _ = await setup.post("/v1/prompts/chatty", {"text": "hi"})
    assert status == 502
    assert body["error"]["code"] == "invalid_output"
    assert body["error"]["raw_output"] == "Sure! The score is high."
    assert await setup.upstream_calls() == before + 2


async def test_an_invalid_answer_is_repaired_with_one_more_call(setup: Setup) -> None:
    before = await setup.upstream_calls()
    status, body, headers = await setup.post("/v1/prompts/repaired", {"text": "hi"})
    assert status == 200, body
    assert set(body) >= {"score", "label"}
    assert -1 <= body["score"] <= 1
    assert await setup.upstream_calls() == before + 2
    # The caller pays for both calls: the cost header is their sum.
    assert float(headers["x-lockgate-cost-usd"]) > 0


async def test_canary_takes_its_share_and_sticks_to_each_key(setup: Setup) -> None:
    async def version_of(key: str) -> str:
        status, _, headers = await setup.post("/sentiment", {"text": "ok"}, key=key)
        assert status == 200
        return headers["x-lockgate-prompt-version"]

    first = await asyncio.gather(*(version_of(f"k{n}") for n in range(40)))
    again = await asyncio.gather(*(version_of(f"k{n}") for n in range(40)))
    assert first == again  # sticky per key
    canary = first.count("1.1.0")
    assert 8 <= canary <= 32  # weight 50 over 40 keys
    assert set(first) == {"1.0.0", "1.1.0"}


async def test_ledger_rows_carry_prompt_name_and_version(setup: Setup) -> None:
    _, _, headers = await setup.post("/v1/prompts/sentiment?version=1.1.0", {"text": "ok"})

    async def row() -> dict[str, Any] | None:
        result = await query(
            setup.database,
            "SELECT * FROM usage WHERE request_id = :id",
            {"id": headers["x-request-id"]},
        )
        rows = [dict(r._mapping) for r in result]
        return rows[0] if rows else None

    found, _ = await wait_for(row, 10)
    assert found["endpoint"] == "prompt"
    assert (found["prompt"], found["prompt_version"]) == ("sentiment", "1.1.0")
    assert found["model"] == "m"
    assert found["status"] == 200


async def test_a_free_text_prompt_answers_text_or_streams(setup: Setup) -> None:
    status, body, _ = await setup.post("/v1/prompts/summary", {"text": "long text"})
    assert (status, body) == (200, {"text": "A short summary."})
    headers = {"authorization": f"Bearer {secret('k0')}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{setup.url}/v1/prompts/summary?stream=true", json={"text": "x"}, headers=headers
        ) as answer,
    ):
        assert answer.headers["content-type"].startswith("text/event-stream")
        assert answer.headers["x-lockgate-prompt-version"] == "1.0.0"
        raw = await answer.read()
    pieces = [
        orjson.loads(line[6:]) for line in raw.decode().splitlines() if line.startswith("data: {")
    ]
    text = "".join(p["choices"][0]["delta"].get("content") or "" for p in pieces if p["choices"])
    assert text == "A short summary."
    status, body, _ = await setup.post("/v1/prompts/sentiment?stream=true", {"text": "x"})
    assert status == 400


async def test_prompts_reload_with_the_config(setup: Setup) -> None:
    labels = setup.prompts / "sentiment" / "labels.yaml"
    original = labels.read_text()
    labels.write_text("production: 1.1.0\n")
    try:
        async with aiohttp.ClientSession() as http:
            reload = f"{setup.url}/admin/config/reload"
            auth = {"authorization": f"Bearer {ADMIN_KEY}"}
            async with http.post(reload, headers=auth) as answer:
                assert answer.status == 200, await answer.text()
        versions = {
            (await setup.post("/sentiment", {"text": "ok"}, key=f"k{n}"))[2][
                "x-lockgate-prompt-version"
            ]
            for n in range(10)
        }
        assert versions == {"1.1.0"}
        # A broken prompt file is refused; the gateway keeps serving the last good prompts.
        (setup.prompts / "sentiment" / "2.0.0.yaml").write_text("model: m\nmesages: []\n")
        async with aiohttp.ClientSession() as http, http.post(reload, headers=auth) as answer:
            assert answer.status >= 400
            assert "2.0.0.yaml" in await answer.text()
        status, _, headers = await setup.post("/sentiment", {"text": "ok"})
        assert (status, headers["x-lockgate-prompt-version"]) == (200, "1.1.0")
    finally:
        labels.write_text(original)
        (setup.prompts / "sentiment" / "2.0.0.yaml").unlink(missing_ok=True)


async def test_usage_by_prompt_compares_the_versions(setup: Setup) -> None:
    for _ in range(3):
        await setup.post("/v1/prompts/sentiment?version=1.0.0", {"text": "ok"})
        await setup.post("/v1/prompts/sentiment?version=1.1.0", {"text": "ok"})

    async def report() -> dict[str, Any] | None:
        auth = {"authorization": f"Bearer {ADMIN_KEY}"}
        async with (
            aiohttp.ClientSession() as http,
            http.get(f"{setup.url}/admin/usage?by=prompt&since=1d", headers=auth) as answer,
        ):
            rows = (await answer.json())["rows"]
        versions = {row["prompt_version"]: row for row in rows if row["prompt"] == "sentiment"}
        if all(versions.get(v, {}).get("requests", 0) >= 3 for v in ("1.0.0", "1.1.0")):
            return versions
        return None

    versions, _ = await wait_for(report, 10)
    for row in versions.values():
        assert row["input_tokens"] > 0
        assert row["cost_usd"] > 0


async def test_changing_a_version_that_served_traffic_is_warned_about(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    await setup.post("/v1/prompts/summary", {"text": "x"})

    async def recorded() -> bool | None:
        rows = await query(
            setup.database, "SELECT sha256 FROM prompt_versions WHERE name = 'summary'", {}
        )
        return True if rows else None

    await wait_for(recorded, 10)
    path = setup.prompts / "summary" / "1.0.0.yaml"
    original = path.read_text()
    path.write_text(original.replace("model: m", "description: edited\nmodel: m"))
    caplog.set_level(logging.WARNING)
    try:
        async with aiohttp.ClientSession() as http:
            reload = f"{setup.url}/admin/config/reload"
            auth = {"authorization": f"Bearer {ADMIN_KEY}"}
            async with http.post(reload, headers=auth) as answer:
                assert answer.status == 200  # a warning, not a refusal
        warned = [
            r.getMessage() for r in caplog.records if "changed after it served" in r.getMessage()
        ]
        assert any("summary@1.0.0" in line for line in warned)
    finally:
        path.write_text(original)
