"""A Gemini `GenerateContentRequest` body -> the simulator's typed `ChatRequest`.

Strict like the real API: an unknown field (top level, in `generationConfig`, or in a function
declaration's `parameters` Schema) is a 400 naming it, so a translation bug in a gateway shows up
in tests instead of being ignored. Both camelCase and snake_case field names are accepted, as
Google's JSON mapping does.
"""

from __future__ import annotations

from typing import Any

import orjson

from lockgate.simulate.chat_request import ChatRequest
from lockgate.simulate.gemini_errors import GeminiApiError, invalid_argument

__all__ = ["camel", "parse_generate_request"]

_TOP_LEVEL = frozenset(
    {
        "contents",
        "systemInstruction",
        "tools",
        "toolConfig",
        "safetySettings",
        "generationConfig",
        "cachedContent",
        "labels",
        "model",
        "simulate",
    }
)
_GENERATION = frozenset(
    {
        "stopSequences",
        "responseMimeType",
        "responseSchema",
        "responseJsonSchema",
        "responseModalities",
        "candidateCount",
        "maxOutputTokens",
        "temperature",
        "topP",
        "topK",
        "seed",
        "presencePenalty",
        "frequencyPenalty",
        "responseLogprobs",
        "logprobs",
        "thinkingConfig",
        "mediaResolution",
        "speechConfig",
    }
)
SCHEMA_FIELDS = frozenset(
    {
        "type",
        "format",
        "title",
        "description",
        "nullable",
        "enum",
        "maxItems",
        "minItems",
        "properties",
        "required",
        "minProperties",
        "maxProperties",
        "minLength",
        "maxLength",
        "pattern",
        "example",
        "anyOf",
        "propertyOrdering",
        "default",
        "items",
        "minimum",
        "maximum",
    }
)


def camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(word.capitalize() for word in rest)


def _camel_keys(value: dict[str, Any], where: str, known: frozenset[str]) -> dict[str, Any]:
    result = {camel(key): item for key, item in value.items()}
    for key in result:
        if key not in known:
            raise unknown_field(key, where)
    return result


def unknown_field(name: str, where: str) -> GeminiApiError:
    at = f" at '{where}'" if where else ""
    return invalid_argument(
        f'Invalid JSON payload received. Unknown name "{name}"{at}: Cannot find field.'
    )


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise invalid_argument(f"Invalid value at '{where}': expected an object")
    return value


def _messages(body: dict[str, Any]) -> list[dict[str, Any]]:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise invalid_argument("* GenerateContentRequest.contents: contents is not specified\n")
    messages: list[dict[str, Any]] = []
    system = body.get("systemInstruction")
    if system is not None:
        instruction = _object(system, "system_instruction")
        messages.append({"role": "system", "content": _parts(instruction)})
    for index, content in enumerate(contents):
        content = _object(content, f"contents[{index}]")
        role = content.get("role", "user")
        if role not in ("user", "model", "function"):
            raise invalid_argument(f"Please use a valid role: user, model. (contents[{index}])")
        parts = _parts(content)
        if not parts:
            raise invalid_argument(
                f"* GenerateContentRequest.contents[{index}].parts: contents.parts must not be "
                "empty.\n"
            )
        messages.append({"role": "assistant" if role == "model" else "user", "content": parts})
    return messages


def _parts(content: dict[str, Any]) -> list[dict[str, Any]]:
    """OpenAI-style content parts, so the shared prompt estimate and echo text apply."""
    parts: list[dict[str, Any]] = []
    for part in content.get("parts") or []:
        if not isinstance(part, dict):
            continue
        if isinstance(part.get("text"), str):
            parts.append({"type": "text", "text": part["text"]})
        elif "inlineData" in part or "fileData" in part or "inline_data" in part:
            parts.append({"type": "image_url"})  # counted as one media part
        elif "functionCall" in part or "functionResponse" in part:
            payload = part.get("functionCall") or part.get("functionResponse")
            parts.append({"type": "text", "text": orjson.dumps(payload).decode()})
    return parts


