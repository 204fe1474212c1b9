"""An AI review of a merge request, posted to GitLab idempotently.

`run_review` is the whole job, with no CLI or environment handling, so `lockgate ci review` and
the gateway's `POST /gitlab/merge-requests/review` share it. It reads the merge request and its
diff, leaves out what is not worth a model's time (`skips.skip_reason`), asks `review` (the
`code-review` prompt) once per chunk of the diff, merges the findings, then posts:

- one summary note, found again on re-runs by `SUMMARY_MARKER` at its start and updated in place;
- one diff thread per finding on a line of the diff, its body starting with a marker holding the
  finding's fingerprint; a fingerprint already among the MR's threads is not posted again;
- a finding on no line of the diff, or whose position GitLab refuses, is listed in the summary.

Fingerprints are the Code Quality report's (`quality.fingerprint`: path, normalised message, and
the line's content), so the threads, the summary and the report agree, and a re-run on the same
commit with the same findings creates nothing.

Everything the model wrote is untrusted (the diff it read may carry instructions): the notes and
threads are rendered by `review_notes`, which neutralises it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from lockgate.gitlab.api import GitLabError, InvalidPositionError
from lockgate.gitlab.diffs import (
    Chunk,
    FileDiff,
    estimate_tokens,
    file_diff_from_change,
    language_of,
    plan_chunks,
)
from lockgate.gitlab.models import DiffRefs, Discussion, FileChange, MergeRequest, Note, Position
from lockgate.gitlab.quality import (
    SEVERITIES,
    QualityIssue,
    Severity,
    at_least,
    fingerprint,
    is_severity,
    unique_fingerprints,
)
from lockgate.gitlab.review_notes import (
    SUMMARY_MARKER,
    cut,
    fingerprints_in,
    render_discussion,
    render_summary,
)
from lockgate.gitlab.skips import SkipReason, skip_reason

__all__ = [
    "CHECK_NAME",
    "Finding",
    "MergeRequestAPI",
    "ModelFinding",
    "Result",
    "ReviewAnswer",
    "ReviewError",
    "ReviewFn",
    "ReviewOptions",
    "ReviewOutcome",
    "ReviewPlan",
    "ReviewRequest",
    "merge_findings",
    "post_review",
    "prepare_review",
    "run_review",
]

CHECK_NAME = "lockgate/code-review"
PROMPT_OVERHEAD_TOKENS = 800
"""The prompt's own messages, estimated; the rest of `max_tokens` is for the diff."""
MAX_DIFF_CHARS = 190_000
"""The code-review prompt accepts a diff of at most 200,000 characters."""
MAX_TITLE_CHARS = 500
MAX_DESCRIPTION_CHARS = 4000


class ReviewError(Exception):
    """The review could not be made: the MR has no diff yet, or the model's answer is unusable."""


# -- what the model is asked and answers ----------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReviewRequest:
    """The input of one `code-review` call: one chunk of the diff and the MR's context."""

    diff: str
    title: str
    description: str
    language: str | None
    paths: tuple[str, ...]

    def input(self) -> dict[str, str]:
        """The prompt's input: `diff`, and `title`, `description`, `language` when known."""
        body = {"diff": self.diff}
        if self.title:
            body["title"] = self.title
        if self.description:
            body["description"] = self.description
        if self.language:
            body["language"] = self.language
        return body


@dataclass(frozen=True, slots=True)
class ModelFinding:
    file: str
    line: int
    severity: Severity
    message: str
    suggestion: str | None = None


@dataclass(frozen=True, slots=True)
class ReviewAnswer:
    summary: str
    findings: tuple[ModelFinding, ...]
    version: str | None = None
    """The prompt version that answered (`x-lockgate-prompt-version`), when known."""

    @classmethod
    def from_json(cls, data: object, version: str | None = None) -> ReviewAnswer:
        """The prompt's JSON answer; ReviewError when it is not a code review's shape."""
        if not isinstance(data, Mapping) or not isinstance(data.get("findings"), list):
            raise ReviewError("the prompt's answer has no `findings` list: is it a code review?")
        summary = data.get("summary")
        findings = [_model_finding(index, item) for index, item in enumerate(data["findings"])]
        return cls(summary if isinstance(summary, str) else "", tuple(findings), version)


