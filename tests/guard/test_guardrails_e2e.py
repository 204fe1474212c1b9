"""Guardrails through a real gateway: what reaches the provider, and what reaches the caller.

The simulator's answer starts by quoting the first words of the user's message, like a model
repeating its input, so the answer shows what the provider was sent.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import anthropic
import openai
import pytest

from lockgate.simulate.server import RunningSimulator, start_simulator
from lockgate.simulate.settings import SimulatorSettings
from tests.access.admin_helpers import anthropic_client, declared_key_yaml, openai_client, secret
from tests.conftest import config_from_yaml, running_gateway

AWS_KEY = "AKIAZ7QW3ERT5YUI9OPL"
CARD = "4111 1111 1111 1111"
EMAIL = "dana.miller@example.com"

DIFF = f"""diff --git a/deploy/env.sh b/deploy/env.sh
index 3f2a1b0..8c9d4e2 100644
--- a/deploy/env.sh
+++ b/deploy/env.sh
@@ -1,3 +1,4 @@
 export REGION=eu-west-1
+export AWS_ACCESS_KEY_ID={AWS_KEY}
 export BUCKET=reports
"""
TICKET = (
    f"Hi, my card {CARD} was charged twice for order 88123. Please reply to {EMAIL} "
    "or call me. Thanks, Dana"
)


@dataclass
class Setup:
    url: str
    sim: RunningSimulator

    async def sent_upstream(self) -> list[dict[str, Any]]:
        """The request bodies the provider received (the simulator's echo log)."""
        echoes = f"{self.sim.root_url}/sim/echoes"
        async with aiohttp.ClientSession() as http, http.get(echoes) as answer:
            return [echo["body"] for echo in await answer.json()]

    async def forget(self) -> None:
        reset = f"{self.sim.root_url}/sim/reset"
        async with aiohttp.ClientSession() as http, http.post(reset):
            pass


def gateway_yaml(sim: RunningSimulator) -> str:
    return f"""
providers:
  - name: sim
    type: openai
    base_url: "{sim.base_url}"
    api_key: sim-key
    headers: {{x-sim-echo-headers: "1"}}
routing: {{retries: 0, timeout_s: 10}}
models: [{{name: m, targets: [{{provider: sim, model: sim-small}}]}}]
guardrails:
  input:
    - {{type: secrets, action: block}}
    - {{type: pii, entities: [email, credit_card], action: redact}}
    - {{type: pii, name: phones, entities: [phone], action: log}}
  output:
    - {{type: regex, name: internal, pattern: "(?i)internal use only", action: block}}
    - {{type: pii, entities: [phone, email], action: redact}}
teams:
  - name: support
    guardrails:
      input: [{{type: pii, entities: [email], action: redact, restore: true}}]
keys:
{declared_key_yaml("plain")}{declared_key_yaml("agent", team="support")}{
        declared_key_yaml("trusted", guardrails="{input: [], output: []}")
    }"""


@pytest.fixture(scope="module")
async def setup() -> AsyncIterator[Setup]:
    sim = await start_simulator(SimulatorSettings())
    try:
        async with running_gateway(config_from_yaml(gateway_yaml(sim))) as url:
            yield Setup(url, sim)
    finally:
        await sim.close()


@pytest.fixture(autouse=True)
async def fresh_echoes(setup: Setup) -> None:
    await setup.forget()


def user(text: str) -> list[Any]:
    return [{"role": "user", "content": text}]


async def ask(setup: Setup, key: str, text: str, **options: Any) -> Any:
    async with openai_client(setup.url, secret(key)) as client:
        return await client.chat.completions.create(model="m", messages=user(text), **options)


async def stream_pieces(setup: Setup, key: str, text: str, **options: Any) -> list[str]:
    async with openai_client(setup.url, secret(key)) as client:
        chunks = await client.chat.completions.create(
            model="m", messages=user(text), stream=True, **options
        )
        return [c.choices[0].delta.content or "" async for c in chunks if c.choices]


async def test_a_diff_with_an_aws_key_is_blocked_and_never_sent(setup: Setup) -> None:
    with pytest.raises(openai.BadRequestError) as raised:
        await ask(setup, "plain", f"Review this change:\n{DIFF}")
    error = raised.value
    assert error.code == "guardrail_blocked"
    assert "'secrets'" in error.message
    assert "aws_access_key" in error.message
    assert "messages[0].content" in error.message
    assert AWS_KEY not in str(error.body)
    assert AWS_KEY not in error.message
    assert await setup.sent_upstream() == []


async def test_a_support_ticket_reaches_the_provider_without_email_and_card(
    setup: Setup,
) -> None:
    answer = await ask(setup, "plain", TICKET)
    [sent] = await setup.sent_upstream()
    text = sent["messages"][0]["content"]
    assert CARD not in text
    assert EMAIL not in text
    assert "[REDACTED:credit_card]" in text
    assert "[REDACTED:email]" in text
    assert "order 88123" in text  # ordinary numbers are left alone
    assert answer.choices[0].message.content.startswith("Simulated reply to: Hi, my card")


async def test_restore_puts_the_callers_own_values_back_into_the_answer(setup: Setup) -> None:
    answer = await ask(setup, "agent", f"{EMAIL} wants a refund")
    [sent] = await setup.sent_upstream()
    assert sent["messages"][0]["content"] == "[REDACTED:email_1] wants a refund"
    # The model quoted the placeholder; the caller reads the address it sent.
    assert answer.choices[0].message.content.startswith(f"Simulated reply to: {EMAIL} wants")


async def test_restore_works_on_a_stream_too(setup: Setup) -> None:
    text = "".join(await stream_pieces(setup, "agent", f"{EMAIL} wants a refund"))
    assert text.startswith(f"Simulated reply to: {EMAIL} wants a refund")


async def test_a_key_with_its_own_empty_rules_is_not_checked(setup: Setup) -> None:
    answer = await ask(setup, "trusted", f"Review this change:\n{DIFF}")
    [sent] = await setup.sent_upstream()
    assert AWS_KEY in sent["messages"][0]["content"]
    assert answer.choices[0].message.content


async def test_log_rules_let_the_text_pass_and_log_rule_and_kind_only(
    setup: Setup, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="lockgate.guardrails")
    await ask(setup, "plain", "call me on +49 30 1234 5678 please")
    [sent] = await setup.sent_upstream()
    assert "+49 30 1234 5678" in sent["messages"][0]["content"]
    logged = [r.getMessage() for r in caplog.records if r.name == "lockgate.guardrails"]
    assert any("'phones'" in line and "phone" in line for line in logged)
    assert not any("1234 5678" in line for line in logged)


async def test_an_answer_breaking_an_output_rule_is_blocked(setup: Setup) -> None:
    content = {"simulate": {"content": "Sure. This memo is INTERNAL USE ONLY, sorry."}}
    with pytest.raises(openai.BadRequestError) as raised:
        await ask(setup, "plain", "summarise the memo", extra_body=content)
    assert raised.value.code == "guardrail_blocked"
    assert "'internal'" in raised.value.message
    assert "INTERNAL" not in raised.value.message


async def test_a_streamed_answer_is_cut_before_the_blocked_words(setup: Setup) -> None:
    content = "Here is the summary you asked for. " * 6 + "This memo is INTERNAL USE ONLY."
    received: list[str] = []
    async with openai_client(setup.url, secret("plain")) as client:
        stream = await client.chat.completions.create(
            model="m",
            messages=user("summarise the memo"),
            stream=True,
            # Paced, so the blocked words come after the response has started.
            extra_body={"simulate": {"content": content, "tokens_per_s": 400}},
        )
        with pytest.raises(openai.APIError) as raised:
            async for chunk in stream:
                if chunk.choices:
                    received.append(chunk.choices[0].delta.content or "")
    text = "".join(received)
    assert "internal use only" not in text.lower()
    assert text.startswith("Here is the summary")  # what came before was sent
    assert "guardrail" in raised.value.message.lower()


async def test_a_phone_number_split_across_chunks_is_redacted_in_a_stream(setup: Setup) -> None:
    # The simulator streams one word per chunk: the number arrives in four pieces.
    content = "Sure, call our desk at +49 30 1234 5678 between nine and five."
    paced = {"simulate": {"content": content, "tokens_per_s": 400}}
    pieces = await stream_pieces(setup, "plain", "how do I reach you", extra_body=paced)
    assert "".join(pieces) == "Sure, call our desk at [REDACTED:phone] between nine and five."
    assert not any("5678" in piece for piece in pieces)


async def test_anthropic_clients_get_the_same_protection(setup: Setup) -> None:
    async with anthropic_client(setup.url, secret("plain")) as client:
        with pytest.raises(anthropic.BadRequestError) as raised:
            await client.messages.create(
                model="m",
                max_tokens=64,
                system=f"Deploy with {AWS_KEY}",
                messages=user("hello"),
            )
        assert "Guardrail 'secrets' blocked the request: aws_access_key found in system" in str(
            raised.value.body
        )
        assert AWS_KEY not in str(raised.value.body)
        answer = await client.messages.create(
            model="m",
            max_tokens=64,
            messages=[{"role": "user", "content": [{"type": "text", "text": TICKET}]}],
        )
    [sent] = await setup.sent_upstream()
    assert EMAIL not in str(sent)
    assert CARD not in str(sent)
    assert answer.content
