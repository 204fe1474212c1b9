"""Rendering: sandboxed, strict, partials by name only, failures that name the template only."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from jinja2 import TemplateNotFound
from jinja2.exceptions import SecurityError, UndefinedError

from lockgate.prompts.registry import PromptVersion
from lockgate.prompts.render import (
    MAX_REPEAT,
    PromptRenderError,
    TemplateProblem,
    compile_template,
    make_environment,
)
from tests.prompts import VERSION, load, problems

INPUT = """\
input:
  type: object
  properties:
    text: {type: string}
    n: {type: integer}
    tags: {type: array}
    data: {type: object}
"""


def version_with(
    tmp_path: Path, *contents: str, partials: dict[str, str] | None = None
) -> PromptVersion:
    messages = "".join(f"  - role: user\n    content: {content!r}\n" for content in contents)
    files = {"p/1.0.0.yaml": f"model: m\nmessages:\n{messages}{INPUT}"}
    files.update({f"_partials/{name}": text for name, text in (partials or {}).items()})
    return load(tmp_path, files).versions("p")[0]


def render_error(tmp_path: Path, content: str, body: dict[str, Any]) -> PromptRenderError:
    version = version_with(tmp_path, "first", content)
    with pytest.raises(PromptRenderError) as info:
        version.render(body)
    return info.value


def test_renders_messages_over_the_input(tmp_path: Path) -> None:
    registry = load(
        tmp_path,
        {
            "rate/1.0.0.yaml": VERSION.replace(
                '    content: "Rate: {{ text }}"',
                "    content: |\n"
                '      {% include "rules.j2" %}\n'
                "      {% if tone is defined %}\n"
                "      Tone: {{ tone }}\n"
                "      {% endif %}\n"
                "      Text: {{ text }}\n"
                "  - role: assistant\n"
                "    content: ok",
            ),
            "_partials/rules.j2": "Rule one.\n{% include 'more/two.j2' %}\n",
            "_partials/more/two.j2": "Rule two.\n",
        },
    )
    version = registry.versions("rate")[0]
    assert version.render({"text": "fine"}) == [
        {"role": "user", "content": "Rule one.\nRule two.\nText: fine"},
        {"role": "assistant", "content": "ok"},
    ]
    assert version.render({"text": "fine", "tone": "dry"})[0]["content"] == (
        "Rule one.\nRule two.\nTone: dry\nText: fine"
    )


def test_json_filter_keeps_text_readable(tmp_path: Path) -> None:
    version = version_with(tmp_path, "{{ data | json }}")
    assert version.render({"data": {"a": "<ü>"}})[0]["content"] == '{\n  "a": "<ü>"\n}'


def test_an_undefined_variable_is_an_error_naming_it(tmp_path: Path) -> None:
    error = render_error(tmp_path, "Title: {{ title }}", {"text": "x"})
    assert (error.status, error.code) == (500, "prompt_render_failed")
    assert error.message == (
        "Prompt p@1.0.0: messages[1].content could not be rendered: 'title' is undefined"
    )
    assert isinstance(error.__cause__, UndefinedError)


def test_a_missing_attribute_is_an_error(tmp_path: Path) -> None:
    error = render_error(tmp_path, "{{ data.title }}", {"data": {}})
    assert error.message.endswith("dict object has no such attribute or item")


@pytest.mark.parametrize(
    "template",
    [
        "{{ text.__class__ }}",
        "{{ ''.__class__.__mro__ }}",
        "{{ text.__class__.__mro__[1].__subclasses__() }}",
        "{{ tags.__len__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ '{0.__class__}'.format(text) }}",
        "{{ '{t.__class__}'.format_map({'t': text}) }}",
    ],
)
def test_sandbox_escapes_are_refused(tmp_path: Path, template: str) -> None:
    error = render_error(tmp_path, template, {"text": "x", "tags": []})
    assert isinstance(error.__cause__, SecurityError)
    assert "sandbox refused" in error.message
    assert "class" not in error.message


def test_the_input_cannot_be_changed_by_a_template(tmp_path: Path) -> None:
    body = {"tags": ["a"], "data": {"k": "v"}}
    for template in (
        "{{ tags.append('b') }}",
        "{{ data.update({'k': 'w'}) }}",
        "{{ data.clear() }}",
    ):
        error = render_error(tmp_path, template, body)
        assert isinstance(error.__cause__, SecurityError)
    assert body == {"tags": ["a"], "data": {"k": "v"}}


def test_huge_results_are_refused(tmp_path: Path) -> None:
    for template in ("{{ 'a' * n }}", "{{ tags * n }}", "{{ 9 ** n }}"):
        error = render_error(tmp_path, template, {"n": 10_000_000, "tags": [1]})
        assert isinstance(error.__cause__, SecurityError)
    version = version_with(tmp_path, "{{ '-' * n }}{{ 2 ** 10 }}")
    assert version.render({"n": 3})[0]["content"] == "---1024"
    assert len(version.render({"n": MAX_REPEAT})[0]["content"]) == MAX_REPEAT + 4


def test_render_errors_never_echo_input_values(tmp_path: Path) -> None:
    secret = "SECRET-VALUE-42"
    for template in ("{{ text + n }}", "{{ data[text] }}", "{{ n / 0 }}", "{{ text | int + x }}"):
        error = render_error(tmp_path, template, {"text": secret, "n": 0, "data": {}})
        assert secret not in error.message
        assert error.message.startswith("Prompt p@1.0.0: messages[1].content could not be")
    error = render_error(tmp_path, "{{ text + n }}", {"text": secret, "n": 1})
    assert error.message.endswith("TypeError in the template")


# load-time template checks


def test_template_syntax_error_is_a_load_error(tmp_path: Path) -> None:
    text = VERSION.replace('content: "Rate: {{ text }}"', 'content: "Rate: {{ text }"')
    assert problems(tmp_path, {"rate/1.0.0.yaml": text}) == [
        "prompts/rate/1.0.0.yaml:4: messages[0].content: template syntax error (template line "
        "1): unexpected '}'"
    ]


def test_an_include_of_a_missing_partial_is_a_load_error(tmp_path: Path) -> None:
    text = VERSION.replace("Rate: {{ text }}", "{% include 'json_only.j2' %}{{ text }}")
    found = problems(tmp_path, {"rate/1.0.0.yaml": text, "_partials/json-only.j2": "JSON."})
    assert found == [
        "prompts/rate/1.0.0.yaml:4: messages[0].content: unknown partial 'json_only.j2' "
        "(did you mean 'json-only.j2'?)"
    ]


@pytest.mark.parametrize(
    "include",
    [
        "{% include '../secret.j2' %}",
        "{% include '../rate/1.0.0.yaml' %}",
        "{% include '/etc/passwd' %}",
        "{% include '_partials/json-only.j2' %}",
    ],
)
def test_includes_cannot_leave_the_partials(tmp_path: Path, include: str) -> None:
    text = VERSION.replace("Rate: {{ text }}", include)
    files = {"rate/1.0.0.yaml": text, "_partials/json-only.j2": "JSON.", "secret.j2": "S"}
    (problem,) = problems(tmp_path, files)
    assert "messages[0].content: unknown partial" in problem
    assert "json-only.j2" in problem


def test_a_computed_include_is_a_load_error(tmp_path: Path) -> None:
    text = VERSION.replace("Rate: {{ text }}", "{% include text %}")
    (problem,) = problems(tmp_path, {"rate/1.0.0.yaml": text})
    assert problem.endswith("an include must name its partial literally, e.g. 'x.j2'")


def test_a_broken_partial_is_reported_on_its_own_line(tmp_path: Path) -> None:
    files = {"rate/1.0.0.yaml": VERSION, "_partials/bad.j2": "one\ntwo {% if %}\n"}
    (problem,) = problems(tmp_path, files)
    assert problem.startswith("prompts/_partials/bad.j2:2: template syntax error (template line 2)")


def test_every_broken_message_is_listed(tmp_path: Path) -> None:
    files = {
        "p/1.0.0.yaml": "model: m\nmessages:\n  - {role: user, content: '{{ a'}\n"
        "  - {role: user, content: '{% include \"x.j2\" %}'}\ninput: {type: object}\n"
    }
    found = problems(tmp_path, files)
    assert [problem.split(": ")[1] for problem in found] == [
        "messages[0].content",
        "messages[1].content",
    ]


def test_the_loader_knows_only_the_partials() -> None:
    env = make_environment({"a.j2": "A"})
    assert env.get_template("a.j2").render() == "A"
    for name in ("../a.j2", "./a.j2", "/a.j2", "b.j2"):
        with pytest.raises(TemplateNotFound):
            env.get_template(name)
    with pytest.raises(TemplateProblem):
        compile_template(env, "{% extends 'base.j2' %}")
    assert compile_template(env, "{% extends 'a.j2' %}").render() == "A"