def _check_schema(schema: object, where: str) -> None:
    if not isinstance(schema, dict):
        return
    for key, value in schema.items():
        if key not in SCHEMA_FIELDS:
            raise unknown_field(key, where)
        if key == "properties" and isinstance(value, dict):
            for name, child in value.items():
                _check_schema(child, f"{where}.properties[{name}]")
        elif key == "items":
            _check_schema(value, f"{where}.items")
        elif key == "anyOf" and isinstance(value, list):
            for number, child in enumerate(value):
                _check_schema(child, f"{where}.any_of[{number}]")


def _lowered(schema: object) -> Any:
    """A Gemini Schema with its type names lower-cased, as the JSON-schema helpers expect."""
    if isinstance(schema, dict):
        return {
            key: value.lower() if key == "type" and isinstance(value, str) else _lowered(value)
            for key, value in schema.items()
        }
    if isinstance(schema, list):
        return [_lowered(item) for item in schema]
    return schema


def _functions(body: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    functions: list[dict[str, Any]] = []
    for t, tool in enumerate(body.get("tools") or []):
        tool = {camel(key): value for key, value in _object(tool, f"tools[{t}]").items()}
        for d, declaration in enumerate(tool.get("functionDeclarations") or []):
            where = f"tools[{t}].function_declarations[{d}]"
            declaration = {camel(k): v for k, v in _object(declaration, where).items()}
            if not isinstance(declaration.get("name"), str):
                raise invalid_argument(f"* GenerateContentRequest.{where}.name: Required")
            if "parameters" in declaration and "parametersJsonSchema" in declaration:
                raise invalid_argument(
                    f"{where}: parameters and parameters_json_schema are mutually exclusive"
                )
            _check_schema(declaration.get("parameters"), f"{where}.parameters")
            schema = declaration.get("parametersJsonSchema", declaration.get("parameters"))
            functions.append({"name": declaration["name"], "parameters": _lowered(schema)})
    return tuple(functions)


def _tool_choice(body: dict[str, Any]) -> str | dict[str, Any] | None:
    config = {camel(k): v for k, v in _object(body.get("toolConfig") or {}, "tool_config").items()}
    where = "tool_config.function_calling_config"
    raw = _object(config.get("functionCallingConfig") or {}, where)
    calling = {camel(k): v for k, v in raw.items()}
    mode = calling.get("mode", "AUTO")
    names = calling.get("allowedFunctionNames")
    if mode == "NONE":
        return "none"
    if mode == "ANY" and isinstance(names, list) and len(names) == 1:
        return {"type": "function", "function": {"name": names[0]}}
    if mode == "ANY":
        return "required"
    if mode in ("AUTO", "VALIDATED", "MODE_UNSPECIFIED"):
        return "auto"
    raise invalid_argument(f"Invalid value at '{where}.mode' ({mode!r})")


def _response_format(generation: dict[str, Any]) -> dict[str, Any] | None:
    mime = generation.get("responseMimeType")
    schema = generation.get("responseJsonSchema", generation.get("responseSchema"))
    if "responseJsonSchema" in generation and "responseSchema" in generation:
        raise invalid_argument("response_schema and response_json_schema cannot both be set.")
    if schema is not None and mime != "application/json":
        raise invalid_argument(
            "response_mime_type must be application/json when a response schema is set."
        )
    if mime != "application/json":
        return None
    if schema is None:
        return {"type": "json_object"}
    return {"type": "json_schema", "json_schema": {"name": "response", "schema": _lowered(schema)}}


def parse_generate_request(body: dict[str, Any], model: str, stream: bool) -> ChatRequest:
    body = _camel_keys(body, "", _TOP_LEVEL)
    generation = _camel_keys(
        _object(body.get("generationConfig") or {}, "generation_config"),
        "generation_config",
        _GENERATION,
    )
    stop = generation.get("stopSequences") or []
    count = generation.get("candidateCount", 1)
    limit = generation.get("maxOutputTokens")
    if not isinstance(count, int) or not 1 <= count <= 8:
        raise invalid_argument("candidate_count must be between 1 and 8.")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise invalid_argument("max_output_tokens must be a positive integer.")
    return ChatRequest(
        model=model,
        messages=_messages(body),
        n=count,
        stream=stream,
        include_usage=True,
        max_tokens=limit,
        stop=tuple(item for item in stop if isinstance(item, str) and item),
        functions=_functions(body),
        tool_choice=_tool_choice(body),
        response_format=_response_format(generation),
    )
