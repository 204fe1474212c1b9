"""Message templates: compiled once at load in a Jinja2 sandbox, rendered over a request's input.

The environment is an `ImmutableSandboxedEnvironment`: no attribute starting with `_`, no unsafe
callables, and no mutation of the input's lists and dicts (one message cannot change what the
next one sees). Undefined variables are errors. Includes resolve only against the partials read
at load (`_partials/*.j2`), by exact name, so no path leads outside them; every include a template
names is checked to exist when it is compiled. `*` and `**` are bounded so a template cannot
build a huge string or number. Block tags take their line's indentation and newline with them
(`trim_blocks`, `lstrip_blocks`), so `{% if %}` on a line of its own leaves no blank line.

A failure at render time is the prompt author's fault (the input was validated against the
prompt's schema), so it is a 500 `PromptRenderError` that names the prompt, version and message
and never repeats input values: Python's messages can embed them, so only Jinja's own undefined
messages (variable names from the template) are kept.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypedDict

from jinja2 import DictLoader, StrictUndefined, Template, TemplateSyntaxError, meta
from jinja2.exceptions import SecurityError, UndefinedError
from jinja2.runtime import Context
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.utils import missing, object_type_repr

from lockgate.errors import GatewayError
from lockgate.prompts.files import did_you_mean

__all__ = [
    "ChatMessage",
    "MessageTemplates",
    "PromptRenderError",
    "TemplateProblem",
    "compile_template",
    "make_environment",
]

MAX_REPEAT = 100_000
"""The longest string or list `*` may build in a template."""
MAX_EXPONENT = 1_000


class ChatMessage(TypedDict):
    role: str
    content: str


class PromptRenderError(GatewayError):
    """A prompt's template failed on a valid input: a fault of the prompt, not of the caller."""

    status = 500
    type = "api_error"
    code = "prompt_render_failed"


class TemplateProblem(Exception):
    """A template that cannot be compiled: a syntax error, or an include of a missing partial."""

    def __init__(self, message: str, lineno: int | None = None) -> None:
        super().__init__(message)
        self.lineno = lineno
        """The line inside the template, when known."""


class _Undefined(StrictUndefined):
    """Strict, with messages that name only template variables and types, never values."""

    __slots__ = ()

    @property
    def _undefined_message(self) -> str:
        if self._undefined_hint:
            return "the sandbox refused access to an unsafe attribute"
        if self._undefined_obj is missing:
            return f"{self._undefined_name!r} is undefined"
        return f"{object_type_repr(self._undefined_obj)} has no such attribute or item"


class _Sandbox(ImmutableSandboxedEnvironment):
    intercepted_binops = frozenset({"*", "**"})

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*" and _repeat_length(left, right) > MAX_REPEAT:
            raise SecurityError(f"'*' would build more than {MAX_REPEAT} items")
        if operator == "**" and _huge_power(left, right):
            raise SecurityError(f"'**' allows exponents up to {MAX_EXPONENT}")
        return super().call_binop(context, operator, left, right)


def make_environment(partials: Mapping[str, str]) -> ImmutableSandboxedEnvironment:
    """The sandbox all templates of one registry share; `partials` maps include names to source.

    Besides Jinja's filters, `json` renders a value as indented JSON (`tojson` escapes `<`, `>`,
    `&` and `'` for HTML, which a prompt does not want).
    """
    env = _Sandbox(
        loader=DictLoader(dict(partials)),
        undefined=_Undefined,
        autoescape=False,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,  # a partial's last newline survives its include
        auto_reload=False,
    )
    env.filters["json"] = _to_json
    return env


def compile_template(env: ImmutableSandboxedEnvironment, source: str) -> Template:
    """Compile a template, checking that every partial it names exists.

    Raises `TemplateProblem` with a message fit for a load error.
    """
    try:
        ast = env.parse(source)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(
            f"template syntax error (template line {exc.lineno}): {exc.message}", exc.lineno
        ) from None
    known = env.list_templates()
    for name in meta.find_referenced_templates(ast):
        if name is None:
            raise TemplateProblem("an include must name its partial literally, e.g. 'x.j2'")
        if name not in known:
            hint = did_you_mean(name, known, "partials")
            raise TemplateProblem(f"unknown partial {name!r}{hint}")
    return env.from_string(source)


@dataclass(frozen=True)
class MessageTemplates:
    """The compiled messages of one prompt version, in order."""

    prompt: str
    """`name@version`, for error messages."""
    messages: tuple[tuple[str, Template], ...]

    def render(self, variables: Mapping[str, Any]) -> list[ChatMessage]:
        """The chat messages for a validated input body."""
        rendered: list[ChatMessage] = []
        for index, (role, template) in enumerate(self.messages):
            try:
                content = template.render(variables)
            except Exception as exc:  # any failure of a template is reported the same way
                raise PromptRenderError(
                    f"Prompt {self.prompt}: messages[{index}].content could not be rendered: "
                    f"{_describe(exc)}"
                ) from exc
            # What Jinja does by default (keep_trailing_newline=False) for the message itself: a
            # YAML block (`content: |`) ends with a newline that is not part of the message.
            rendered.append({"role": role, "content": content.removesuffix("\n")})
        return rendered


def _describe(exc: Exception) -> str:
    if isinstance(exc, SecurityError):
        return "the sandbox refused an unsafe operation (e.g. an attribute starting with '_')"
    if isinstance(exc, UndefinedError):
        return exc.message or "undefined value"
    return f"{type(exc).__name__} in the template"


def _repeat_length(left: Any, right: Any) -> int:
    if isinstance(left, int) and not isinstance(left, bool):
        left, right = right, left
    if isinstance(left, str | list | tuple) and isinstance(right, int):
        return len(left) * right
    return 0


def _huge_power(base: Any, exponent: Any) -> bool:
    return (
        isinstance(base, int)
        and isinstance(exponent, int)
        and abs(base) > 1
        and exponent > MAX_EXPONENT
    )


def _to_json(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, indent=2)
