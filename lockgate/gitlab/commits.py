"""The commits a pipeline is about, read from the job's git checkout.

A merge-request pipeline: the MR's commits (`CI_MERGE_REQUEST_DIFF_BASE_SHA..HEAD`); a branch
pipeline: what the push added (`CI_COMMIT_BEFORE_SHA..CI_COMMIT_SHA`, or only the head commit when
the branch is new, GitLab then sends forty zeros).
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CommitMessage", "GitError", "commit_range", "commits_in"]

NO_COMMIT = "0" * 40
MAX_COMMITS = 200


class GitError(Exception):
    """git is missing, or refused the command (its message says why)."""


@dataclass(frozen=True, slots=True)
class CommitMessage:
    sha: str
    title: str
    message: str


def commit_range(env: Mapping[str, str]) -> str:
    """The `git log` range of the pipeline described by GitLab's predefined variables."""
    head = env.get("CI_COMMIT_SHA") or "HEAD"
    base = env.get("CI_MERGE_REQUEST_DIFF_BASE_SHA")
    if base:
        return f"{base}..{head}"
    before = env.get("CI_COMMIT_BEFORE_SHA")
    if before and before != NO_COMMIT:
        return f"{before}..{head}"
    return f"{head}~1..{head}" if _has_parent(head) else head


def commits_in(revisions: str, repository: Path = Path()) -> list[CommitMessage]:
    """The commits of `revisions` (a `git log` range), newest first, merges left out."""
    output = _git(
        repository,
        "log",
        "--no-merges",
        f"--max-count={MAX_COMMITS}",
        "--format=%H%x1f%B%x1e",
        revisions,
    )
    commits = []
    for record in output.split("\x1e"):
        sha, sep, body = record.strip("\n").partition("\x1f")
        if sep:
            message = body.strip()
            commits.append(CommitMessage(sha, message.split("\n", 1)[0], message))
    return commits


def _has_parent(revision: str) -> bool:
    try:
        _git(Path(), "rev-parse", "--verify", "--quiet", f"{revision}~1")
    except GitError:
        return False
    return True


def _git(repository: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-C", str(repository), *args],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
    except FileNotFoundError:
        raise GitError("git is not installed in this job's image") from None
    except subprocess.CalledProcessError as error:
        raise GitError(f"git {args[0]} failed: {error.stderr.strip()}") from None
    return done.stdout
