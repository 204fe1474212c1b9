"""`lockgate ci docs`: a docs patch for a change of the code, from the `docs-update` prompt.

The code diff (tests and generated files left out) and the current text of the docs it may
touch go to the prompt; the unified diff it answers is checked with `git apply --check` and
applied to the checkout. Docs are chosen by mention: files naming a changed module or symbol
first, then the README, within a size budget.
"""

from __future__ import annotations

import subprocess
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from lockgate.gitlab.diffs import FileDiff
from lockgate.gitlab.skips import skip_reason
from lockgate.gitlab.testgen import is_test_path

__all__ = ["DocsError", "DocsPatch", "apply_patch", "choose_docs", "code_diff", "propose"]

Ask = Callable[[Mapping[str, Any]], Awaitable[Mapping[str, Any]]]

MAX_DOCS = 20
MAX_DOCS_CHARS = 200_000
MAX_DOC_CHARS = 100_000
DOC_SUFFIXES = (".md", ".rst", ".txt", ".adoc")


class DocsError(Exception):
    """No docs patch could be made or applied; nothing was changed."""


@dataclass(frozen=True, slots=True)
class DocsPatch:
    patch: str
    summary: str


def code_diff(files: Sequence[FileDiff]) -> str:
    """The diff of the changed code, without tests, docs, vendored or generated files."""
    kept = [
        file
        for file in files
        if skip_reason(file) is None
        and not is_test_path(file.path)
        and not file.path.endswith(DOC_SUFFIXES)
    ]
    return "".join(file.text() for file in kept)


def choose_docs(root: Path, files: Sequence[FileDiff]) -> list[dict[str, str]]:
    """Docs under `docs/` and the README, those mentioning a changed module first."""
    candidates = sorted(p for p in (root / "docs").rglob("*") if p.suffix in DOC_SUFFIXES)
    readme = root / "README.md"
    if readme.is_file():
        candidates.append(readme)
    names = {PurePosixPath(file.path).stem for file in files if not is_test_path(file.path)}

    def mentions(path: Path) -> int:
        text = path.read_text(errors="replace")
        return -sum(1 for name in names if len(name) > 2 and name in text)

    chosen: list[dict[str, str]] = []
    total = 0
    for path in sorted(candidates, key=mentions):
        content = path.read_text(errors="replace")[:MAX_DOC_CHARS]
        if total + len(content) > MAX_DOCS_CHARS or len(chosen) == MAX_DOCS:
            break
        chosen.append({"path": path.relative_to(root).as_posix(), "content": content})
        total += len(content)
    return chosen


async def propose(diff: str, docs: Sequence[Mapping[str, str]], ask: Ask) -> DocsPatch:
    if not diff.strip():
        raise DocsError("the change holds no code to document")
    if not docs:
        raise DocsError("no documentation found (docs/ or README.md) to update")
    answer = await ask({"diff": diff[:200_000], "docs": list(docs)})
    patch, summary = answer.get("patch"), answer.get("summary")
    if not isinstance(patch, str) or not isinstance(summary, str):
        raise DocsError("the docs-update prompt answered without a patch and a summary")
    return DocsPatch(patch if not patch or patch.endswith("\n") else patch + "\n", summary)


def apply_patch(root: Path, patch: str) -> None:
    """Apply `patch` to the checkout; DocsError (nothing applied) when it does not fit."""
    for check in (True, False):
        args = ["git", "-C", str(root), "apply", *(["--check"] if check else []), "-"]
        done = subprocess.run(args, input=patch, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise DocsError(f"the proposed patch does not apply: {done.stderr.strip()}")
