"""The notes a review posts: the summary note, the diff threads, and the markers in them.

The summary note starts with `SUMMARY_MARKER`, so a re-run finds it and updates it in place; a diff
thread starts with `finding_marker(fingerprint)`, so a re-run finds the findings already posted
(`fingerprints_in`). The same plan and results always render the same text.

Everything the model wrote is untrusted (the diff it read may carry instructions): it is posted
with HTML comments, @mentions and GitLab quick actions (`/merge` at a line start) neutralised.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING

from lockgate.gitlab.quality import SEVERITIES

if TYPE_CHECKING:  # review.py imports this module; its classes are needed for types only
    from lockgate.gitlab.review import Finding, Result, ReviewPlan

__all__ = [
    "MAX_LISTED",
    "SUMMARY_MARKER",
    "cut",
    "finding_marker",
    "fingerprints_in",
    "render_discussion",
    "render_summary",
]

SUMMARY_MARKER = "<!-- lockgate:review -->"
MAX_LISTED = 100
"""Findings and skipped files listed in the summary at most; the report has them all."""

_FINDING_MARKER = re.compile(r"<!-- lockgate:finding ([0-9a-f]{32}) -->")


def finding_marker(value: str) -> str:
    return f"<!-- lockgate:finding {value} -->"


def fingerprints_in(body: str) -> list[str]:
    """The finding fingerprints marked in a note's body."""
    return _FINDING_MARKER.findall(body)


def render_discussion(finding: Finding, prompt: str) -> str:
    """A diff thread's body: the marker, the finding, the suggestion, where it came from."""
    parts = [
        finding_marker(finding.fingerprint),
        f"**{finding.severity.capitalize()}**: {_safe(finding.message)}",
    ]
    if finding.suggestion:
        suggestion = finding.suggestion.strip("\n")
        if "\n" in suggestion:
            parts.append(f"Suggestion:\n\n{_fenced(suggestion)}")
        else:
            parts.append(f"Suggestion: {_safe(suggestion)}")
    parts.append(f"<sub>Lockgate review · {_code(prompt)}</sub>")
    return "\n\n".join(parts) + "\n"


def render_summary(plan: ReviewPlan, results: Sequence[Result], prompt: str) -> str:
    """The summary note: the same findings and diff give the same text, so re-runs agree."""
    parts = [SUMMARY_MARKER, "### Lockgate review"]
    if plan.summary:
        parts.append(_safe(plan.summary))
    if not plan.requests:
        parts.append("Nothing to review: no changed file is one the review reads.")
    parts.append(_counts(results))
    unplaced = [r for r in results if r.status == "unplaced"]
    if unplaced:
        lines = ["#### Findings not on a line of the diff", ""]
        for result in unplaced[:MAX_LISTED]:
            f = result.finding
            entry = f"- **{f.severity.capitalize()}** {_code(f.path)} line {f.line}: "
            entry += _one_line(f.message, 1000)
            if f.suggestion:
                entry += f" Suggestion: {_one_line(f.suggestion, 500)}"
            lines.append(entry)
        if len(unplaced) > MAX_LISTED:
            lines.append(f"- … and {len(unplaced) - MAX_LISTED} more in the Code Quality report")
        parts.append("\n".join(lines))
    parts.append(_footer(plan, prompt))
    return "\n\n".join(parts) + "\n"


def _counts(results: Sequence[Result]) -> str:
    if not results:
        return "**No findings.**"
    by_severity = [
        f"{count} {severity}"
        for severity in reversed(SEVERITIES)
        if (count := sum(r.finding.severity == severity for r in results))
    ]
    on_diff = sum(r.status != "unplaced" for r in results)
    noun = "finding" if len(results) == 1 else "findings"
    text = f"**{len(results)} {noun}**: {', '.join(by_severity)}."
    if on_diff:
        text += f" {on_diff} as threads on the diff."
    if on_diff < len(results):
        text += f" {len(results) - on_diff} listed below."
    return text


def _footer(plan: ReviewPlan, prompt: str) -> str:
    mr = plan.merge_request
    head = mr.diff_refs.head_sha if mr.diff_refs else (mr.sha or "")
    requests = f"{plan.requests} model request{'s' if plan.requests != 1 else ''}"
    label = plan.prompt_label(prompt)
    text = f"<sub>commit {_code(head[:12])} · prompt {_code(label)} · {requests}</sub>"
    if plan.skipped:
        listed = ", ".join(
            f"{_code(path)} ({reason})" for path, reason in plan.skipped[:MAX_LISTED]
        )
        if len(plan.skipped) > MAX_LISTED:
            listed += f" and {len(plan.skipped) - MAX_LISTED} more"
        files = f"{len(plan.skipped)} file{'s' if len(plan.skipped) != 1 else ''}"
        text += f"\n\n<details><summary>Not reviewed: {files}</summary>\n\n{listed}\n\n</details>"
    return text


_MENTION = re.compile(r"(?<![\w@/`])@(?=[\w.-])")
_QUICK_ACTION = re.compile(r"^(\s*)/", re.MULTILINE)


def _safe(text: str) -> str:
    """Model text made inert: no HTML comments (markers), @mentions or quick actions."""
    text = text.replace("<!--", "&lt;!--").replace("-->", "--&gt;")
    text = _MENTION.sub("@\u2060", text)
    return _QUICK_ACTION.sub(r"\1\\/", text)


def _one_line(text: str, limit: int) -> str:
    return _safe(cut(" ".join(text.split()), limit))


def _fenced(text: str) -> str:
    """A code block no content can close early: its fence is longer than any backtick run."""
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    # A marker inside the block would still be found by `fingerprints_in`: break it.
    inert = text.replace("<!--", "<!\u2060--")
    return f"{fence}\n{inert}\n{fence}"


def _code(text: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    return f"{ticks}{text}{ticks}" if longest == 0 else f"{ticks} {text} {ticks}"


def cut(text: str, limit: int) -> str:
    """`text`, or its first `limit` - 1 characters and an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"
