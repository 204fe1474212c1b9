"""A fake GitLab REST API on loopback, for the endpoints `lockgate.gitlab.api` calls.

Answers follow the JSON shapes of GitLab's REST API docs (merge requests, MR diffs and commits,
notes, discussions with `position`, repository compare, branches, files, commits with actions,
issues, projects by id or URL-encoded path), with GitLab's pagination headers (`x-page`,
`x-per-page`, `x-next-page`, `x-total`, `link` — python-gitlab follows `link` rel="next" for
`get_all=True`) and GitLab's error bodies. State lives in memory in a `FakeGitLab`, which also
records every request so tests can assert on what was sent.

Auth works like GitLab's: `PRIVATE-TOKEN` or `Authorization: Bearer` for access tokens,
`JOB-TOKEN` for job tokens; an unknown token gets 401, a token limited to other projects 403,
a `read_api` token 403 on writes. Diff discussion positions are validated as GitLab does in
essence: the SHAs must be the MR's `diff_refs`, the paths a changed file, and the lines a line of
its hunks — an added line by `new_line` alone, a removed line by `old_line` alone, an unchanged
line by both — else 400 with GitLab's `line_code` message.

Use the `fake_gitlab` fixture (served on the test's event loop; call the sync client through
`asyncio.to_thread`) or `threaded_fake_gitlab` (served from its own thread: for sync tests and for
code that runs its own event loop). Both come with `DEFAULT_TOKEN` registered for `lockgate-bot`.
Import the fixture you use into the test module: `from tests.gitlab.fake_gitlab import fake_gitlab`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import itertools
import re
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from yarl import URL

__all__ = [
    "DEFAULT_TOKEN",
    "INVALID_POSITION",
    "FakeGitLab",
    "RecordedCall",
    "RunningFakeGitLab",
    "ThreadedFakeGitLab",
    "fake_gitlab",
    "start_fake_gitlab",
    "threaded_fake_gitlab",
]

DEFAULT_TOKEN = "glpat-fake-gitlab-token"
DEFAULT_USER = "lockgate-bot"
INVALID_POSITION = (
    '400 Bad request - Note {:line_code=>["can\'t be blank", "must be a valid line code"]}'
)
DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
API = "/api/v4"
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")

JSON = dict[str, Any]


# --- state --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedCall:
    """One request as the fake saw it. `path` is the raw (URL-encoded) path without the query,
    e.g. `/api/v4/projects/group%2Fapp/merge_requests/1/notes`."""

    method: str
    path: str
    query: Mapping[str, str]
    json: Any
    token: str | None
    token_header: str | None  # "PRIVATE-TOKEN", "JOB-TOKEN" or "Authorization"
    status: int


@dataclass
class TokenGrant:
    username: str
    scopes: frozenset[str]
    projects: frozenset[str] | None  # ids or paths, as strings; None: every project
    job: bool


@dataclass
class FakeNote:
    id: int
    body: str
    author: str
    system: bool = False
    type: str | None = None  # None (a plain note), "DiscussionNote" or "DiffNote"
    position: JSON | None = None
    created_at: str = ""
    updated_at: str = ""


@dataclass
class FakeDiscussion:
    id: str
    individual_note: bool
    notes: list[FakeNote]

    @property
    def position(self) -> JSON | None:
        return self.notes[0].position if self.notes else None


@dataclass
class FakeMergeRequest:
    id: int
    iid: int
    project_id: int
    title: str
    description: str
    source_branch: str
    target_branch: str
    author: str
    state: str
    base_sha: str
    start_sha: str
    head_sha: str
    diffs: list[JSON]
    commits: list[JSON]  # newest first, as GitLab lists them
    discussions: list[FakeDiscussion] = field(default_factory=list)
    created_via_api: bool = False

    @property
    def notes(self) -> list[FakeNote]:
        """Every note, in creation order."""
        return sorted((n for d in self.discussions for n in d.notes), key=lambda n: n.id)

    @property
    def diff_discussions(self) -> list[FakeDiscussion]:
        return [d for d in self.discussions if d.position is not None]


@dataclass
class FakeIssue:
    id: int
    iid: int
    project_id: int
    title: str
    description: str
    state: str
    author: str


@dataclass
class FakeBranch:
    name: str
    head: str
    files: dict[str, str]


@dataclass
class FakeProject:
    id: int
    path: str
    default_branch: str
    branches: dict[str, FakeBranch] = field(default_factory=dict)
    merge_requests: dict[int, FakeMergeRequest] = field(default_factory=dict)
    issues: dict[int, FakeIssue] = field(default_factory=dict)
    history: list[JSON] = field(default_factory=list)  # commits, oldest first (for compare)
    created_commits: list[JSON] = field(default_factory=list)  # bodies of POST …/commits


@dataclass
class _Failure:
    method: str
    path_contains: str
    status: int
    body: Any
    times: int


class FakeGitLab:
    """In-memory GitLab: seed it, serve it, then assert on its state and `calls`.

    Thread-safe: the server (maybe in another thread) and the test share it under `lock`.
    """

    def __init__(self) -> None:
        self.lock = threading.RLock()
        self.projects: dict[int, FakeProject] = {}
        self.tokens: dict[str, TokenGrant] = {}
        self.calls: list[RecordedCall] = []
        self._failures: list[_Failure] = []
        self._ids = itertools.count(1)
        self._user_ids: dict[str, int] = {}

    # --- seeding ----------------------------------------------------------------------------

    def set_token(
        self,
        token: str,
        username: str = DEFAULT_USER,
        *,
        scopes: Iterable[str] = ("api",),
        projects: Iterable[str | int] | None = None,
        job: bool = False,
    ) -> None:
        """Accept `token` for `username`. `scopes` as GitLab's ("api", "read_api"); `projects`
        limits it to those (ids or paths; others answer 403); `job` makes it a CI job token,
        accepted only in the `JOB-TOKEN` header."""
        allowed = None if projects is None else frozenset(str(p) for p in projects)
        with self.lock:
            self.tokens[token] = TokenGrant(username, frozenset(scopes), allowed, job)

    def add_project(
        self, path: str, *, default_branch: str = "main", files: Mapping[str, str] | None = None
    ) -> int:
        with self.lock:
            project = FakeProject(next(self._ids), path.strip("/"), default_branch)
            first = self._commit_json("Initial commit", "Alice")
            project.history.append(first)
            project.branches[default_branch] = FakeBranch(
                default_branch, first["id"], dict(files or {})
            )
            self.projects[project.id] = project
            return project.id

    def add_merge_request(
        self,
        project: str | int,
        iid: int,
        title: str = "Add a feature",
        description: str = "",
        diffs: Iterable[Mapping[str, Any]] = (),
        commits: Iterable[Mapping[str, Any]] = (),
        base_sha: str | None = None,
        head_sha: str | None = None,
        start_sha: str | None = None,
        *,
        source_branch: str = "feature",
        target_branch: str | None = None,
        author: str = "alice",
        state: str = "opened",
    ) -> FakeMergeRequest:
        """An MR with `diffs` as GitLab's MR diffs items (`new_path` and `diff` at least; flags
        default to false) and `commits` (newest first; `id`/`title`/`message`/`author_name`)."""
        with self.lock:
            found = self.project(project)
            base = base_sha or _sha(f"base {found.id} {iid}")
            head = head_sha or _sha(f"head {found.id} {iid}")
            mr = FakeMergeRequest(
                id=next(self._ids),
                iid=iid,
                project_id=found.id,
                title=title,
                description=description,
                source_branch=source_branch,
                target_branch=target_branch or found.default_branch,
                author=author,
                state=state,
                base_sha=base,
                start_sha=start_sha or base,
                head_sha=head,
                diffs=[_diff_item(item) for item in diffs],
                commits=[self._seed_commit(item) for item in commits],
            )
            found.merge_requests[iid] = mr
            if source_branch not in found.branches:
                target = found.branches.get(mr.target_branch)
                files = dict(target.files) if target else {}
                found.branches[source_branch] = FakeBranch(source_branch, head, files)
            return mr

    def add_commits(self, project: str | int, commits: Iterable[Mapping[str, Any]]) -> list[str]:
        """Append commits (oldest first) to the project's history, for `compare`; returns SHAs."""
        with self.lock:
            found = self.project(project)
            added = [self._seed_commit(item) for item in commits]
            found.history.extend(added)
            return [commit["id"] for commit in added]

    def add_issue(
        self,
        project: str | int,
        iid: int,
        title: str = "An issue",
        description: str = "",
        *,
        state: str = "opened",
        author: str = "alice",
    ) -> FakeIssue:
        with self.lock:
            found = self.project(project)
            issue = FakeIssue(next(self._ids), iid, found.id, title, description, state, author)
            found.issues[iid] = issue
            return issue

    def add_note(
        self,
        project: str | int,
        iid: int,
        body: str,
        *,
        author: str = "alice",
        system: bool = False,
        position: Mapping[str, Any] | None = None,
    ) -> FakeNote:
        """An existing note: a plain one, or with `position` a diff thread (not validated)."""
        with self.lock:
            mr = self.merge_request(project, iid)
            kind = "DiffNote" if position else None
            note = self._new_note(body, author, system, kind, dict(position or {}) or None)
            mr.discussions.append(FakeDiscussion(_sha(f"d{note.id}"), position is None, [note]))
            return note

    def fail_next(
        self,
        method: str,
        path_contains: str,
        status: int = 500,
        body: Any = None,
        *,
        times: int = 1,
    ) -> None:
        """Answer the next `times` matching requests with `status` and `body` (JSON)."""
        answer = body if body is not None else {"message": f"{status} Injected failure"}
        with self.lock:
            self._failures.append(_Failure(method.upper(), path_contains, status, answer, times))

    # --- reading ----------------------------------------------------------------------------

    def project(self, ref: str | int) -> FakeProject:
        with self.lock:
            key = str(ref).strip("/")
            for project in self.projects.values():
                if key in (str(project.id), project.path):
                    return project
            raise KeyError(f"no project {ref!r}")

    def merge_request(self, project: str | int, iid: int) -> FakeMergeRequest:
        return self.project(project).merge_requests[iid]

    def created_merge_requests(self, project: str | int) -> list[FakeMergeRequest]:
        found = self.project(project)
        return [mr for mr in found.merge_requests.values() if mr.created_via_api]

    def find_calls(self, method: str | None = None, path_contains: str = "") -> list[RecordedCall]:
        with self.lock:
            return [
                call
                for call in self.calls
                if (method is None or call.method == method.upper()) and path_contains in call.path
            ]

    # --- helpers for the handlers -----------------------------------------------------------

    def _new_note(
        self,
        body: str,
        author: str,
        system: bool = False,
        kind: str | None = None,
        position: JSON | None = None,
    ) -> FakeNote:
        now = _now()
        return FakeNote(next(self._ids), body, author, system, kind, position, now, now)

    def _commit_json(self, message: str, author: str) -> JSON:
        sha = _sha(f"commit {next(self._ids)} {message}")
        return _commit_item({"id": sha, "message": message, "author_name": author})

    def _seed_commit(self, item: Mapping[str, Any]) -> JSON:
        given = dict(item)
        sha = given.pop("sha", None)
        given.setdefault("id", sha or _sha(f"seed {next(self._ids)}"))
        return _commit_item(given)

    def user_id(self, username: str) -> int:
        return self._user_ids.setdefault(username, len(self._user_ids) + 1)

    def _take_failure(self, method: str, path: str) -> _Failure | None:
        for failure in self._failures:
            if failure.method in (method, "*") and failure.path_contains in path:
                failure.times -= 1
                if failure.times <= 0:
                    self._failures.remove(failure)
                return failure
        return None


