"""A merge request's diff as typed data: parsing, and request-sized chunks.

Two sources give the same `FileDiff` list: `git diff` output in a job's checkout
(`parse_git_diff` of `git_diff.read_git_diff`), and GitLab's per-file changes, whose `diff` holds
the hunks only (`file_diff_from_change`). New files carry their path as both old and new path and
deleted files likewise, as GitLab does, so positions built from either source match GitLab's.
What is not worth reviewing is decided in `skips`.

Chunks are unified diff text for the `code-review` prompt, packed within a token budget estimated
at 4 characters a token: small files share a request, a file larger than the budget is split by
hunks, and a hunk larger than the budget into line windows with recomputed `@@` headers.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import PurePosixPath
from typing import Literal

__all__ = [
    "Chunk",
    "DiffLine",
    "FileDiff",
    "Hunk",
    "estimate_tokens",
    "file_diff_from_change",
    "language_of",
    "parse_git_diff",
    "parse_hunks",
    "plan_chunks",
]

CHARS_PER_TOKEN = 4
MAX_LINE_CHARS = 2000
"""Longer diff lines (minified code, data) are cut in the model's text; positions are unaffected."""

_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$")
_NO_NEWLINE = "\\"


def estimate_tokens(text: str) -> int:
    """Tokens a text costs, estimated: 4 characters a token, rounded up."""
    return -(-len(text) // CHARS_PER_TOKEN)


@dataclass(frozen=True)
class DiffLine:
    """One line of a hunk with its numbers: an added line has no old number, a removed no new."""

    kind: Literal["+", "-", " "]
    text: str
    old_line: int | None
    new_line: int | None


@dataclass(frozen=True)
class Hunk:
    old_start: int
    old_count: int
    new_start: int
    new_count: int
    section: str
    """What follows the second `@@` (often the enclosing function)."""
    lines: tuple[str, ...]
    """The body, each line with its prefix: ' ', '+', '-' or '\\' (no newline at end of file)."""

    def header(self) -> str:
        header = f"@@ -{self.old_start},{self.old_count} +{self.new_start},{self.new_count} @@"
        return f"{header} {self.section}" if self.section else header

    def text(self) -> str:
        body = "".join(f"{_cut(line)}\n" for line in self.lines)
        return f"{self.header()}\n{body}"

    def numbered(self) -> Iterator[DiffLine]:
        old, new = self.old_start, self.new_start
        for line in self.lines:
            kind, text = line[:1], line[1:]
            if kind == "+":
                yield DiffLine("+", text, None, new)
                new += 1
            elif kind == "-":
                yield DiffLine("-", text, old, None)
                old += 1
            elif kind == " " or not line:  # some tools drop the space of an empty context line
                yield DiffLine(" ", text, old, new)
                old += 1
                new += 1


@dataclass(frozen=True)
class FileDiff:
    old_path: str
    new_path: str
    hunks: tuple[Hunk, ...] = ()
    new_file: bool = False
    deleted_file: bool = False
    renamed_file: bool = False
    binary: bool = False
    too_large: bool = False
    """GitLab left the diff out (too large or collapsed): nothing to read or comment on."""
    generated: bool = False
    """GitLab marked the file generated (`.gitattributes` `gitlab-generated`)."""
    part: tuple[int, int] | None = None
    """(n, of) when this is one piece of a file split across requests."""

    @property
    def path(self) -> str:
        return self.old_path if self.deleted_file else self.new_path

    def text(self) -> str:
        """The file's unified diff, as the model reads it."""
        old = "/dev/null" if self.new_file else f"a/{self.old_path}"
        new = "/dev/null" if self.deleted_file else f"b/{self.new_path}"
        head = f"diff --git a/{self.old_path} b/{self.new_path}\n"
        if self.part is not None:
            head += f"# part {self.part[0]} of {self.part[1]} of this file's diff\n"
        return head + f"--- {old}\n+++ {new}\n" + "".join(hunk.text() for hunk in self.hunks)

    def new_lines(self) -> dict[int, DiffLine]:
        """The lines a comment can be placed on, by their number in the new file."""
        return {
            line.new_line: line
            for hunk in self.hunks
            for line in hunk.numbered()
            if line.new_line is not None
        }


# -- parsing --------------------------------------------------------------------------------------


def parse_hunks(text: str) -> tuple[Hunk, ...]:
    """The hunks of one file's diff body; lines before the first `@@` are ignored.

    A hunk's body is read by its line counts, not by its prefixes, so a removed line that reads
    `-- x` is not mistaken for a file header.
    """
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _HUNK_HEADER.match(line)), len(lines))
    hunks, _ = _read_hunks(lines, start)
    return tuple(hunks)


