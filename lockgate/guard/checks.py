"""Guardrails on the request path: a request's messages, a JSON answer, a streamed answer.

Both client formats (OpenAI and Anthropic) keep text in the same places — `messages[].content`
as a string or a list of parts with `text` — plus Anthropic's `system` and tool results, so one
walker serves both. Output rules read the answer's text (not tool-call arguments).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Literal

import orjson

from lockgate.config.protection import GuardrailsConfig
from lockgate.guard.rules import CompiledRule, compile_rules, scan
from lockgate.guard.text import Found, Redactions, TextWindow, apply

__all__ = ["Guard", "StreamGuard"]

Form = Literal["openai", "anthropic"]
Where = Callable[[], str]
"""Names a field for an error message; called only when something was found there."""
Rewrite = Callable[[str, Where], str]
"""(text, where) -> the text to keep."""


class Guard:
    """One caller's input and output rules."""

    __slots__ = ("input_rules", "output_rules", "restores")

    def __init__(self, config: GuardrailsConfig) -> None:
        self.input_rules = compile_rules(config.input)
        self.output_rules = compile_rules(config.output)
        self.restores = any(rule.restore for rule in self.input_rules)

    def check_request(self, raw: dict[str, Any], found: Found) -> Redactions | None:
        """Block, redact (in `raw`, in place) or log; the placeholders to restore, if any."""
        if not self.input_rules:
            return None
        redactions = Redactions()
        rules = self.input_rules

        def rewrite(text: str, where: Where) -> str:
            hits = scan(rules, text)
            if not hits:
                return text
            return apply(hits, text, where(), "request", redactions, found)

        _walk_request(raw, rewrite)
        return redactions if redactions.originals else None

    def check_answer(self, body: bytes, form: Form, found: Found) -> bytes:
        """A complete JSON answer with the output rules applied (re-encoded only if changed)."""
        if not self.output_rules:
            return body
        answer = orjson.loads(body)
        rules = self.output_rules
        changed = False

        def rewrite(text: str, where: Where) -> str:
            nonlocal changed
            hits = scan(rules, text)
            if not hits:
                return text
            kept = apply(hits, text, where(), "answer", None, found)
            changed = changed or kept != text
            return kept

        for holder, name, where in _answer_texts(answer, form):
            holder[name] = rewrite(holder[name], where)
        return orjson.dumps(answer) if changed else body


def _walk_request(raw: dict[str, Any], rewrite: Rewrite) -> None:
    messages = raw.get("messages")
    if isinstance(messages, list):
        for i, message in enumerate(messages):
            if isinstance(message, dict):
                _walk_content(message, "content", rewrite, _at("messages[{}].content", i))
                for c, call in enumerate(message.get("tool_calls") or ()):
                    function = call.get("function") if isinstance(call, dict) else None
                    if isinstance(function, dict):
                        _rewrite_field(
                            function,
                            "arguments",
                            rewrite,
                            _at("messages[{}].tool_calls[{}].function.arguments", i, c),
                        )
    if "system" in raw:
        _walk_content(raw, "system", rewrite, _at("system"))
    embedded = raw.get("input")  # /v1/embeddings
    if isinstance(embedded, str):
        raw["input"] = rewrite(embedded, _at("input"))
    elif isinstance(embedded, list):
        for k, item in enumerate(embedded):
            if isinstance(item, str):
                embedded[k] = rewrite(item, _at("input[{}]", k))


def _at(template: str, *indexes: int) -> Where:
    return lambda: template.format(*indexes)


def _within(where: Where, index: int) -> Where:
    return lambda: f"{where()}[{index}]"


def _walk_content(holder: dict[str, Any], name: str, rewrite: Rewrite, where: Where) -> None:
    content = holder.get(name)
    if isinstance(content, str):
        holder[name] = rewrite(content, where)
    elif isinstance(content, list):
        for j, part in enumerate(content):
            if not isinstance(part, dict):
                continue
            part_where = _within(where, j)
            _rewrite_field(part, "text", rewrite, part_where)
            if "content" in part:  # an Anthropic tool_result
                _walk_content(part, "content", rewrite, part_where)


