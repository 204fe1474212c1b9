"""`lockgate ci testgen`: tests for the changed code, from the `test-generation` prompt.

The changed source files of the pipeline (tests, docs, vendored and generated files left out)
go to the prompt one by one, with the issue's or merge request's description as what to cover.
The files it answers are written into the checkout, never outside it and never over a file that
is not a test (a model must not rewrite the code it was asked to test).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from lockgate.gitlab.diffs import FileDiff
from lockgate.gitlab.skips import skip_reason

__all__ = ["GeneratedFile", "TestgenError", "generate", "sources_to_test", "write_files"]

Ask = Callable[[Mapping[str, Any]], Awaitable[Mapping[str, Any]]]

MAX_FILES = 10
MAX_CODE_CHARS = 200_000
_TEST_PATH = re.compile(
    r"(^|/)(tests?|spec|__tests__)/|(^|/)test_[^/]*$|_test\.[a-z]+$|\.(test|spec)\.[a-z]+$"
)
_SOURCE_SUFFIXES = frozenset(
    {".py", ".js", ".ts", ".tsx", ".jsx", ".go", ".rb", ".java", ".kt", ".rs", ".cs", ".php"}
)


class TestgenError(Exception):
    """The generated tests were refused (or none came back); nothing was written."""


@dataclass(frozen=True, slots=True)
class GeneratedFile:
    path: str
    content: str
    source: str
    """The changed file it tests."""


def is_test_path(path: str) -> bool:
    return bool(_TEST_PATH.search(path))


def sources_to_test(files: Sequence[FileDiff]) -> list[str]:
    """The changed source files worth tests: code, not tests, not vendored or generated."""
    chosen = []
    for file in files:
        path = file.new_path
        if file.deleted_file or skip_reason(file) is not None or is_test_path(path):
            continue
        if PurePosixPath(path).suffix in _SOURCE_SUFFIXES:
            chosen.append(path)
    return chosen[:MAX_FILES]


async def generate(
    sources: Sequence[str],
    read: Callable[[str], str],
    ask: Ask,
    issue: str | None = None,
    framework: str | None = None,
) -> list[GeneratedFile]:
    generated: list[GeneratedFile] = []
    for path in sources:
        code = read(path)[:MAX_CODE_CHARS]
        if not code.strip():
            continue
        body: dict[str, Any] = {"code": code, "path": path}
        if issue:
            body["issue"] = issue[:20_000]
        if framework:
            body["framework"] = framework
        answer = await ask(body)
        files = answer.get("files")
        if not isinstance(files, list):
            raise TestgenError(f"the test-generation prompt answered no `files` for {path}")
        for item in files:
            if isinstance(item, Mapping) and isinstance(item.get("path"), str):
                generated.append(GeneratedFile(item["path"], str(item.get("content", "")), path))
    return generated


def write_files(root: Path, files: Sequence[GeneratedFile]) -> list[Path]:
    """Write `files` under `root`; TestgenError for a path outside it or over non-test code."""
    targets = [(_inside(root, file.path), file) for file in files]
    for target, file in targets:
        if not is_test_path(file.path):
            raise TestgenError(f"the model proposed {file.path!r}, which is not a test file")
        if target.exists() and not is_test_path(target.relative_to(root).as_posix()):
            raise TestgenError(f"{file.path} exists and is not a test: not overwritten")
    for target, file in targets:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(file.content if file.content.endswith("\n") else file.content + "\n")
    return [target for target, _ in targets]


def _inside(root: Path, path: str) -> Path:
    relative = PurePosixPath(path)
    if relative.is_absolute() or ".." in relative.parts or not relative.parts:
        raise TestgenError(f"the model proposed a path outside the repository: {path!r}")
    return root.joinpath(*relative.parts)
