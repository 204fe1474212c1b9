"""`lockgate config diff`'s output: the changes `compare` found, as text, Markdown or JSON.

Names are printed on one line; in Markdown every name and value is inline code, so no mention,
link or HTML written in a config value takes effect in a merge request note.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping

from pydantic import JsonValue

from lockgate.config.diff import Change, ChangeKind

__all__ = ["render_json", "render_text"]


def render_json(changes: list[Change], old: str, new: str) -> str:
    """The changes for a program; `old` and `new` name the two sides."""
    restart, violations = _tally(changes)
    document: dict[str, JsonValue] = {
        "old": old,
        "new": new,
        "summary": {"changes": len(changes), "restart": restart, "violations": violations},
        "changes": [change.as_json() for change in changes],
    }
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def render_text(changes: list[Change], old: str, new: str, *, markdown: bool = False) -> str:
    """The changes for a terminal, or (`markdown`) for a merge request note."""
    restart, violations = _tally(changes)
    words = [_count(len(changes), "change")] if changes else ["no changes"]
    if restart:
        words.append(f"{restart} need{'s' if restart == 1 else ''} a restart")
    if violations:
        words.append(_count(violations, "violation"))
    md = markdown
    if md:
        lines = [f"### Config diff: {', '.join(words)}", "", f"From {_code(old)} to {_code(new)}."]
    else:
        lines = [f"{new} vs {old}: {', '.join(words)}"]
    for section, items in _grouped(changes):
        lines += ["", f"**{section}**" if md else section]
        for item, found in items:
            lines += _item_lines(item, found, md)
    if restart:
        lines += ["", "A reload refuses a change that needs a restart: restart the gateway."]
    return "\n".join(lines) + "\n"


def _tally(changes: list[Change]) -> tuple[int, int]:
    """(changes that need a restart, violations)."""
    restart = sum(change.restart for change in changes)
    return restart, sum(change.violation is not None for change in changes)


def _grouped(changes: list[Change]) -> list[tuple[str, list[tuple[str | None, list[Change]]]]]:
    """Changes by section, then by item (the section's own settings first), in order."""
    sections: dict[str, dict[str | None, list[Change]]] = {}
    for change in changes:
        sections.setdefault(change.section, {}).setdefault(change.item, []).append(change)
    return [
        (section, sorted(items.items(), key=lambda entry: entry[0] is not None))
        for section, items in sections.items()
    ]


def _item_lines(item: str | None, changes: list[Change], md: bool) -> list[str]:
    bullet, nested = ("- ", "  - ") if md else ("  ", "      ")
    if item is None:
        return [bullet + _line(change, change.field or change.section, md) for change in changes]
    if len(changes) == 1 and changes[0].field is None:
        return [bullet + _line(changes[0], item, md)]
    header = f"{bullet}{_code(item)}" if md else f"{bullet}~ {_printable(item)}"
    return [header] + [nested + _line(change, change.field or "", md) for change in changes]


_SIGNS: Mapping[ChangeKind, str] = {"added": "+ ", "removed": "- ", "changed": "~ "}
_WORDS: Mapping[ChangeKind, str] = {"added": "added ", "removed": "removed ", "changed": ""}


def _line(change: Change, label: str, md: bool) -> str:
    """One change: `~ limits.rpm: 60 → 120`; in Markdown, values as inline code."""

    def shown(value: JsonValue) -> str:
        text = _display(change, value)
        return _code(text) if md else text

    text = (_WORDS if md else _SIGNS)[change.kind] + (_code(label) if md else _printable(label))
    if change.secret and change.old == change.new:
        text += ": changed (secret, not shown)"
    elif change.kind == "changed":
        text += f": {shown(change.old)} → {shown(change.new)}"
    else:
        value = change.new if change.kind == "added" else change.old
        text += f": {shown(value)}" if value is not None else ""
    if change.secret and change.old != change.new:
        text += " (secret, masked)"
    if change.restart:
        text += " — **restart needed**" if md else "  [restart needed]"
    if change.violation is not None:
        text += f" — **{change.violation}**" if md else f"  [{change.violation}]"
    return text


def _display(change: Change, value: JsonValue) -> str:
    if change.section == "prompts" and change.item is not None and change.field is not None:
        # Prompt versions and labels read better plain: 1.1.0 (10%), sha256 0123456789ab.
        if isinstance(value, str):
            return f"sha256 {value[:12]}" if change.violation is not None else value
        if isinstance(value, dict):
            return f"{value.get('version')} ({value.get('weight')}%)"
        if isinstance(value, list):
            return ", ".join(str(item) for item in value)
    return json.dumps(_pruned(value), ensure_ascii=False, separators=(", ", ": "))


def _pruned(value: JsonValue) -> JsonValue:
    """Nulls and empty collections left out: an added item shows what it sets, not every default."""
    if isinstance(value, dict):
        kept = {key: _pruned(item) for key, item in value.items()}
        return {key: item for key, item in kept.items() if item not in (None, {}, [])}
    if isinstance(value, list):
        return [_pruned(item) for item in value]
    return value


def _code(text: str) -> str:
    """`text` as Markdown inline code, whatever backticks it holds; inside it, no mention, link or
    HTML written in a config value takes effect in a merge request note."""
    text = _printable(text)
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    return f"{fence}{pad}{text}{pad}{fence}"


def _printable(text: str) -> str:
    """`text` on one line: a name holding a newline cannot start a line of its own."""
    return _CONTROL.sub(lambda match: f"\\x{ord(match.group()):02x}", text)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'' if number == 1 else 's'}"
