"""GitLab's JSON shapes for the fake's notes, discussions, merge requests, projects and branches.

`Ctx` is what a route handler gets: the state, the request and its parameters, the project and
the user; `Abort` ends a handler with GitLab's error status and body.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from tests.gitlab.fake.state import (
    DEFAULT_USER,
    JSON,
    FakeBranch,
    FakeDiscussion,
    FakeGitLab,
    FakeMergeRequest,
    FakeNote,
    FakeProject,
    commit_item,
    timestamp,
)


class Ctx:
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
            raise Abort(404, {"error": "404 Not Found"})
        return int(value)

    def merge_request(self) -> FakeMergeRequest:
        mr = self.project.merge_requests.get(self.int_param("iid"))
        if mr is None:
            raise Abort(404, {"message": "404 Not found"})
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
            raise Abort(400, {"error": f"{missing[0]} is missing"})
        return [self.params[name] for name in names]


class Abort(Exception):
    def __init__(self, status: int, body: Any) -> None:
        super().__init__(status)
        self.status = status
        self.body = body


def note_json(ctx: Ctx, note: FakeNote, mr: FakeMergeRequest) -> JSON:
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


def discussion_json(ctx: Ctx, discussion: FakeDiscussion, mr: FakeMergeRequest) -> JSON:
    return {
        "id": discussion.id,
        "individual_note": discussion.individual_note,
        "notes": [note_json(ctx, note, mr) for note in discussion.notes],
    }


def mr_json(ctx: Ctx, mr: FakeMergeRequest) -> JSON:
    project = ctx.state.projects[mr.project_id]
    return {
        "id": mr.id,
        "iid": mr.iid,
        "project_id": mr.project_id,
        "title": mr.title,
        "description": mr.description,
        "state": mr.state,
        "created_at": timestamp(),
        "updated_at": timestamp(),
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


def project_json(ctx: Ctx, project: FakeProject) -> JSON:
    namespace, _, name = project.path.rpartition("/")
    return {
        "id": project.id,
        "description": None,
        "name": name,
        "name_with_namespace": project.path.replace("/", " / "),
        "path": name,
        "path_with_namespace": project.path,
        "created_at": timestamp(),
        "default_branch": project.default_branch,
        "tag_list": [],
        "topics": [],
        "ssh_url_to_repo": f"git@127.0.0.1:{project.path}.git",
        "http_url_to_repo": f"{ctx.origin}/{project.path}.git",
        "web_url": f"{ctx.origin}/{project.path}",
        "visibility": "private",
        "namespace": {"id": 1, "name": namespace, "path": namespace, "full_path": namespace},
    }


def branch_json(ctx: Ctx, branch: FakeBranch) -> JSON:
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
        "commit": commit or commit_item({"id": branch.head}),
    }