def _model_finding(index: int, item: object) -> ModelFinding:
    where = f"findings[{index}]"
    if not isinstance(item, Mapping):
        raise ReviewError(f"the prompt's answer: {where} is not an object")
    file, line, severity = item.get("file"), item.get("line"), item.get("severity")
    message, suggestion = item.get("message"), item.get("suggestion")
    if not isinstance(file, str) or not file.strip():
        raise ReviewError(f"the prompt's answer: {where}.file is not a path")
    if not isinstance(line, int) or isinstance(line, bool) or line < 1:
        raise ReviewError(f"the prompt's answer: {where}.line is not a line number")
    if not is_severity(severity):
        raise ReviewError(f"the prompt's answer: {where}.severity is not one of {SEVERITIES}")
    if not isinstance(message, str) or not message.strip():
        raise ReviewError(f"the prompt's answer: {where}.message is empty")
    tip = suggestion if isinstance(suggestion, str) and suggestion.strip() else None
    return ModelFinding(file.strip(), line, severity, message.strip(), tip)


ReviewFn = Callable[[ReviewRequest], Awaitable[ReviewAnswer]]
"""Reviews one chunk: calls the `code-review` prompt (over HTTP, or in the gateway's process)."""


class MergeRequestAPI(Protocol):
    """The GitLab calls a review makes; `lockgate.gitlab.api.GitLabAPI` is one."""

    def merge_request(self, project: str | int, iid: int) -> MergeRequest: ...
    def merge_request_changes(self, project: str | int, iid: int) -> list[FileChange]: ...
    def notes(self, project: str | int, iid: int) -> list[Note]: ...
    def create_note(self, project: str | int, iid: int, body: str) -> Note: ...
    def update_note(self, project: str | int, iid: int, note_id: int, body: str) -> Note: ...
    def discussions(self, project: str | int, iid: int) -> list[Discussion]: ...
    def create_diff_discussion(
        self, project: str | int, iid: int, body: str, position: Position
    ) -> Discussion: ...


@dataclass(frozen=True, slots=True)
class ReviewOptions:
    max_tokens: int = 12_000
    """Per model request: the diff, title, description and the prompt's messages."""
    files: Sequence[FileDiff] | None = None
    """The diff when already read (from git); None reads GitLab's diff of the MR."""
    files_sha: str | None = None
    """The commit `files` were diffed at; GitLab's diff is used when the MR's head differs."""
    read_head: Callable[[str], str | None] | None = None
    """The start of a changed file from a checkout, to spot generated-file headers."""
    language: str | None = None
    """The code's language for the prompt; None infers it per chunk from file extensions."""
    prompt: str = "code-review"
    """The prompt reference, shown in the posted notes."""
    dry_run: bool = False
    """Read GitLab, ask the model, post nothing."""
    summary_author: str | None = None
    """The username that posts (when known): only its notes are taken for the summary."""
    concurrency: int = 4


# -- what a review found and did ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Finding:
    path: str
    line: int
    severity: Severity
    message: str
    suggestion: str | None
    fingerprint: str
    position: Position | None
    """Where on the diff a thread goes; None when the line is not in the diff."""
    reason: str | None = None
    """Why there is no position."""


Status = Literal["created", "existing", "planned", "unplaced"]


@dataclass(frozen=True, slots=True)
class Result:
    """What became of a finding: a new thread, one already there, one a dry run would create,
    or a line in the summary (`reason` says why)."""

    finding: Finding
    status: Status
    reason: str | None = None
    discussion_id: str | None = None