def _read_hunks(lines: Sequence[str], index: int) -> tuple[list[Hunk], int]:
    """Consecutive hunks from `lines[index]`; returns them and the index after the last."""
    hunks: list[Hunk] = []
    while index < len(lines):
        match = _HUNK_HEADER.match(lines[index])
        if match is None:
            break
        old_start, old_count = int(match[1]), int(match[2] if match[2] is not None else 1)
        new_start, new_count = int(match[3]), int(match[4] if match[4] is not None else 1)
        index += 1
        body: list[str] = []
        old_left, new_left = old_count, new_count
        while index < len(lines) and (old_left > 0 or new_left > 0):
            line = lines[index]
            kind = line[:1]
            if kind == "+":
                new_left -= 1
            elif kind == "-":
                old_left -= 1
            elif kind == " " or not line:
                old_left -= 1
                new_left -= 1
            elif kind != _NO_NEWLINE:
                break  # a truncated hunk: keep what was read
            body.append(line if line else " ")
            index += 1
        while index < len(lines) and lines[index].startswith(_NO_NEWLINE):
            body.append(lines[index])
            index += 1
        hunks.append(Hunk(old_start, old_count, new_start, new_count, match[5], tuple(body)))
    return hunks, index


def file_diff_from_change(
    old_path: str,
    new_path: str,
    diff: str,
    *,
    new_file: bool = False,
    deleted_file: bool = False,
    renamed_file: bool = False,
    too_large: bool = False,
    generated: bool = False,
) -> FileDiff:
    """A file of GitLab's merge request changes (its `diff` is the hunks, no header)."""
    hunks = parse_hunks(diff)
    binary = not hunks and ("Binary files " in diff or "GIT binary patch" in diff)
    return FileDiff(
        old_path=new_path if new_file else old_path,
        new_path=old_path if deleted_file else new_path,
        hunks=hunks,
        new_file=new_file,
        deleted_file=deleted_file,
        renamed_file=renamed_file,
        binary=binary,
        too_large=too_large and not hunks,
        generated=generated,
    )


def parse_git_diff(text: str) -> list[FileDiff]:
    """The files of `git diff` output (or of a plain unified diff with `---`/`+++` headers)."""
    lines = text.splitlines()
    files: list[FileDiff] = []
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.startswith("diff --git "):
            parsed, index = _read_git_file(lines, index)
            files.append(parsed)
        elif line.startswith("--- ") and index + 1 < len(lines) and lines[index + 1][:4] == "+++ ":
            old, new = _header_path(line[4:]), _header_path(lines[index + 1][4:])
            hunks, index = _read_hunks(lines, index + 2)
            files.append(_file(old, new, tuple(hunks), renamed=False, binary=False))
        else:
            index += 1
    return files


