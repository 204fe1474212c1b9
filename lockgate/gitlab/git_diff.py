"""Reading a job's checkout with git: the diff of a merge request, the head commit, file heads."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from pathlib import Path

__all__ = ["GitDiffError", "git_head", "read_git_diff", "read_head_from"]


class GitDiffError(Exception):
    """`git diff` could not run: no git, not a repository, or a commit the clone lacks."""


def read_git_diff(base_sha: str, repository: Path = Path(), head: str = "HEAD") -> str:
    """`git diff base...head` in a checkout, in the form `parse_git_diff` reads.

    The options pin what user configuration could change: prefixes, colour, external diff
    drivers, rename detection and the quoting of non-ASCII paths.
    """
    command = [
        "git",
        "-C",
        str(repository),
        "-c",
        "core.quotePath=false",
        "diff",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--find-renames",
        "--src-prefix=a/",
        "--dst-prefix=b/",
        f"{base_sha}...{head}",
        "--",
    ]
    try:
        done = subprocess.run(command, capture_output=True, check=False, timeout=120)
    except FileNotFoundError:
        raise GitDiffError("git is not installed") from None
    except subprocess.TimeoutExpired:
        raise GitDiffError("git diff took more than 120 s") from None
    if done.returncode != 0:
        reason = done.stderr.decode("utf-8", errors="replace").strip().splitlines()
        raise GitDiffError(f"git diff {base_sha[:12]}...{head} failed: {' '.join(reason[:2])}")
    return done.stdout.decode("utf-8", errors="replace")


def git_head(repository: Path = Path()) -> str:
    """The commit a checkout is at."""
    try:
        done = subprocess.run(
            ["git", "-C", str(repository), "rev-parse", "--verify", "HEAD"],
            capture_output=True,
            check=False,
            timeout=30,
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        raise GitDiffError("git is not installed or does not answer") from None
    if done.returncode != 0:
        raise GitDiffError(f"{repository} is not a git checkout with a commit")
    return done.stdout.decode().strip()


def read_head_from(repository: Path) -> Callable[[str], str | None]:
    """A `read_head` for `skip_reason`: the first 4 KB of a file of the checkout at `repository`."""
    root = repository.resolve()

    def read_head(path: str) -> str | None:
        file = (root / path).resolve()
        if not file.is_relative_to(root):
            return None
        try:
            with file.open("rb") as handle:
                return handle.read(4096).decode("utf-8", errors="replace")
        except OSError:
            return None

    return read_head
