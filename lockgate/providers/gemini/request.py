"""A canonical chat request -> a Gemini `GenerateContentRequest` body.

Parameters and where they go (`gc` = `generationConfig`):

- `messages` -> `contents`, `systemInstruction` (see `messages.py`);
- `temperature`, `top_p`, `top_k`, `n`, `seed`, `presence_penalty`, `frequency_penalty` ->
  `gc.temperature`, `.topP`, `.topK`, `.candidateCount`, `.seed`, `.presencePenalty`,
  `.frequencyPenalty`;
- `max_completion_tokens` (else `max_tokens`) -> `gc.maxOutputTokens`; `stop` -> `gc.stopSequences`;
- `response_format` json_object -> `gc.responseMimeType: application/json`; json_schema -> that
  plus `gc.responseJsonSchema` (JSON Schema as sent: it takes `$ref`, `$defs`,
  `additionalProperties`, unlike `responseSchema`);
- `reasoning_effort` -> `gc.thinkingConfig.thinkingBudget` (none/minimal 0, low 1024,
  medium 8192, high 24576);
- function `tools` -> `tools[0].functionDeclarations` (parameters through `schema.py`);
- `tool_choice` -> `toolConfig.functionCallingConfig`: auto AUTO, none NONE, required ANY, a
  named function ANY + `allowedFunctionNames`, `allowed_tools` likewise.

`stream` and `stream_options` choose the endpoint and shape the stream; `user`,
`safety_identifier`, `prompt_cache_key` and `metadata` are hints or tags with no effect on the
answer and are left out, as are values that ask for nothing (`parallel_tool_calls: true`,
`store: false`, ...). Every other parameter is one Gemini cannot honour (`logit_bias`,
`logprobs`, `top_logprobs`, `audio`, `modalities` other than text, `prediction`,
`parallel_tool_calls: false`, `store: true`, `web_search_options`, `functions`, ...): 400
`unsupported_parameter`, or dropped with `drop_unsupported: true`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from lockgate.errors import BadRequest
from lockgate.providers.gemini.messages import translate_messages
from lockgate.providers.gemini.schema import gemini_schema
from lockgate.providers.params import reject_or_drop

__all__ = ["chat_body"]

_GENERATION: Mapping[str, str] = {
    "temperature": "temperature",
    "top_p": "topP",
    "top_k": "topK",
    "n": "candidateCount",
    "seed": "seed",
    "presence_penalty": "presencePenalty",
    "frequency_penalty": "frequencyPenalty",
}
_TRANSLATED = frozenset(
    {
        *_GENERATION,
        "model",
        "messages",
        "stream",
        "stream_options",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "response_format",
        "reasoning_effort",
        "tools",
        "tool_choice",
    }
)
_IGNORED = frozenset({"user", "safety_identifier", "prompt_cache_key", "metadata"})
# Values that ask for nothing beyond what Gemini does anyway.
_HARMLESS: Mapping[str, tuple[object, ...]] = {
    "parallel_tool_calls": (True,),
    "logprobs": (False,),
    "store": (False,),
    "service_tier": ("auto", "default"),
    "modalities": (["text"],),
}
THINKING_BUDGETS: Mapping[str, int] = {
    "none": 0,
    "minimal": 0,
    "low": 1024,
    "medium": 8192,
    "high": 24576,
}


def chat_body(body: dict[str, Any], provider: str, drop_unsupported: bool) -> dict[str, Any]:
    """The Gemini request body for `body` (which is left as it is)."""
    body = {k: v for k, v in body.items() if k not in _IGNORED and v not in _HARMLESS.get(k, ())}
    reject_or_drop(body, [k for k in body if k not in _TRANSLATED], provider, drop_unsupported)
    contents, system = translate_messages(body["messages"], provider)
    request: dict[str, Any] = {"contents": contents}
    if system is not None:
        request["systemInstruction"] = system
    generation = _generation_config(body)
    if generation:
        request["generationConfig"] = generation
    declarations = _declarations(body.get("tools"), provider)
    tool_config = _tool_config(body.get("tool_choice"))
    allowed = _auto_allowed(body.get("tool_choice"))
    if allowed is not None:  # allowed_tools in auto mode: offer only those
        declarations = [d for d in declarations if d["name"] in allowed]
    if declarations:
        request["tools"] = [{"functionDeclarations": declarations}]
        if tool_config is not None:
            request["toolConfig"] = tool_config
    return request


def _generation_config(body: dict[str, Any]) -> dict[str, Any]:
    config = {name: body[key] for key, name in _GENERATION.items() if body.get(key) is not None}
    limit = body.get("max_completion_tokens")
    if limit is None:
        limit = body.get("max_tokens")
    if limit is not None:
        config["maxOutputTokens"] = limit
    stop = body.get("stop")
    if stop:
        config["stopSequences"] = [stop] if isinstance(stop, str) else stop
    effort = body.get("reasoning_effort")
    if effort is not None:
        if effort not in THINKING_BUDGETS:
            raise BadRequest(
                f"'reasoning_effort' must be one of {', '.join(THINKING_BUDGETS)}",
                param="reasoning_effort",
            )
        config["thinkingConfig"] = {"thinkingBudget": THINKING_BUDGETS[effort]}
    response_format = body.get("response_format") or {}
    kind = response_format.get("type")
    if kind in ("json_object", "json_schema"):
        config["responseMimeType"] = "application/json"
    if kind == "json_schema":
        schema = response_format["json_schema"].get("schema")
        if schema is not None:
            # JSON Schema as is: responseJsonSchema takes $ref, $defs, additionalProperties...
            config["responseJsonSchema"] = schema
    return config


def _declarations(tools: object, provider: str) -> list[dict[str, Any]]:
    declarations: list[dict[str, Any]] = []
    for index, tool in enumerate(tools if isinstance(tools, list) else []):
        if tool.get("type", "function") != "function":
            raise BadRequest(
                f"Only function tools are supported by provider '{provider}'",
                param=f"tools[{index}].type",
                code="unsupported_parameter",
            )
        function = tool["function"]
        declaration: dict[str, Any] = {"name": function["name"]}
        if function.get("description"):
            declaration["description"] = function["description"]
        parameters = function.get("parameters")
        if isinstance(parameters, dict):
            converted = gemini_schema(parameters)
            # Gemini rejects an OBJECT schema without properties; no parameters says the same.
            if converted.get("properties"):
                declaration["parameters"] = converted
        declarations.append(declaration)
    return declarations


def _tool_config(choice: object) -> dict[str, Any] | None:
    if choice is None:
        return None
    if isinstance(choice, str):
        mode = {"auto": "AUTO", "none": "NONE", "required": "ANY"}.get(choice)
        if mode is None:
            raise BadRequest(
                "'tool_choice' must be 'auto', 'none', 'required' or an object",
                param="tool_choice",
            )
        return {"functionCallingConfig": {"mode": mode}}
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = (choice.get("function") or {}).get("name")
        if isinstance(name, str):
            return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": [name]}}
    if isinstance(choice, dict) and choice.get("type") == "allowed_tools":
        allowed = choice.get("allowed_tools") or {}
        names = _allowed_names(choice)
        if allowed.get("mode") == "required":
            return {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": names}}
        return {"functionCallingConfig": {"mode": "AUTO"}}
    raise BadRequest("'tool_choice' names no function", param="tool_choice")


def _allowed_names(choice: dict[str, Any]) -> list[str]:
    allowed = choice.get("allowed_tools") or {}
    return [
        tool["function"]["name"]
        for tool in allowed.get("tools", [])
        if isinstance(tool, dict) and isinstance(tool.get("function"), dict)
    ]


def _auto_allowed(choice: object) -> frozenset[str] | None:
    """The functions an `allowed_tools` choice in auto mode restricts the model to."""
    if not isinstance(choice, dict) or choice.get("type") != "allowed_tools":
        return None
    if (choice.get("allowed_tools") or {}).get("mode") == "required":
        return None
    return frozenset(_allowed_names(choice))