def _read_git_file(lines: Sequence[str], index: int) -> tuple[FileDiff, int]:
    old: str | None
    new: str | None
    old, new = _split_git_header(lines[index][len("diff --git ") :])
    renamed = binary = False
    new_mode = deleted_mode = False
    index += 1
    while index < len(lines) and not lines[index].startswith(("diff --git ", "@@ ")):
        line = lines[index]
        if line.startswith("rename from "):
            old, renamed = _unquote(line[len("rename from ") :]), True
        elif line.startswith("rename to "):
            new, renamed = _unquote(line[len("rename to ") :]), True
        elif line.startswith("new file mode"):
            new_mode = True
        elif line.startswith("deleted file mode"):
            deleted_mode = True
        elif line.startswith("Binary files ") or line == "GIT binary patch":
            binary = True
        elif line.startswith("--- "):
            old = _header_path(line[4:]) or old
        elif line.startswith("+++ "):
            new = _header_path(line[4:]) or new
        index += 1
    hunks, index = _read_hunks(lines, index)
    if new_mode:
        old = None
    if deleted_mode:
        new = None
    return _file(old, new, tuple(hunks), renamed=renamed, binary=binary), index


def _file(
    old: str | None, new: str | None, hunks: tuple[Hunk, ...], *, renamed: bool, binary: bool
) -> FileDiff:
    path = new or old or ""
    return FileDiff(
        old_path=old or path,
        new_path=new or old or path,
        hunks=hunks,
        new_file=old is None,
        deleted_file=new is None and old is not None,
        renamed_file=renamed or (old is not None and new is not None and old != new),
        binary=binary,
    )


def _header_path(text: str) -> str | None:
    """`a/x.py` from a `---`/`+++` header; None for /dev/null."""
    text = text.split("\t", 1)[0] if not text.startswith('"') else text
    path = _unquote(text.rstrip())
    if path == "/dev/null":
        return None
    return path[2:] if path.startswith(("a/", "b/")) else path


def _split_git_header(text: str) -> tuple[str, str]:
    """The two paths of `diff --git a/x b/x`; unambiguous when quoted or when both are equal."""
    if text.startswith('"'):
        end = _closing_quote(text)
        first, rest = text[: end + 1], text[end + 2 :]
    else:
        half = (len(text) - 1) // 2
        if len(text) % 2 == 1 and text[half] == " " and text[2:half] == text[half + 3 :]:
            first, rest = text[:half], text[half + 1 :]
        else:
            first, _, rest = text.partition(" b/")
            rest = "b/" + rest
    old, new = _unquote(first), _unquote(rest)
    return old[2:] if old.startswith("a/") else old, new[2:] if new.startswith("b/") else new


def _closing_quote(text: str) -> int:
    index = 1
    while index < len(text):
        if text[index] == "\\":
            index += 2
            continue
        if text[index] == '"':
            return index
        index += 1
    return len(text) - 1


_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\", "a": "\a", "b": "\b", "f": "\f", "r": "\r"}


def _unquote(text: str) -> str:
    """Git's C-style quoting of unusual paths: `"caf\\303\\251.txt"` is café.txt."""
    if len(text) < 2 or not (text.startswith('"') and text.endswith('"')):
        return text
    raw = bytearray()
    body, index = text[1:-1], 0
    while index < len(body):
        char = body[index]
        if char != "\\" or index + 1 == len(body):
            raw += char.encode()
            index += 1
        elif body[index + 1 : index + 4].isdigit():
            raw.append(int(body[index + 1 : index + 4], 8) & 0xFF)
            index += 4
        else:
            raw += _ESCAPES.get(body[index + 1], body[index + 1]).encode()
            index += 2
    return raw.decode("utf-8", errors="replace")


# -- chunks ---------------------------------------------------------------------------------------


@dataclass
class Chunk:
    """The diff text of one model request: whole files, or pieces of one large file."""

    files: list[FileDiff] = field(default_factory=list)
    tokens: int = 0

    def text(self) -> str:
        return "".join(file.text() for file in self.files)

    @property
    def paths(self) -> list[str]:
        return list(dict.fromkeys(file.path for file in self.files))