@dataclass
class ReviewPlan:
    """What the model found, before anything is posted."""

    merge_request: MergeRequest
    findings: list[Finding]
    summary: str
    skipped: list[tuple[str, SkipReason]]
    requests: int
    versions: list[str]
    """The prompt versions that answered."""
    warnings: list[str] = field(default_factory=list)

    def quality_issues(self, check_name: str = CHECK_NAME) -> list[QualityIssue]:
        """The Code Quality report's issues: every finding, on the diff or not."""
        return [
            QualityIssue(f.message, check_name, f.fingerprint, f.severity, f.path, f.line)
            for f in self.findings
        ]

    def prompt_label(self, prompt: str) -> str:
        """`prompt` with the versions that answered: `code-review@1.0.0`."""
        name = prompt.partition("@")[0]
        return ", ".join(f"{name}@{version}" for version in self.versions) or prompt

    def fails(self, threshold: Severity | None) -> bool:
        """True when a finding is at least as severe as `threshold` (the `--fail-on` gate)."""
        return threshold is not None and any(at_least(f.severity, threshold) for f in self.findings)


NoteAction = Literal["created", "updated", "would create", "would update"]


@dataclass
class ReviewOutcome:
    """What was posted (or, in a dry run, would be)."""

    plan: ReviewPlan
    results: list[Result]
    note_body: str
    note_action: NoteAction
    note_id: int | None

    def as_json(self) -> dict[str, object]:
        """The outcome as JSON: the gateway endpoint's answer, which `lockgate ci` reads back."""
        plan, mr = self.plan, self.plan.merge_request
        return {
            "merge_request": {"project_id": mr.project_id, "iid": mr.iid, "web_url": mr.web_url},
            "head_sha": mr.diff_refs.head_sha if mr.diff_refs else mr.sha,
            "summary": plan.summary,
            "note": {"id": self.note_id, "action": self.note_action},
            "findings": [
                {
                    "file": r.finding.path,
                    "line": r.finding.line,
                    "severity": r.finding.severity,
                    "message": r.finding.message,
                    "suggestion": r.finding.suggestion,
                    "fingerprint": r.finding.fingerprint,
                    "status": r.status,
                    "reason": r.reason,
                    "discussion_id": r.discussion_id,
                }
                for r in self.results
            ],
            "skipped": [{"file": path, "reason": str(reason)} for path, reason in plan.skipped],
            "requests": plan.requests,
            "prompt_versions": plan.versions,
            "report": [issue.as_json() for issue in plan.quality_issues()],
            "warnings": plan.warnings,
        }


# -- the job --------------------------------------------------------------------------------------


async def run_review(
    api: MergeRequestAPI,
    project: str | int,
    iid: int,
    review: ReviewFn,
    options: ReviewOptions | None = None,
) -> ReviewOutcome:
    """Review merge request `project`!`iid` with `review` and post the result (see the module):
    `prepare_review`, then `post_review`.

    `api` is synchronous (python-gitlab); its calls run in worker threads. Raises GitLabError
    when GitLab cannot be read or written (a refused diff position is not an error: the finding
    goes to the summary), ReviewError when the MR has no diff yet or `review` answers something
    that is not a review; `review`'s own exceptions propagate.
    """
    options = options or ReviewOptions()
    plan = await prepare_review(api, project, iid, review, options)
    return await post_review(api, plan, options)


async def prepare_review(
    api: MergeRequestAPI,
    project: str | int,
    iid: int,
    review: ReviewFn,
    options: ReviewOptions,
) -> ReviewPlan:
    """Read the MR and its diff, ask `review` about each chunk, merge the findings."""
    mr = await asyncio.to_thread(api.merge_request, project, iid)
    refs = mr.diff_refs
    if refs is None:
        raise ReviewError(
            f"GitLab has not computed the diff of {project}!{iid} yet; run the review again"
        )
    warnings: list[str] = []
    files = await _files(api, mr, refs, options, warnings)
    reviewable: list[FileDiff] = []
    skipped: list[tuple[str, SkipReason]] = []
    for file in files:
        reason = skip_reason(file, options.read_head)
        if reason is None:
            reviewable.append(file)
        else:
            skipped.append((file.path, reason))
    chunks = plan_chunks(reviewable, _diff_budget(mr, options.max_tokens))
    answers = await _ask(chunks, mr, review, options)
    return ReviewPlan(
        merge_request=mr,
        findings=merge_findings(answers, reviewable, refs),
        summary=_summary_text(answers),
        skipped=skipped,
        requests=len(chunks),
        versions=sorted({answer.version for answer in answers if answer.version}),
        warnings=warnings,
    )


