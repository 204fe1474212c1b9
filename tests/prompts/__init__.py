"""Tests of the prompt registry; `write_prompts` lays out a prompts folder for a test."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockgate.prompts.files import PromptFilesError
from lockgate.prompts.registry import PromptRegistry

VERSION = """\
model: gpt-4o-mini
messages:
  - role: user
    content: "Rate: {{ text }}"
input:
  type: object
  required: [text]
  properties: {text: {type: string}}
"""


def write_prompts(root: Path, files: dict[str, str]) -> Path:
    """Write `files` (path relative to the prompts folder -> text) under `root/prompts`."""
    folder = root / "prompts"
    folder.mkdir(exist_ok=True)
    for relative, text in files.items():
        path = folder / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    return folder


def load(root: Path, files: dict[str, str]) -> PromptRegistry:
    return PromptRegistry.load(write_prompts(root, files))


def problems(root: Path, files: dict[str, str]) -> list[str]:
    """Every problem loading `files` reports (the load must fail)."""
    with pytest.raises(PromptFilesError) as info:
        load(root, files)
    return info.value.problems