def plan_chunks(files: Sequence[FileDiff], budget_tokens: int) -> list[Chunk]:
    """Pack `files` into as few requests as fit `budget_tokens` each (first fit, in order).

    A file that alone exceeds the budget is split into pieces by hunks (and a hunk that alone
    exceeds it, into windows of lines); every piece repeats the file header, so each request is a
    valid diff on its own. Only a single line longer than the budget can exceed it.
    """
    budget = max(budget_tokens, 1)
    chunks: list[Chunk] = []
    for file in files:
        for piece in _pieces(file, budget):
            cost = estimate_tokens(piece.text())
            target = next((c for c in chunks if c.tokens + cost <= budget), None)
            if target is None:
                target = Chunk()
                chunks.append(target)
            target.files.append(piece)
            target.tokens += cost
    return chunks


def _pieces(file: FileDiff, budget: int) -> list[FileDiff]:
    if estimate_tokens(file.text()) <= budget:
        return [file]
    header_cost = estimate_tokens(replace(file, hunks=(), part=(99, 99)).text())
    room = max(budget - header_cost, 1)
    groups: list[list[Hunk]] = [[]]
    used = 0
    for piece in (piece for hunk in file.hunks for piece in _split_hunk(hunk, room)):
        cost = estimate_tokens(piece.text())
        if groups[-1] and used + cost > room:
            groups.append([])
            used = 0
        groups[-1].append(piece)
        used += cost
    total = len(groups)
    return [
        replace(file, hunks=tuple(group), part=(number, total))
        for number, group in enumerate(groups, 1)
    ]


def _split_hunk(hunk: Hunk, room: int) -> list[Hunk]:
    """`hunk` as windows of consecutive lines, each within `room` tokens, with exact headers."""
    if estimate_tokens(hunk.text()) <= room:
        return [hunk]
    windows: list[list[str]] = [[]]
    used = estimate_tokens(hunk.header()) + 1
    for line in hunk.lines:
        cost = estimate_tokens(_cut(line) + "\n")
        # A "no newline" marker belongs to the line before it, never starts a window.
        if windows[-1] and used + cost > room and not line.startswith(_NO_NEWLINE):
            windows.append([])
            used = estimate_tokens(hunk.header()) + 1
        windows[-1].append(line)
        used += cost
    pieces: list[Hunk] = []
    # The next line's numbers: a count of 0 puts the start on the line before (0: none).
    old = hunk.old_start if hunk.old_count else hunk.old_start + 1
    new = hunk.new_start if hunk.new_count else hunk.new_start + 1
    for window in windows:
        old_count = sum(line[:1] in " -" for line in window)
        new_count = sum(line[:1] in " +" for line in window)
        pieces.append(
            Hunk(
                old if old_count else old - 1,
                old_count,
                new if new_count else new - 1,
                new_count,
                hunk.section,
                tuple(window),
            )
        )
        old += old_count
        new += new_count
    return pieces


def _cut(line: str) -> str:
    if len(line) <= MAX_LINE_CHARS:
        return line
    return f"{line[:MAX_LINE_CHARS]} …[{len(line) - MAX_LINE_CHARS} characters cut]"


# -- language -------------------------------------------------------------------------------------

_LANGUAGES = {
    suffix: language
    for language, suffixes in {
        "Python": ".py .pyi",
        "Go": ".go",
        "TypeScript": ".ts .tsx",
        "JavaScript": ".js .jsx .mjs",
        "Ruby": ".rb",
        "Java": ".java",
        "Kotlin": ".kt",
        "Rust": ".rs",
        "C": ".c .h",
        "C++": ".cc .cpp .hpp",
        "C#": ".cs",
        "PHP": ".php",
        "Swift": ".swift",
        "Scala": ".scala",
        "Shell": ".sh",
        "Elixir": ".ex .exs",
    }.items()
    for suffix in suffixes.split()
}


def language_of(paths: Iterable[str]) -> str | None:
    """The programming language of the code files among `paths`, when there is exactly one."""
    found = {_LANGUAGES.get(PurePosixPath(path).suffix.lower()) for path in paths}
    found.discard(None)
    return found.pop() if len(found) == 1 else None
