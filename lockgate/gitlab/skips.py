"""What not to send to the model: binary, deleted, vendored, lock and generated files.

A generated file is known by GitLab's mark (`.gitattributes` `gitlab-generated`), by its directory
or name, or by a header comment (`Code generated ... DO NOT EDIT`, `@generated`) in its first lines.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from enum import StrEnum
from pathlib import PurePosixPath

from lockgate.gitlab.diffs import FileDiff

__all__ = ["SkipReason", "skip_reason"]


class SkipReason(StrEnum):
    BINARY = "binary"
    TOO_LARGE = "diff too large for GitLab"
    DELETED = "deleted"
    NO_CHANGES = "no text changes"
    VENDORED = "vendored"
    LOCK_FILE = "lock file"
    GENERATED = "generated"


_VENDOR_DIRS = frozenset(
    {"vendor", "vendors", "node_modules", "third_party", "third-party", "bower_components"}
)


def _names(text: str) -> tuple[str, ...]:
    return tuple(text.split())


_LOCK_FILES = frozenset(
    _names(
        """package-lock.json npm-shrinkwrap.json yarn.lock pnpm-lock.yaml bun.lock bun.lockb
    poetry.lock pipfile.lock uv.lock pdm.lock go.sum go.work.sum cargo.lock gemfile.lock
    composer.lock mix.lock pubspec.lock podfile.lock packages.lock.json flake.lock
    gradle.lockfile package.resolved deno.lock .terraform.lock.hcl"""
    )
)
_MINIFIED_SUFFIXES = (".min.js", ".min.css", ".min.mjs", ".js.map", ".css.map")
_GENERATED_DIRS = frozenset({"generated", "__generated__", "gen-src"})
_GENERATED_SUFFIXES = _names(
    """.pb.go .pb.gw.go _pb2.py _pb2.pyi _pb2_grpc.py .pb.cc .pb.h .g.dart .freezed.dart
    _generated.go"""
)
_GENERATED_PREFIXES = ("zz_generated.",)
_HEADER_LINES = 10
"""A generated-file marker counts only in a file's first lines (a header comment)."""
_GENERATED_MARKER = re.compile(
    r"^\W{0,4}\s*Code generated\b.*\bDO NOT EDIT"
    r"|^\s*(?:#|//|/\*|\*|--|;|<!--|\{\{?/?\*).*@generated\b",
    re.IGNORECASE,
)


def skip_reason(
    file: FileDiff, read_head: Callable[[str], str | None] | None = None
) -> SkipReason | None:
    """Why `file` is not sent to the model, or None to review it.

    `read_head(path)`, when given (a job's checkout), returns the start of the new file, so a
    generated-file header is found even when no hunk touches the top of the file.
    """
    if file.binary:
        return SkipReason.BINARY
    if file.too_large:
        return SkipReason.TOO_LARGE
    if file.deleted_file:
        return SkipReason.DELETED
    parts = PurePosixPath(file.new_path).parts
    name = parts[-1].lower() if parts else ""
    if name in _LOCK_FILES:
        return SkipReason.LOCK_FILE
    directories = {part.lower() for part in parts[:-1]}
    if directories & _VENDOR_DIRS or name.endswith(_MINIFIED_SUFFIXES):
        return SkipReason.VENDORED
    if (
        file.generated
        or directories & _GENERATED_DIRS
        or name.endswith(_GENERATED_SUFFIXES)
        or name.startswith(_GENERATED_PREFIXES)
        or _has_generated_header(file, read_head)
    ):
        return SkipReason.GENERATED
    if not any(line[:1] in "+-" for hunk in file.hunks for line in hunk.lines):
        return SkipReason.NO_CHANGES
    return None


def _has_generated_header(file: FileDiff, read_head: Callable[[str], str | None] | None) -> bool:
    head: Iterable[str] = (
        line.text
        for hunk in file.hunks
        for line in hunk.numbered()
        if line.new_line is not None and line.new_line <= _HEADER_LINES
    )
    if read_head is not None:
        text = read_head(file.new_path)
        if text is not None:
            head = text.splitlines()[:_HEADER_LINES]
    return any(_GENERATED_MARKER.search(line) for line in head)