_STATE_KEY = web.AppKey("fake_gitlab", FakeGitLab)


# --- GitLab's JSON shapes -------------------------------------------------------------------------


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _sha(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()


def _commit_item(given: Mapping[str, Any]) -> JSON:
    message = str(given.get("message") or given.get("title") or "A commit")
    author = str(given.get("author_name") or "Alice")
    sha = str(given["id"])
    now = _now()
    return {
        "id": sha,
        "short_id": sha[:8],
        "created_at": now,
        "parent_ids": list(given.get("parent_ids", [])),
        "title": str(given.get("title") or message.partition("\n")[0]),
        "message": message,
        "author_name": author,
        "author_email": f"{author.lower().replace(' ', '.')}@example.com",
        "authored_date": now,
        "committer_name": author,
        "committer_email": f"{author.lower().replace(' ', '.')}@example.com",
        "committed_date": now,
        "trailers": {},
        "extended_trailers": {},
        "web_url": "",
    }


def _diff_item(given: Mapping[str, Any]) -> JSON:
    new_path = str(given["new_path"])
    new_file, deleted = bool(given.get("new_file")), bool(given.get("deleted_file"))
    return {
        "old_path": str(given.get("old_path") or new_path),
        "new_path": new_path,
        "a_mode": given.get("a_mode", "0" if new_file else "100644"),
        "b_mode": given.get("b_mode", "0" if deleted else "100644"),
        "diff": str(given.get("diff", "")),
        "collapsed": bool(given.get("collapsed")),
        "too_large": bool(given.get("too_large")),
        "new_file": new_file,
        "renamed_file": bool(given.get("renamed_file")),
        "deleted_file": deleted,
        "generated_file": bool(given.get("generated_file")),
    }


def diff_line_pairs(diff: str) -> set[tuple[int | None, int | None]]:
    """(old_line, new_line) of every line in the hunks: (None, n) added, (n, None) removed,
    (o, n) unchanged — the pairs a text position may name."""
    pairs: set[tuple[int | None, int | None]] = set()
    old = new = 0
    in_hunk = False
    for line in diff.splitlines():
        match = _HUNK.match(line)
        if match:
            old, new, in_hunk = int(match[1]), int(match[2]), True
        elif not in_hunk or line.startswith("\\"):
            continue
        elif line.startswith("+"):
            pairs.add((None, new))
            new += 1
        elif line.startswith("-"):
            pairs.add((old, None))
            old += 1
        else:
            pairs.add((old, new))
            old, new = old + 1, new + 1
    return pairs


class _Ctx:
    """What a handler needs: state, the request, its parameters, project and user."""

    def __init__(
        self, state: FakeGitLab, request: web.Request, body: Any, project: FakeProject | None
    ) -> None:
        self.state = state
        self.request = request
        self.params: JSON = {**request.query, **(body if isinstance(body, dict) else {})}
        self.found = project
        self.origin = f"{request.scheme}://{request.host}"
        self.username = DEFAULT_USER

    @property
    def project(self) -> FakeProject:
        assert self.found is not None
        return self.found

    def int_param(self, name: str) -> int:
        value = self.request.match_info[name]
        if not value.isdigit():
            raise _Abort(404, {"error": "404 Not Found"})
        return int(value)

    def merge_request(self) -> FakeMergeRequest:
        mr = self.project.merge_requests.get(self.int_param("iid"))
        if mr is None:
            raise _Abort(404, {"message": "404 Not found"})
        return mr

    def user(self, username: str) -> JSON:
        return {
            "id": self.state.user_id(username),
            "username": username,
            "name": username.replace("-", " ").title(),
            "state": "active",
            "locked": False,
            "avatar_url": None,
            "web_url": f"{self.origin}/{username}",
        }

    def required(self, *names: str) -> list[Any]:
        missing = [name for name in names if self.params.get(name) in (None, "")]
        if missing:
            raise _Abort(400, {"error": f"{missing[0]} is missing"})
        return [self.params[name] for name in names]


class _Abort(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def _note_json(ctx: _Ctx, note: FakeNote, mr: FakeMergeRequest) -> JSON:
    body: JSON = {
        "id": note.id,
        "type": note.type,
        "body": note.body,
        "attachment": None,
        "author": ctx.user(note.author),
        "created_at": note.created_at,
        "updated_at": note.updated_at,
        "system": note.system,
        "noteable_id": mr.id,
        "noteable_type": "MergeRequest",
        "project_id": mr.project_id,
        "noteable_iid": mr.iid,
        "commit_id": None,
        "resolvable": not note.system and note.type is not None,
        "confidential": False,
        "internal": False,
        "imported": False,
        "imported_from": "none",
    }
    if body["resolvable"]:
        body.update(resolved=False, resolved_by=None, resolved_at=None)
    if note.position is not None:
        body["position"] = {"line_range": None, **note.position}
        body["commit_id"] = note.position.get("head_sha")
    return body


def _discussion_json(ctx: _Ctx, discussion: FakeDiscussion, mr: FakeMergeRequest) -> JSON:
    return {
        "id": discussion.id,
        "individual_note": discussion.individual_note,
        "notes": [_note_json(ctx, note, mr) for note in discussion.notes],
    }


def _mr_json(ctx: _Ctx, mr: FakeMergeRequest) -> JSON:
    project = ctx.state.projects[mr.project_id]
    return {
        "id": mr.id,
        "iid": mr.iid,
        "project_id": mr.project_id,
        "title": mr.title,
        "description": mr.description,
        "state": mr.state,
        "created_at": _now(),
        "updated_at": _now(),
        "merged_by": None,
        "merge_user": None,
        "merged_at": None,
        "closed_by": None,
        "closed_at": None,
        "target_branch": mr.target_branch,
        "source_branch": mr.source_branch,
        "user_notes_count": len(mr.notes),
        "upvotes": 0,
        "downvotes": 0,
        "author": ctx.user(mr.author),
        "assignees": [],
        "assignee": None,
        "reviewers": [],
        "source_project_id": mr.project_id,
        "target_project_id": mr.project_id,
        "labels": [],
        "draft": mr.title.lower().startswith("draft:"),
        "work_in_progress": mr.title.lower().startswith("draft:"),
        "milestone": None,
        "merge_when_pipeline_succeeds": False,
        "merge_status": "can_be_merged",
        "detailed_merge_status": "mergeable",
        "sha": mr.head_sha,
        "merge_commit_sha": None,
        "squash_commit_sha": None,
        "discussion_locked": None,
        "should_remove_source_branch": None,
        "force_remove_source_branch": False,
        "reference": f"!{mr.iid}",
        "references": {
            "short": f"!{mr.iid}",
            "relative": f"!{mr.iid}",
            "full": f"{project.path}!{mr.iid}",
        },
        "web_url": f"{ctx.origin}/{project.path}/-/merge_requests/{mr.iid}",
        "time_stats": {"time_estimate": 0, "total_time_spent": 0},
        "squash": False,
        "task_completion_status": {"count": 0, "completed_count": 0},
        "has_conflicts": False,
        "blocking_discussions_resolved": True,
        "subscribed": False,
        "changes_count": str(len(mr.diffs)),
        "diff_refs": {"base_sha": mr.base_sha, "head_sha": mr.head_sha, "start_sha": mr.start_sha},
    }


def _project_json(ctx: _Ctx, project: FakeProject) -> JSON:
    namespace, _, name = project.path.rpartition("/")
    return {
        "id": project.id,
        "description": None,
        "name": name,
        "name_with_namespace": project.path.replace("/", " / "),
        "path": name,
        "path_with_namespace": project.path,
        "created_at": _now(),
        "default_branch": project.default_branch,
        "tag_list": [],
        "topics": [],
        "ssh_url_to_repo": f"git@127.0.0.1:{project.path}.git",
        "http_url_to_repo": f"{ctx.origin}/{project.path}.git",
        "web_url": f"{ctx.origin}/{project.path}",
        "visibility": "private",
        "namespace": {"id": 1, "name": namespace, "path": namespace, "full_path": namespace},
    }


def _branch_json(ctx: _Ctx, branch: FakeBranch) -> JSON:
    project = ctx.project
    commit = next((c for c in project.history if c["id"] == branch.head), None)
    return {
        "name": branch.name,
        "merged": False,
        "protected": branch.name == project.default_branch,
        "default": branch.name == project.default_branch,
        "developers_can_push": False,
        "developers_can_merge": False,
        "can_push": True,
        "web_url": f"{ctx.origin}/{project.path}/-/tree/{branch.name}",
        "commit": commit or _commit_item({"id": branch.head}),
    }


# --- handlers -------------------------------------------------------------------------------------


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def _paginated(ctx: _Ctx, items: list[Any]) -> web.Response:
    """A page of `items` with GitLab's offset-pagination headers."""
    query = ctx.request.query
    per_page = min(max(int(query.get("per_page", DEFAULT_PER_PAGE)), 1), MAX_PER_PAGE)
    page = max(int(query.get("page", 1)), 1)
    pages = max(-(-len(items) // per_page), 1)
    url = URL(ctx.origin).with_path(ctx.request.raw_path.split("?")[0], encoded=True)

    def link(number: int) -> str:
        return str(url.with_query({**query, "page": str(number), "per_page": str(per_page)}))

    rels = {"first": 1, "last": pages}
    if page > 1:
        rels["prev"] = page - 1
    if page < pages:
        rels["next"] = page + 1
    headers = {
        "X-Page": str(page),
        "X-Per-Page": str(per_page),
        "X-Prev-Page": str(page - 1) if page > 1 else "",
        "X-Next-Page": str(page + 1) if page < pages else "",
        "X-Total": str(len(items)),
        "X-Total-Pages": str(pages),
        "Link": ", ".join(f'<{link(number)}>; rel="{rel}"' for rel, number in rels.items()),
    }
    chunk = items[(page - 1) * per_page : page * per_page]
    return web.json_response(chunk, headers=headers)


def get_project(ctx: _Ctx) -> web.Response:
    return _json(_project_json(ctx, ctx.project))


def get_merge_request(ctx: _Ctx) -> web.Response:
    return _json(_mr_json(ctx, ctx.merge_request()))


def list_diffs(ctx: _Ctx) -> web.Response:
    return _paginated(ctx, ctx.merge_request().diffs)


def list_mr_commits(ctx: _Ctx) -> web.Response:
    return _paginated(ctx, ctx.merge_request().commits)


def list_notes(ctx: _Ctx) -> web.Response:
    mr = ctx.merge_request()
    notes = mr.notes
    if ctx.request.query.get("sort", "desc") == "desc":
        notes.reverse()
    return _paginated(ctx, [_note_json(ctx, note, mr) for note in notes])


def create_note(ctx: _Ctx) -> web.Response:
    mr = ctx.merge_request()
    (body,) = ctx.required("body")
    note = ctx.state._new_note(str(body), ctx.username)
    mr.discussions.append(FakeDiscussion(_sha(f"d{note.id}"), True, [note]))
    return _json(_note_json(ctx, note, mr), 201)


def update_note(ctx: _Ctx) -> web.Response:
    mr = ctx.merge_request()
    note_id = ctx.int_param("note_id")
    note = next((n for n in mr.notes if n.id == note_id), None)
    if note is None:
        raise _Abort(404, {"message": "404 Not found"})
    if note.author != ctx.username:
        raise _Abort(403, {"message": "403 Forbidden"})
    (body,) = ctx.required("body")
    note.body, note.updated_at = str(body), _now()
    return _json(_note_json(ctx, note, mr))


def list_discussions(ctx: _Ctx) -> web.Response:
    mr = ctx.merge_request()
    return _paginated(ctx, [_discussion_json(ctx, d, mr) for d in mr.discussions])


def create_discussion(ctx: _Ctx) -> web.Response:
    mr = ctx.merge_request()
    (body,) = ctx.required("body")
    position = ctx.params.get("position")
    if position is not None:
        position = _valid_position(mr, position)
    kind = "DiffNote" if position else "DiscussionNote"
    note = ctx.state._new_note(str(body), ctx.username, False, kind, position)
    discussion = FakeDiscussion(_sha(f"d{note.id}"), False, [note])
    mr.discussions.append(discussion)
    return _json(_discussion_json(ctx, discussion, mr), 201)


def _valid_position(mr: FakeMergeRequest, given: Any) -> JSON:
    invalid = _Abort(400, {"message": INVALID_POSITION})
    if not isinstance(given, dict):
        raise _Abort(400, {"error": "position is invalid"})
    for name in ("base_sha", "start_sha", "head_sha", "position_type"):
        if not given.get(name):
            raise _Abort(400, {"error": f"position[{name}] is missing"})
    if given["position_type"] != "text":
        raise invalid
    refs = (mr.base_sha, mr.start_sha, mr.head_sha)
    if (given["base_sha"], given["start_sha"], given["head_sha"]) != refs:
        raise invalid
    old_path, new_path = given.get("old_path"), given.get("new_path")
    diff = next(
        (d for d in mr.diffs if d["new_path"] == new_path and d["old_path"] == old_path), None
    )
    old_line, new_line = given.get("old_line"), given.get("new_line")
    lines = (
        int(old_line) if old_line is not None else None,
        int(new_line) if new_line is not None else None,
    )
    if diff is None or lines not in diff_line_pairs(diff["diff"]):
        raise invalid
    return {
        "base_sha": mr.base_sha,
        "start_sha": mr.start_sha,
        "head_sha": mr.head_sha,
        "old_path": old_path,
        "new_path": new_path,
        "position_type": "text",
        "old_line": lines[0],
        "new_line": lines[1],
    }


def create_merge_request(ctx: _Ctx) -> web.Response:
    source, target, title = ctx.required("source_branch", "target_branch", "title")
    project = ctx.project
    if source == target:
        raise _Abort(400, {"message": ["You can't use same project/branch for source and target"]})
    for branch in (source, target):
        if branch not in project.branches:
            raise _Abort(400, {"message": [f"Branch {branch!r} does not exist"]})
    for mr in project.merge_requests.values():
        if mr.source_branch == source and mr.state == "opened":
            message = f"Another open merge request already exists for this source branch: !{mr.iid}"
            raise _Abort(409, {"message": [message]})
    iid = max(project.merge_requests, default=0) + 1
    base = project.branches[target].head
    mr = ctx.state.add_merge_request(
        project.id,
        iid,
        str(title),
        str(ctx.params.get("description") or ""),
        base_sha=base,
        head_sha=project.branches[source].head,
        source_branch=str(source),
        target_branch=str(target),
        author=ctx.username,
    )
    mr.created_via_api = True
    return _json(_mr_json(ctx, mr), 201)


def compare(ctx: _Ctx) -> web.Response:
    start, end = ctx.required("from", "to")
    project = ctx.project
    shas = [commit["id"] for commit in project.history]

    def index(ref: str) -> int | None:
        branch = project.branches.get(ref)
        sha = branch.head if branch else ref
        matches = [i for i, known in enumerate(shas) if known.startswith(sha)]
        return matches[0] if matches else None

    first, last = index(str(start)), index(str(end))
    commits = (
        project.history[first + 1 : last + 1] if first is not None and last is not None else []
    )
    return _json(
        {
            "commit": commits[-1] if commits else None,
            "commits": commits,
            "diffs": [],
            "compare_timeout": False,
            "compare_same_ref": start == end,
            "web_url": f"{ctx.origin}/{project.path}/-/compare/{start}...{end}",
        }
    )


def get_branch(ctx: _Ctx) -> web.Response:
    branch = ctx.project.branches.get(ctx.request.match_info["branch"])
    if branch is None:
        raise _Abort(404, {"message": "404 Branch Not Found"})
    return _json(_branch_json(ctx, branch))


def create_branch(ctx: _Ctx) -> web.Response:
    name, ref = (str(value) for value in ctx.required("branch", "ref"))
    project = ctx.project
    if name in project.branches:
        raise _Abort(400, {"message": "Branch already exists"})
    source = project.branches.get(ref) or next(
        (b for b in project.branches.values() if b.head == ref), None
    )
    if source is None:
        raise _Abort(400, {"message": "Invalid reference name: " + ref})
    project.branches[name] = FakeBranch(name, source.head, dict(source.files))
    return _json(_branch_json(ctx, project.branches[name]), 201)


def get_file(ctx: _Ctx) -> web.Response:
    (ref,) = ctx.required("ref")
    path = ctx.request.match_info["file_path"]
    branch = ctx.project.branches.get(str(ref))
    if branch is None:
        raise _Abort(404, {"message": "404 Commit Not Found"})
    if path not in branch.files:
        raise _Abort(404, {"message": "404 File Not Found"})
    content = branch.files[path].encode()
    blob = _sha(f"blob {path} {branch.files[path]}")
    info = {
        "file_name": path.rpartition("/")[2],
        "file_path": path,
        "size": len(content),
        "encoding": "base64",
        "content_sha256": hashlib.sha256(content).hexdigest(),
        "ref": ref,
        "blob_id": blob,
        "commit_id": branch.head,
        "last_commit_id": branch.head,
        "execute_filemode": False,
    }
    headers = {f"X-Gitlab-{key.title().replace('_', '-')}": str(v) for key, v in info.items()}
    return web.json_response(
        {**info, "content": base64.b64encode(content).decode()}, headers=headers
    )


def create_commit(ctx: _Ctx) -> web.Response:
    branch_name, message, actions = ctx.required("branch", "commit_message", "actions")
    project = ctx.project
    start = ctx.params.get("start_branch")
    if start and start != branch_name and branch_name in project.branches:
        message_exists = (
            f"A branch called '{branch_name}' already exists. "
            "Switch to that branch in order to make changes"
        )
        raise _Abort(400, {"message": message_exists})
    base = project.branches.get(str(start or branch_name))
    if base is None:
        raise _Abort(400, {"message": "You can only create or edit files when you are on a branch"})
    files = dict(base.files)
    for action in actions:
        path, kind = action.get("file_path"), action.get("action")
        if kind == "create" and path in files:
            raise _Abort(400, {"message": "A file with this name already exists"})
        if kind in ("update", "delete") and path not in files:
            raise _Abort(400, {"message": "A file with this name doesn't exist"})
        if kind == "delete":
            files.pop(path)
        elif kind in ("create", "update"):
            files[path] = str(action.get("content", ""))
        else:
            raise _Abort(400, {"error": "actions[0][action] does not have a valid value"})
    commit = ctx.state._commit_json(str(message), ctx.username)
    commit["parent_ids"] = [base.head]
    commit["web_url"] = f"{ctx.origin}/{project.path}/-/commit/{commit['id']}"
    project.history.append(commit)
    project.branches[str(branch_name)] = FakeBranch(str(branch_name), commit["id"], files)
    project.created_commits.append(dict(ctx.params))
    stats = {"additions": len(actions), "deletions": 0, "total": len(actions)}
    return _json({**commit, "stats": stats, "status": None}, 201)


def get_issue(ctx: _Ctx) -> web.Response:
    issue = ctx.project.issues.get(ctx.int_param("iid"))
    if issue is None:
        raise _Abort(404, {"message": "404 Not found"})
    path = ctx.project.path
    return _json(
        {
            "id": issue.id,
            "iid": issue.iid,
            "project_id": issue.project_id,
            "title": issue.title,
            "description": issue.description,
            "state": issue.state,
            "created_at": _now(),
            "updated_at": _now(),
            "closed_at": None,
            "closed_by": None,
            "labels": [],
            "milestone": None,
            "assignees": [],
            "assignee": None,
            "author": ctx.user(issue.author),
            "type": "ISSUE",
            "issue_type": "issue",
            "user_notes_count": 0,
            "merge_requests_count": 0,
            "upvotes": 0,
            "downvotes": 0,
            "due_date": None,
            "confidential": False,
            "discussion_locked": None,
            "web_url": f"{ctx.origin}/{path}/-/issues/{issue.iid}",
            "time_stats": {"time_estimate": 0, "total_time_spent": 0},
            "task_completion_status": {"count": 0, "completed_count": 0},
            "references": {"short": f"#{issue.iid}", "full": f"{path}#{issue.iid}"},
        }
    )


def not_found(ctx: _Ctx) -> web.Response:
    raise _Abort(404, {"error": "404 Not Found"})


_P = API + "/projects/{project}"
_MR = _P + "/merge_requests/{iid}"
ROUTES: list[tuple[str, str, Callable[[_Ctx], web.Response]]] = [
    ("GET", _P, get_project),
    ("GET", _MR, get_merge_request),
    ("GET", _MR + "/diffs", list_diffs),
    ("GET", _MR + "/commits", list_mr_commits),
    ("GET", _MR + "/notes", list_notes),
    ("POST", _MR + "/notes", create_note),
    ("PUT", _MR + "/notes/{note_id}", update_note),
    ("GET", _MR + "/discussions", list_discussions),
    ("POST", _MR + "/discussions", create_discussion),
    ("POST", _P + "/merge_requests", create_merge_request),
    ("GET", _P + "/repository/compare", compare),
    ("GET", _P + "/repository/branches/{branch}", get_branch),
    ("POST", _P + "/repository/branches", create_branch),
    ("GET", _P + "/repository/files/{file_path}", get_file),
    ("HEAD", _P + "/repository/files/{file_path}", get_file),
    ("POST", _P + "/repository/commits", create_commit),
    ("GET", _P + "/issues/{iid}", get_issue),
    ("*", "/{tail:.*}", not_found),
]


# --- dispatch: record, inject, authenticate, authorize, answer ----------------------------------


def _credentials(request: web.Request) -> tuple[str | None, str | None]:
    for header in ("PRIVATE-TOKEN", "JOB-TOKEN"):
        if header in request.headers:
            return request.headers[header], header
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and token:
        return token, "Authorization"
    return None, None


def _answer(
    state: FakeGitLab,
    request: web.Request,
    body: Any,
    handler: Callable[[_Ctx], web.Response],
    header: str | None,
    token: str | None,
) -> web.Response:
    failure = state._take_failure(request.method, request.raw_path)
    if failure is not None:
        return _json(failure.body, failure.status)
    if handler is not_found:
        return _json({"error": "404 Not Found"}, 404)
    grant = state.tokens.get(token) if token else None
    if grant is None or grant.job != (header == "JOB-TOKEN"):
        return _json({"message": "401 Unauthorized"}, 401)
    project = None
    if "project" in request.match_info:
        try:
            project = state.project(request.match_info["project"])
        except KeyError:
            return _json({"message": "404 Project Not Found"}, 404)
        if grant.projects is not None and not {str(project.id), project.path} & grant.projects:
            return _json({"message": "403 Forbidden"}, 403)
    if request.method not in ("GET", "HEAD") and "api" not in grant.scopes:
        return _json(
            {
                "error": "insufficient_scope",
                "error_description": "The request requires higher privileges than provided "
                "by the access token.",
                "scope": "api",
            },
            403,
        )
    ctx = _Ctx(state, request, body, project)
    ctx.username = grant.username
    try:
        return handler(ctx)
    except _Abort as abort:
        return _json(abort.body, abort.status)


def _endpoint(
    handler: Callable[[_Ctx], web.Response],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handle(request: web.Request) -> web.Response:
        state = request.app[_STATE_KEY]
        raw = await request.read()
        try:
            body = await request.json() if raw else None
        except ValueError:
            body = None
        token, header = _credentials(request)
        with state.lock:
            response = _answer(state, request, body, handler, header, token)
            state.calls.append(
                RecordedCall(
                    method=request.method,
                    path=request.raw_path.split("?")[0],
                    query=dict(request.query),
                    json=body,
                    token=token,
                    token_header=header,
                    status=response.status,
                )
            )
        return response

    return handle


def create_fake_gitlab_app(state: FakeGitLab) -> web.Application:
    app = web.Application()
    app[_STATE_KEY] = state
    for method, path, handler in ROUTES:
        app.router.add_route(method, path, _endpoint(handler))
    return app


# --- serving ------------------------------------------------------------------------------------


class RunningFakeGitLab:
    """A fake GitLab serving on the current event loop (see :func:`start_fake_gitlab`)."""

    def __init__(self, state: FakeGitLab, runner: web.AppRunner, port: int) -> None:
        self.state = state
        self._runner = runner
        self.url = f"http://127.0.0.1:{port}"

    async def close(self) -> None:
        await self._runner.cleanup()

    async def __aenter__(self) -> RunningFakeGitLab:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()


async def start_fake_gitlab(state: FakeGitLab | None = None, port: int = 0) -> RunningFakeGitLab:
    """Serve `state` (a new, empty one by default) on 127.0.0.1; `port=0` picks a free port."""
    state = state if state is not None else FakeGitLab()
    runner = web.AppRunner(create_fake_gitlab_app(state), access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return RunningFakeGitLab(state, runner, site.port)


class ThreadedFakeGitLab:
    """A fake GitLab serving from its own thread and event loop, for sync callers."""

    def __init__(self, state: FakeGitLab | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        future = asyncio.run_coroutine_threadsafe(start_fake_gitlab(state), self._loop)
        self._running = future.result(timeout=10)
        self.state = self._running.state
        self.url = self._running.url

    def close(self) -> None:
        asyncio.run_coroutine_threadsafe(self._running.close(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    def __enter__(self) -> ThreadedFakeGitLab:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@pytest.fixture
async def fake_gitlab() -> AsyncIterator[RunningFakeGitLab]:
    """A fresh fake GitLab on the test's loop, `DEFAULT_TOKEN` accepted for `lockgate-bot`."""
    async with await start_fake_gitlab() as running:
        running.state.set_token(DEFAULT_TOKEN, DEFAULT_USER)
        yield running


@pytest.fixture
def threaded_fake_gitlab() -> Iterator[ThreadedFakeGitLab]:
    """A fresh fake GitLab in its own thread, `DEFAULT_TOKEN` accepted for `lockgate-bot`."""
    with ThreadedFakeGitLab() as server:
        server.state.set_token(DEFAULT_TOKEN, DEFAULT_USER)
        yield server
