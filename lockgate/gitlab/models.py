"""What `GitLabAPI` answers with: frozen dataclasses, never python-gitlab objects or raw JSON."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

__all__ = [
    "Commit",
    "DiffRefs",
    "Discussion",
    "FileChange",
    "Issue",
    "MergeRequest",
    "Note",
    "Position",
]

_BINARY_DIFF = re.compile(r"^Binary files .* differ\s*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class Position:
    """A line in an MR diff, for a diff discussion (``position_type`` "text").

    GitLab's rules: give both paths (for an added file both are its path, as
    :class:`FileChange` reports them); an added line takes ``new_line`` only, a removed line
    ``old_line`` only, and an unchanged (context) line both. The SHAs are the MR's ``diff_refs``.
    """

    base_sha: str
    start_sha: str
    head_sha: str
    old_path: str
    new_path: str
    new_line: int | None = None
    old_line: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The ``position`` object of the discussions API; absent lines are left out, as
        GitLab requires (a null ``old_line`` on an added line is rejected)."""
        body: dict[str, Any] = {
            "position_type": "text",
            "base_sha": self.base_sha,
            "start_sha": self.start_sha,
            "head_sha": self.head_sha,
            "old_path": self.old_path,
            "new_path": self.new_path,
        }
        if self.new_line is not None:
            body["new_line"] = self.new_line
        if self.old_line is not None:
            body["old_line"] = self.old_line
        return body


@dataclass(frozen=True, slots=True)
class DiffRefs:
    """The three SHAs that pin an MR's current diff (a diff position must carry them)."""

    base_sha: str
    start_sha: str
    head_sha: str

    def position(
        self,
        old_path: str,
        new_path: str,
        *,
        new_line: int | None = None,
        old_line: int | None = None,
    ) -> Position:
        """A :class:`Position` in this diff."""
        return Position(
            self.base_sha, self.start_sha, self.head_sha, old_path, new_path, new_line, old_line
        )


@dataclass(frozen=True, slots=True)
class MergeRequest:
    """An MR. ``diff_refs`` (and sometimes ``sha``) is None while GitLab is still preparing
    the diff of a just-created MR; read the MR again later to review it."""

    id: int
    iid: int
    project_id: int
    source_project_id: int
    title: str
    description: str
    state: str
    draft: bool
    source_branch: str
    target_branch: str
    web_url: str
    author: str
    sha: str | None
    diff_refs: DiffRefs | None


@dataclass(frozen=True, slots=True)
class FileChange:
    """One changed file of an MR. ``diff`` holds the unified hunks (``@@ … @@`` and lines, no
    ``---``/``+++`` header), or nothing when GitLab left it out: too large, collapsed, or
    binary. Check :attr:`has_text_diff` before reading hunks."""

    old_path: str
    new_path: str
    diff: str
    new_file: bool = False
    deleted_file: bool = False
    renamed_file: bool = False
    too_large: bool = False
    collapsed: bool = False
    generated: bool = False

    @property
    def binary(self) -> bool:
        """GitLab reports a binary change as "Binary files a and b differ"."""
        return _BINARY_DIFF.search(self.diff) is not None

    @property
    def has_text_diff(self) -> bool:
        """True when ``diff`` carries hunks one can review and comment on."""
        return not (self.too_large or self.binary) and "@@" in self.diff


@dataclass(frozen=True, slots=True)
class Commit:
    sha: str
    title: str
    message: str
    author_name: str


@dataclass(frozen=True, slots=True)
class Note:
    id: int
    body: str
    author: str
    system: bool


@dataclass(frozen=True, slots=True)
class Discussion:
    """A thread. ``position`` is its first note's diff position; None for a general thread."""

    id: str
    notes: tuple[Note, ...]
    position: Position | None
    individual_note: bool = False


@dataclass(frozen=True, slots=True)
class Issue:
    id: int
    iid: int
    project_id: int
    title: str
    description: str
    state: str
    web_url: str