async def post_review(
    api: MergeRequestAPI, plan: ReviewPlan, options: ReviewOptions
) -> ReviewOutcome:
    """Post the plan's threads and summary note; with `options.dry_run` only read."""
    project, iid = plan.merge_request.project_id, plan.merge_request.iid
    label = plan.prompt_label(options.prompt)
    discussions = await asyncio.to_thread(api.discussions, project, iid)
    existing = {
        value for d in discussions for note in d.notes for value in fingerprints_in(note.body)
    }
    results = [
        await _post_finding(api, project, iid, finding, existing, options, label)
        for finding in plan.findings
    ]
    body = render_summary(plan, results, options.prompt)
    notes = await asyncio.to_thread(api.notes, project, iid)
    candidates = _summary_notes(notes, options.summary_author)
    if options.dry_run:
        found = candidates[0].id if candidates else None
        return ReviewOutcome(
            plan, results, body, "would create" if found is None else "would update", found
        )
    for candidate in candidates:
        try:
            note = await asyncio.to_thread(api.update_note, project, iid, candidate.id, body)
        except GitLabError as exc:
            if exc.status == 403:
                continue  # someone else's note starting with the marker: not ours to edit
            raise
        return ReviewOutcome(plan, results, body, "updated", note.id)
    note = await asyncio.to_thread(api.create_note, project, iid, body)
    return ReviewOutcome(plan, results, body, "created", note.id)


async def _files(
    api: MergeRequestAPI,
    mr: MergeRequest,
    refs: DiffRefs,
    options: ReviewOptions,
    warnings: list[str],
) -> list[FileDiff]:
    if options.files is not None:
        if options.files_sha is None or options.files_sha == refs.head_sha:
            return list(options.files)
        warnings.append(
            f"the checkout is at {options.files_sha[:12]} but the merge request's head is "
            f"{refs.head_sha[:12]}: reviewing GitLab's diff of the merge request instead"
        )
    changes = await asyncio.to_thread(api.merge_request_changes, mr.project_id, mr.iid)
    return [
        file_diff_from_change(
            change.old_path,
            change.new_path,
            change.diff,
            new_file=change.new_file,
            deleted_file=change.deleted_file,
            renamed_file=change.renamed_file,
            too_large=change.too_large or (change.collapsed and not change.diff),
            generated=change.generated,
        )
        for change in changes
    ]