def _rewrite_field(holder: dict[str, Any], name: str, rewrite: Rewrite, where: Where) -> None:
    value = holder.get(name)
    if isinstance(value, str):
        holder[name] = rewrite(value, where)


def _answer_texts(
    answer: Any, form: Form
) -> Iterator[tuple[dict[str, Any], str, Callable[[], str]]]:
    if not isinstance(answer, dict):
        return
    if form == "openai":
        for k, choice in enumerate(answer.get("choices") or ()):
            message = choice.get("message") if isinstance(choice, dict) else None
            if isinstance(message, dict) and isinstance(message.get("content"), str):
                yield message, "content", _at("choices[{}].message.content", k)
    else:
        for k, block in enumerate(answer.get("content") or ()):
            if isinstance(block, dict) and isinstance(block.get("text"), str):
                yield block, "text", _at("content[{}].text", k)


class StreamGuard:
    """Output rules (and placeholder restoring) on a streamed answer, event by event.

    Fed the relayed blocks (whole SSE events); text is held back per choice or content block
    (see `TextWindow`), and what is held comes out with the choice's last event.
    """

    __slots__ = ("_form", "_found", "_redactions", "_rules", "_windows")

    def __init__(
        self,
        form: Form,
        rules: tuple[CompiledRule, ...],
        redactions: Redactions | None,
        found: Found,
    ) -> None:
        self._form = form
        self._rules = rules
        self._redactions = redactions
        self._found = found
        self._windows: dict[int, TextWindow] = {}

    def feed(self, block: bytes) -> bytes:
        events = block.split(b"\n\n")
        out: list[bytes] = []
        for event in events[:-1] if events[-1] == b"" else events:
            if self._form == "openai":
                out.append(self._openai_event(event))
            else:
                out.extend(self._anthropic_event(event))
        return b"".join(out)

    def _window(self, index: int, where: str) -> TextWindow:
        window = self._windows.get(index)
        if window is None:
            window = self._windows[index] = TextWindow(
                self._rules, self._redactions, where, self._found
            )
        return window

    def _openai_event(self, event: bytes) -> bytes:
        if not event.startswith(b"data: {"):
            return event + b"\n\n"
        chunk = orjson.loads(event[6:])
        changed = False
        for choice in chunk.get("choices") or ():
            index = choice.get("index", 0)
            delta = choice.get("delta")
            if not isinstance(delta, dict):
                continue
            content = delta.get("content")
            if isinstance(content, str) and content:
                delta["content"] = self._window(index, f"choices[{index}]").feed(content)
                changed = True
            if choice.get("finish_reason") is not None and index in self._windows:
                rest = self._windows.pop(index).finish()
                if rest:
                    delta["content"] = (delta.get("content") or "") + rest
                    changed = True
        if not changed:
            return event + b"\n\n"
        return b"data: " + orjson.dumps(chunk) + b"\n\n"

    def _anthropic_event(self, event: bytes) -> list[bytes]:
        start = event.find(b"data: {")
        if start < 0:
            return [event + b"\n\n"]
        data = orjson.loads(event[start + 6 :])
        kind = data.get("type")
        index = data.get("index", 0)
        if kind == "content_block_delta":
            delta = data.get("delta")
            if isinstance(delta, dict) and delta.get("type") == "text_delta":
                delta["text"] = self._window(index, f"content[{index}]").feed(delta["text"])
                return [_anthropic(b"content_block_delta", data)]
        elif kind == "content_block_stop" and index in self._windows:
            rest = self._windows.pop(index).finish()
            if rest:
                flush = {
                    "type": "content_block_delta",
                    "index": index,
                    "delta": {"type": "text_delta", "text": rest},
                }
                return [_anthropic(b"content_block_delta", flush), event + b"\n\n"]
        return [event + b"\n\n"]


def _anthropic(name: bytes, data: dict[str, Any]) -> bytes:
    return b"event: " + name + b"\ndata: " + orjson.dumps(data) + b"\n\n"
