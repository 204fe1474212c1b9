"""Calling a prompt: the input checked, the messages rendered, the model asked through the usual
request path (limits, guardrails, cache, routing, ledger), and a JSON answer checked.

Prompts with an `output` schema ask for JSON twice over: `response_format: json_schema`, which
every adapter serves (natively, or with a forced tool on Anthropic and Bedrock), and an
instruction in the messages, for OpenAI-compatible servers that ignore `response_format`. An
answer that does not validate gets one repair attempt with the violations; then 502.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from lockgate.auth.policy import Principal
from lockgate.errors import BadRequest, GatewayError
from lockgate.options import RequestOptions
from lockgate.pipeline import Gateway
from lockgate.prompts.registry import PromptRegistry, PromptVersion
from lockgate.prompts.served import ServedVersions
from lockgate.reply import JSONReply, StreamReply
from lockgate.usage.record import UsageRecord

__all__ = ["InvalidInput", "InvalidOutput", "PromptRunner"]

MAX_RAW_OUTPUT = 16 * 1024
"""Characters of an invalid answer quoted back in the 502."""

JSON_INSTRUCTION = (
    "Answer with one JSON object and nothing else (no prose, no code fences). It must be valid "
    "against this JSON Schema:\n{schema}"
)
REPAIR_INSTRUCTION = (
    "Your answer is not valid against the JSON Schema:\n{problems}\n"
    "Answer again with only the corrected JSON object."
)


class InvalidInput(GatewayError):
    status = 422
    type = "invalid_request_error"
    code = "invalid_input"

    def __init__(self, label: str, violations: list[str]) -> None:
        count = len(violations)
        super().__init__(
            f"The input of prompt {label} is not valid ({count} problem{'s' * (count != 1)}): "
            + "; ".join(violations[:5])
        )
        self.details = {"violations": violations}


class InvalidOutput(GatewayError):
    status = 502
    type = "upstream_error"
    code = "invalid_output"

    def __init__(self, label: str, problems: list[str], raw: str) -> None:
        super().__init__(
            f"The model's answer to prompt {label} was not valid against its output schema, "
            f"also after one repair attempt: {'; '.join(problems[:5])}"
        )
        self.details = {"raw_output": raw[:MAX_RAW_OUTPUT]}


class PromptRunner:
    def __init__(
        self, registry: PromptRegistry, gateway: Gateway, served: ServedVersions | None = None
    ) -> None:
        self.registry = registry
        self._gateway = gateway
        self._served = served

    async def call(
        self,
        reference: str,
        data: Any,
        options: RequestOptions,
        principal: Principal,
        record: UsageRecord,
        stream: bool = False,
    ) -> JSONReply | StreamReply:
        caller = None if principal.kind == "open" else f"{principal.kind}:{principal.name}"
        version = self.registry.resolve(reference, caller).version
        record.prompt, record.prompt_version = version.name, version.version
        label = f"{version.name}@{version.version}"
        if not isinstance(data, dict):
            raise InvalidInput(label, ["$: the input must be a JSON object"])
        violations = version.input_violations(data)
        if violations:
            raise InvalidInput(label, violations)
        chat = _chat_request(version, data)
        if self._served is not None:
            self._served.served(version)
        headers = [
            (b"x-lockgate-prompt", version.name.encode()),
            (b"x-lockgate-prompt-version", version.version.encode()),
        ]
        if stream:
            if not version.stream or version.has_output:
                raise BadRequest(
                    f"Prompt {label} cannot be streamed (it needs `stream: true` and no `output`)",
                    param="stream",
                )
            reply = await self._gateway.chat(
                orjson.dumps({**chat, "stream": True}), options, principal, record
            )
            reply.headers += headers
            return reply
        reply = await self._ask(chat, options, principal, record)
        text = _content(reply.body)
        if not version.has_output:
            answer: Any = {"text": text}
        else:
            answer, problems = _parse(version, text)
            if problems:
                repair = [
                    *chat["messages"],
                    {"role": "assistant", "content": text},
                    {
                        "role": "user",
                        "content": REPAIR_INSTRUCTION.format(problems="\n".join(problems)),
                    },
                ]
                reply = await self._ask_again(
                    {**chat, "messages": repair}, options, principal, record
                )
                text = _content(reply.body)
                answer, problems = _parse(version, text)
                if problems:
                    raise InvalidOutput(label, problems, text)
        out = [h for h in reply.headers if h[0] != b"x-lockgate-cost-usd"]
        if any(h[0] == b"x-lockgate-cost-usd" for h in reply.headers):
            out.append((b"x-lockgate-cost-usd", f"{record.cost_micros / 1_000_000:.6f}".encode()))
        return JSONReply(orjson.dumps(answer), [*out, *headers])

    async def _ask(
        self,
        chat: dict[str, Any],
        options: RequestOptions,
        principal: Principal,
        record: UsageRecord,
    ) -> JSONReply:
        reply = await self._gateway.chat(orjson.dumps(chat), options, principal, record)
        assert isinstance(reply, JSONReply)  # not a stream: `stream` is never set here
        return reply

    async def _ask_again(
        self,
        chat: dict[str, Any],
        options: RequestOptions,
        principal: Principal,
        record: UsageRecord,
    ) -> JSONReply:
        """The repair call; the record keeps the sum of both calls' tokens and cost."""
        spent = (
            record.input_tokens,
            record.output_tokens,
            record.cached_tokens,
            record.cost_micros,
        )
        try:
            return await self._ask(chat, options, principal, record)
        finally:
            record.input_tokens += spent[0]
            record.output_tokens += spent[1]
            record.cached_tokens += spent[2]
            record.cost_micros += spent[3]


def _chat_request(version: PromptVersion, data: dict[str, Any]) -> dict[str, Any]:
    messages = version.render(data)
    chat: dict[str, Any] = {**version.params, "model": version.model, "messages": messages}
    if version.has_output:
        schema = version.output_schema
        instruction = JSON_INSTRUCTION.format(schema=orjson.dumps(schema).decode())
        chat["messages"] = [{"role": "system", "content": instruction}, *messages]
        chat["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": _schema_name(version.name), "schema": schema},
        }
    return chat


def _schema_name(name: str) -> str:
    """OpenAI's `json_schema.name` allows a-z, A-Z, 0-9, underscores and dashes, 64 at most."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", name)[:64]


def _content(body: bytes) -> str:
    answer = orjson.loads(body)
    try:
        content = answer["choices"][0]["message"]["content"]
    except (KeyError, IndexError, TypeError):
        content = None
    return content if isinstance(content, str) else ""


def _parse(version: PromptVersion, text: str) -> tuple[Any, list[str]]:
    """The answer as JSON and its violations of the output schema ([] when valid)."""
    try:
        answer = orjson.loads(_unfenced(text))
    except orjson.JSONDecodeError as error:
        return None, [f"$: the answer is not JSON ({error})"]
    return answer, version.output_violations(answer)


def _unfenced(text: str) -> str:
    """Models asked for bare JSON still wrap it in a Markdown code fence now and then."""
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.split("\n", 1)[1] if "\n" in stripped else ""
        if stripped.rstrip().endswith("```"):
            stripped = stripped.rstrip()[:-3]
    return stripped