def _diff_budget(mr: MergeRequest, max_tokens: int) -> int:
    context = cut(mr.title, MAX_TITLE_CHARS) + cut(mr.description, MAX_DESCRIPTION_CHARS)
    budget = max_tokens - PROMPT_OVERHEAD_TOKENS - estimate_tokens(context)
    return min(max(budget, 500), MAX_DIFF_CHARS // 4)


async def _ask(
    chunks: Sequence[Chunk], mr: MergeRequest, review: ReviewFn, options: ReviewOptions
) -> list[ReviewAnswer]:
    slots = asyncio.Semaphore(max(options.concurrency, 1))

    async def ask(chunk: Chunk) -> ReviewAnswer:
        request = ReviewRequest(
            diff=chunk.text(),
            title=cut(mr.title, MAX_TITLE_CHARS),
            description=cut(mr.description, MAX_DESCRIPTION_CHARS),
            language=options.language or language_of(chunk.paths),
            paths=tuple(chunk.paths),
        )
        async with slots:
            return await review(request)

    return list(await asyncio.gather(*(ask(chunk) for chunk in chunks)))


def merge_findings(
    answers: Sequence[ReviewAnswer], files: Sequence[FileDiff], refs: DiffRefs
) -> list[Finding]:
    """The findings of every chunk, in a stable order, with fingerprints and diff positions.

    A finding repeated (same file, line and message) keeps its most severe copy. Paths the model
    wrote loosely (`./x`, `b/x`, a suffix of one file's path) are matched to the diff's files.
    """
    by_path = {file.new_path: file for file in files}
    by_path.update({file.old_path: file for file in files if file.old_path not in by_path})
    line_maps = {file.new_path: file.new_lines() for file in files}
    chosen: dict[tuple[str, int, str], ModelFinding] = {}
    for answer in answers:
        for item in answer.findings:
            path = _match_path(item.file, by_path)
            key = (path, item.line, item.message)
            known = chosen.get(key)
            if known is None or at_least(item.severity, known.severity):
                chosen[key] = ModelFinding(
                    path, item.line, item.severity, item.message, item.suggestion
                )
    ordered = sorted(
        chosen.values(),
        key=lambda f: (-SEVERITIES.index(f.severity), f.file, f.line, f.message),
    )
    anchors: list[str] = []
    for item in ordered:
        line = line_maps.get(item.file, {}).get(item.line)
        anchors.append(fingerprint(item.file, item.message, line.text if line else CHECK_NAME))
    findings: list[Finding] = []
    for item, value in zip(ordered, unique_fingerprints(anchors), strict=True):
        file = by_path.get(item.file)
        line = line_maps.get(item.file, {}).get(item.line)
        position, reason = None, None
        if file is None:
            reason = "the file is not in the reviewed diff"
        elif line is None:
            reason = f"line {item.line} is not part of the diff"
        else:
            position = refs.position(
                file.old_path,
                file.new_path,
                new_line=line.new_line,
                old_line=line.old_line if line.kind == " " else None,
            )
        findings.append(
            Finding(
                path=item.file,
                line=item.line,
                severity=item.severity,
                message=item.message,
                suggestion=item.suggestion,
                fingerprint=value,
                position=position,
                reason=reason,
            )
        )
    return findings


def _match_path(name: str, files: Mapping[str, FileDiff]) -> str:
    path = name.strip().strip("`").removeprefix("./")
    if path not in files and path.startswith(("a/", "b/")) and path[2:] in files:
        path = path[2:]
    path = path.lstrip("/")
    if path in files:
        return files[path].new_path
    ends = {file.new_path for known, file in files.items() if known.endswith("/" + path)}
    return ends.pop() if len(ends) == 1 else path


async def _post_finding(
    api: MergeRequestAPI,
    project: str | int,
    iid: int,
    finding: Finding,
    existing: set[str],
    options: ReviewOptions,
    label: str,
) -> Result:
    if finding.position is None:
        return Result(finding, "unplaced", finding.reason)
    if finding.fingerprint in existing:
        return Result(finding, "existing")
    if options.dry_run:
        return Result(finding, "planned")
    body = render_discussion(finding, label)
    try:
        thread = await asyncio.to_thread(
            api.create_diff_discussion, project, iid, body, finding.position
        )
    except InvalidPositionError as exc:
        return Result(finding, "unplaced", f"GitLab refused the position ({exc.detail})")
    except GitLabError as exc:
        if exc.status in (401, 403, 404):
            raise  # no thread can be posted: say so rather than list them all
        return Result(finding, "unplaced", f"GitLab failed to create the thread ({exc.detail})")
    existing.add(finding.fingerprint)
    return Result(finding, "created", discussion_id=thread.id)


def _summary_notes(notes: Sequence[Note], author: str | None) -> list[Note]:
    """Notes that may be the summary of an earlier run, oldest first: they start with the marker
    (and are by `author`, when known)."""
    return [
        note
        for note in notes
        if not note.system
        and note.body.startswith(SUMMARY_MARKER)
        and (author is None or note.author == author)
    ]


def _summary_text(answers: Sequence[ReviewAnswer]) -> str:
    texts = list(dict.fromkeys(a.summary.strip() for a in answers if a.summary.strip()))
    if len(texts) <= 1:
        return texts[0] if texts else ""
    return "\n".join(f"- {' '.join(text.split())}" for text in texts)
