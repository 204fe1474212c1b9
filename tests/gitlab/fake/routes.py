"""The fake GitLab's routes: one handler per REST endpoint, and the dispatch in front of them.

Every request is answered with an injected failure, or checked as GitLab checks it (token,
project access, scope) and handed to its handler; then it is recorded in `FakeGitLab.calls`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from yarl import URL

from tests.gitlab.fake.shapes import (
    Abort,
    Ctx,
    branch_json,
    discussion_json,
    mr_json,
    note_json,
    project_json,
)
from tests.gitlab.fake.state import (
    INVALID_POSITION,
    JSON,
    FakeBranch,
    FakeDiscussion,
    FakeGitLab,
    FakeMergeRequest,
    RecordedCall,
    sha_of,
    timestamp,
)

__all__ = ["ROUTES", "create_fake_gitlab_app", "diff_line_pairs"]

DEFAULT_PER_PAGE = 20
MAX_PER_PAGE = 100
API = "/api/v4"
_HUNK = re.compile(r"^@@ -(\d+)(?:,\d+)? \+(\d+)(?:,\d+)? @@")


_STATE_KEY = web.AppKey("fake_gitlab", FakeGitLab)


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


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


def _paginated(ctx: Ctx, items: list[Any]) -> web.Response:
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


def get_project(ctx: Ctx) -> web.Response:
    return _json(project_json(ctx, ctx.project))


def get_merge_request(ctx: Ctx) -> web.Response:
    return _json(mr_json(ctx, ctx.merge_request()))


def list_diffs(ctx: Ctx) -> web.Response:
    return _paginated(ctx, ctx.merge_request().diffs)


def list_mr_commits(ctx: Ctx) -> web.Response:
    return _paginated(ctx, ctx.merge_request().commits)


def list_notes(ctx: Ctx) -> web.Response:
    mr = ctx.merge_request()
    notes = mr.notes
    if ctx.request.query.get("sort", "desc") == "desc":
        notes.reverse()
    return _paginated(ctx, [note_json(ctx, note, mr) for note in notes])


def create_note(ctx: Ctx) -> web.Response:
    mr = ctx.merge_request()
    (body,) = ctx.required("body")
    note = ctx.state._new_note(str(body), ctx.username)
    mr.discussions.append(FakeDiscussion(sha_of(f"d{note.id}"), True, [note]))
    return _json(note_json(ctx, note, mr), 201)


def update_note(ctx: Ctx) -> web.Response:
    mr = ctx.merge_request()
    note_id = ctx.int_param("note_id")
    note = next((n for n in mr.notes if n.id == note_id), None)
    if note is None:
        raise Abort(404, {"message": "404 Not found"})
    if note.author != ctx.username:
        raise Abort(403, {"message": "403 Forbidden"})
    (body,) = ctx.required("body")
    note.body, note.updated_at = str(body), timestamp()
    return _json(note_json(ctx, note, mr))


def list_discussions(ctx: Ctx) -> web.Response:
    mr = ctx.merge_request()
    return _paginated(ctx, [discussion_json(ctx, d, mr) for d in mr.discussions])


def create_discussion(ctx: Ctx) -> web.Response:
    mr = ctx.merge_request()
    (body,) = ctx.required("body")
    position = ctx.params.get("position")
    if position is not None:
        position = _valid_position(mr, position)
    kind = "DiffNote" if position else "DiscussionNote"
    note = ctx.state._new_note(str(body), ctx.username, False, kind, position)
    discussion = FakeDiscussion(sha_of(f"d{note.id}"), False, [note])
    mr.discussions.append(discussion)
    return _json(discussion_json(ctx, discussion, mr), 201)


def _valid_position(mr: FakeMergeRequest, given: Any) -> JSON:
    invalid = Abort(400, {"message": INVALID_POSITION})
    if not isinstance(given, dict):
        raise Abort(400, {"error": "position is invalid"})
    for name in ("base_sha", "start_sha", "head_sha", "position_type"):
        if not given.get(name):
            raise Abort(400, {"error": f"position[{name}] is missing"})
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


def create_merge_request(ctx: Ctx) -> web.Response:
    source, target, title = ctx.required("source_branch", "target_branch", "title")
    project = ctx.project
    if source == target:
        raise Abort(400, {"message": ["You can't use same project/branch for source and target"]})
    for branch in (source, target):
        if branch not in project.branches:
            raise Abort(400, {"message": [f"Branch {branch!r} does not exist"]})
    for mr in project.merge_requests.values():
        if mr.source_branch == source and mr.state == "opened":
            message = f"Another open merge request already exists for this source branch: !{mr.iid}"
            raise Abort(409, {"message": [message]})
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
    return _json(mr_json(ctx, mr), 201)


def compare(ctx: Ctx) -> web.Response:
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


def get_branch(ctx: Ctx) -> web.Response:
    branch = ctx.project.branches.get(ctx.request.match_info["branch"])
    if branch is None:
        raise Abort(404, {"message": "404 Branch Not Found"})
    return _json(branch_json(ctx, branch))


def create_branch(ctx: Ctx) -> web.Response:
    name, ref = (str(value) for value in ctx.required("branch", "ref"))
    project = ctx.project
    if name in project.branches:
        raise Abort(400, {"message": "Branch already exists"})
    source = project.branches.get(ref) or next(
        (b for b in project.branches.values() if b.head == ref), None
    )
    if source is None:
        raise Abort(400, {"message": "Invalid reference name: " + ref})
    project.branches[name] = FakeBranch(name, source.head, dict(source.files))
    return _json(branch_json(ctx, project.branches[name]), 201)


def get_file(ctx: Ctx) -> web.Response:
    (ref,) = ctx.required("ref")
    path = ctx.request.match_info["file_path"]
    branch = ctx.project.branches.get(str(ref))
    if branch is None:
        raise Abort(404, {"message": "404 Commit Not Found"})
    if path not in branch.files:
        raise Abort(404, {"message": "404 File Not Found"})
    content = branch.files[path].encode()
    blob = sha_of(f"blob {path} {branch.files[path]}")
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


def create_commit(ctx: Ctx) -> web.Response:
    branch_name, message, actions = ctx.required("branch", "commit_message", "actions")
    project = ctx.project
    start = ctx.params.get("start_branch")
    if start and start != branch_name and branch_name in project.branches:
        message_exists = (
            f"A branch called '{branch_name}' already exists. "
            "Switch to that branch in order to make changes"
        )
        raise Abort(400, {"message": message_exists})
    base = project.branches.get(str(start or branch_name))
    if base is None:
        raise Abort(400, {"message": "You can only create or edit files when you are on a branch"})
    files = dict(base.files)
    for action in actions:
        path, kind = action.get("file_path"), action.get("action")
        if kind == "create" and path in files:
            raise Abort(400, {"message": "A file with this name already exists"})
        if kind in ("update", "delete") and path not in files:
            raise Abort(400, {"message": "A file with this name doesn't exist"})
        if kind == "delete":
            files.pop(path)
        elif kind in ("create", "update"):
            files[path] = str(action.get("content", ""))
        else:
            raise Abort(400, {"error": "actions[0][action] does not have a valid value"})
    commit = ctx.state._commit_json(str(message), ctx.username)
    commit["parent_ids"] = [base.head]
    commit["web_url"] = f"{ctx.origin}/{project.path}/-/commit/{commit['id']}"
    project.history.append(commit)
    project.branches[str(branch_name)] = FakeBranch(str(branch_name), commit["id"], files)
    project.created_commits.append(dict(ctx.params))
    stats = {"additions": len(actions), "deletions": 0, "total": len(actions)}
    return _json({**commit, "stats": stats, "status": None}, 201)


def get_issue(ctx: Ctx) -> web.Response:
    issue = ctx.project.issues.get(ctx.int_param("iid"))
    if issue is None:
        raise Abort(404, {"message": "404 Not found"})
    path = ctx.project.path
    return _json(
        {
            "id": issue.id,
            "iid": issue.iid,
            "project_id": issue.project_id,
            "title": issue.title,
            "description": issue.description,
            "state": issue.state,
            "created_at": timestamp(),
            "updated_at": timestamp(),
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


def not_found(ctx: Ctx) -> web.Response:
    raise Abort(404, {"error": "404 Not Found"})


_P = API + "/projects/{project}"
_MR = _P + "/merge_requests/{iid}"
ROUTES: list[tuple[str, str, Callable[[Ctx], web.Response]]] = [
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
    handler: Callable[[Ctx], web.Response],
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
    ctx = Ctx(state, request, body, project)
    ctx.username = grant.username
    try:
        return handler(ctx)
    except Abort as abort:
        return _json(abort.body, abort.status)


def _endpoint(
    handler: Callable[[Ctx], web.Response],
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
