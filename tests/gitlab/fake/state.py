"""The fake GitLab's state: projects, merge requests, notes, tokens, and every request it saw.

Seeded by tests (`add_project`, `add_merge_request`, `set_token`...), changed by the routes, read
back by tests; commits and diffs are kept in GitLab's JSON shape (`commit_item`, `diff_item`).
"""

from __future__ import annotations

import hashlib
import itertools
import threading
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

DEFAULT_TOKEN = "glpat-fake-gitlab-token"
DEFAULT_USER = "lockgate-bot"
INVALID_POSITION = (
    '400 Bad request - Note {:line_code=>["can\'t be blank", "must be a valid line code"]}'
)

JSON = dict[str, Any]


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
            base = base_sha or sha_of(f"base {found.id} {iid}")
            head = head_sha or sha_of(f"head {found.id} {iid}")
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
                diffs=[diff_item(item) for item in diffs],
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
            mr.discussions.append(FakeDiscussion(sha_of(f"d{note.id}"), position is None, [note]))
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
        now = timestamp()
        return FakeNote(next(self._ids), body, author, system, kind, position, now, now)

    def _commit_json(self, message: str, author: str) -> JSON:
        sha = sha_of(f"commit {next(self._ids)} {message}")
        return commit_item({"id": sha, "message": message, "author_name": author})

    def _seed_commit(self, item: Mapping[str, Any]) -> JSON:
        given = dict(item)
        sha = given.pop("sha", None)
        given.setdefault("id", sha or sha_of(f"seed {next(self._ids)}"))
        return commit_item(given)

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


# --- seeded JSON: commits and diff items as GitLab lists them -----------------------------------


def timestamp() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def sha_of(seed: str) -> str:
    return hashlib.sha1(seed.encode()).hexdigest()


def commit_item(given: Mapping[str, Any]) -> JSON:
    message = str(given.get("message") or given.get("title") or "A commit")
    author = str(given.get("author_name") or "Alice")
    sha = str(given["id"])
    now = timestamp()
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


def diff_item(given: Mapping[str, Any]) -> JSON:
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
