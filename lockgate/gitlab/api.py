"""A small typed layer over python-gitlab: the GitLab REST calls Lockgate makes, nothing more.

Each method is one documented REST endpoint, sent through python-gitlab's HTTP layer (auth header,
``Link``-header pagination, rate-limit and transient-error retries, error decoding) and answered
with frozen dataclasses (``lockgate.gitlab.models``), so callers never hold python-gitlab objects
or raw JSON. Every failure, HTTP or network, becomes one :class:`GitLabError` naming the operation
and GitLab's answer.

The client is synchronous (requests): fine for CI jobs; async code calls it through
``asyncio.to_thread``. Building one is cheap and makes no request, so build one per job or per
gateway request rather than sharing one across threads.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from types import TracebackType
from typing import Any
from urllib.parse import quote

import gitlab
import gitlab.exceptions
import requests

from lockgate import __version__
from lockgate.gitlab.models import (
    Commit,
    DiffRefs,
    Discussion,
    FileChange,
    Issue,
    MergeRequest,
    Note,
    Position,
)

__all__ = ["GitLabAPI", "GitLabError", "InvalidPositionError"]

USER_AGENT = f"lockgate/{__version__}"
PER_PAGE = 100  # GitLab's largest page: fewest round trips when reading every page
MAX_DETAIL_CHARS = 500  # a proxy's HTML error page is not a message
_API_SUFFIX = re.compile(r"/api/v4/?$")


# --- errors -----------------------------------------------------------------------------------


class GitLabError(Exception):
    """A GitLab call failed. ``status`` is GitLab's HTTP status, None when it was not reached.

    The message names the operation and GitLab's answer; it never carries the token.
    """

    def __init__(self, operation: str, detail: str, status: int | None = None) -> None:
        answer = f"HTTP {status}: {detail}" if status is not None else detail
        super().__init__(f"GitLab {operation} failed: {answer}")
        self.operation = operation
        self.detail = detail
        self.status = status


class InvalidPositionError(GitLabError):
    """GitLab refused a diff discussion's position (HTTP 400, typically ``line_code can't be
    blank``): the line is not in the MR's current diff. Post a general discussion instead."""


class _Malformed(Exception):
    """A GitLab answer lacks a field we need (turned into GitLabError by the caller)."""


# --- the client -------------------------------------------------------------------------------


class GitLabAPI:
    """The GitLab REST calls Lockgate makes.

    ``url`` is the instance root (``CI_SERVER_URL``); an API URL ending in ``/api/v4``
    (``CI_API_V4_URL``) works too. Authenticate with a personal, project or group access token
    (``token``), or with a CI job token (``job_token``, sent as ``JOB-TOKEN``), or neither for
    public projects. ``project`` arguments are a numeric id or a full path (``group/project``).
    Reads are retried ``retries`` times on 5xx and network errors; writes are not (a retried
    POST could post twice). Both obey 429 rate limits.
    """

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        job_token: str | None = None,
        timeout_s: float = 30,
        retries: int = 3,
        ssl_verify: bool | str = True,
    ) -> None:
        if token and job_token:
            raise ValueError("GitLabAPI takes a token or a job_token, not both")
        self.url = _API_SUFFIX.sub("", url.rstrip("/"))
        self._secrets = tuple(secret for secret in (token, job_token) if secret)
        self._retries = retries
        self._gl = gitlab.Gitlab(
            self.url,
            private_token=token or None,
            job_token=job_token or None,
            timeout=timeout_s,
            ssl_verify=ssl_verify,
            user_agent=USER_AGENT,
            # Behind a proxy GitLab's external URL may differ from ours: page links are
            # rewritten to our URL rather than followed elsewhere.
            keep_base_url=True,
        )

    def close(self) -> None:
        self._gl.session.close()

    def __enter__(self) -> GitLabAPI:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    # --- merge requests -----------------------------------------------------------------------

    def merge_request(self, project: str | int, iid: int) -> MergeRequest:
        with self._calling(f"get merge request {_mr(project, iid)}"):
            return _merge_request(self._get(f"{_mr_path(project, iid)}"))

    def merge_request_changes(self, project: str | int, iid: int) -> list[FileChange]:
        """Every changed file (``GET …/merge_requests/:iid/diffs``, all pages)."""
        with self._calling(f"list changes of {_mr(project, iid)}"):
            return [_file_change(item) for item in self._list(f"{_mr_path(project, iid)}/diffs")]

    def merge_request_commits(self, project: str | int, iid: int) -> list[Commit]:
        """The MR's commits, newest first as GitLab lists them."""
        with self._calling(f"list commits of {_mr(project, iid)}"):
            return [_commit(item) for item in self._list(f"{_mr_path(project, iid)}/commits")]

    def create_merge_request(
        self,
        project: str | int,
        source_branch: str,
        target_branch: str,
        title: str,
        description: str,
    ) -> MergeRequest:
        payload = {
            "source_branch": source_branch,
            "target_branch": target_branch,
            "title": title,
            "description": description,
        }
        operation = f"create merge request {source_branch!r} -> {target_branch!r} in {project}"
        with self._calling(operation):
            return _merge_request(self._post(f"{_project_path(project)}/merge_requests", payload))

    # --- notes and discussions ----------------------------------------------------------------

    def notes(self, project: str | int, iid: int) -> list[Note]:
        """Every note of the MR (all pages), oldest first, system notes included."""
        query = {"sort": "asc", "order_by": "created_at"}
        with self._calling(f"list notes of {_mr(project, iid)}"):
            return [_note(item) for item in self._list(f"{_mr_path(project, iid)}/notes", query)]

    def create_note(self, project: str | int, iid: int, body: str) -> Note:
        with self._calling(f"create note on {_mr(project, iid)}"):
            return _note(self._post(f"{_mr_path(project, iid)}/notes", {"body": body}))

    def update_note(self, project: str | int, iid: int, note_id: int, body: str) -> Note:
        path = f"{_mr_path(project, iid)}/notes/{note_id}"
        with self._calling(f"update note {note_id} on {_mr(project, iid)}"):
            return _note(self._put(path, {"body": body}))

    def discussions(self, project: str | int, iid: int) -> list[Discussion]:
        """Every thread of the MR (all pages), diff threads and general ones."""
        with self._calling(f"list discussions of {_mr(project, iid)}"):
            items = self._list(f"{_mr_path(project, iid)}/discussions")
            return [_discussion(item) for item in items]

    def create_diff_discussion(
        self, project: str | int, iid: int, body: str, position: Position
    ) -> Discussion:
        """A thread on a diff line. Raises :class:`InvalidPositionError` when GitLab refuses
        the position (callers usually fall back to :meth:`create_discussion`)."""
        line = position.new_line if position.new_line is not None else position.old_line
        operation = f"create diff discussion on {_mr(project, iid)} at {position.new_path}:{line}"
        payload = {"body": body, "position": position.to_json()}
        try:
            with self._calling(operation):
                return _discussion(self._post(f"{_mr_path(project, iid)}/discussions", payload))
        except GitLabError as exc:
            if exc.status == 400:
                raise InvalidPositionError(exc.operation, exc.detail, exc.status) from exc
            raise

    def create_discussion(self, project: str | int, iid: int, body: str) -> Discussion:
        """A general (resolvable) thread on the MR, not tied to a line."""
        with self._calling(f"create discussion on {_mr(project, iid)}"):
            return _discussion(self._post(f"{_mr_path(project, iid)}/discussions", {"body": body}))

    # --- repository ---------------------------------------------------------------------------

    def commits(self, project: str | int, ref_range: tuple[str, str]) -> list[Commit]:
        """Commits reachable from ``to`` but not from ``from`` (``GET …/repository/compare``),
        oldest first as GitLab lists them."""
        start, end = ref_range
        query = {"from": start, "to": end}
        with self._calling(f"compare {start}...{end} in {project}"):
            data = self._get(f"{_project_path(project)}/repository/compare", query)
            return [_commit(item) for item in _objects(data.get("commits") or [])]

    def create_branch(self, project: str | int, branch: str, ref: str) -> None:
        payload = {"branch": branch, "ref": ref}
        with self._calling(f"create branch {branch!r} from {ref!r} in {project}"):
            self._post(f"{_project_path(project)}/repository/branches", payload)

    def commit_files(
        self,
        project: str | int,
        branch: str,
        message: str,
        files: Mapping[str, str],
        start_branch: str | None = None,
    ) -> str:
        """Create or update each file (path → text content) in one commit; returns its SHA.

        Without ``start_branch`` the commit goes on the existing ``branch``; with it, GitLab
        creates ``branch`` from ``start_branch`` (``branch`` must not exist yet). Each file is
        looked up on the branch the commit starts from to choose "create" or "update".
        """
        if not files:
            raise ValueError("commit_files needs at least one file")
        base = start_branch or branch
        operation = f"commit {len(files)} file(s) to {branch!r} in {project}"
        with self._calling(operation):
            actions = [
                {
                    "action": "update" if self._file_exists(project, path, base) else "create",
                    "file_path": path,
                    "content": content,
                }
                for path, content in files.items()
            ]
            payload: dict[str, Any] = {
                "branch": branch,
                "commit_message": message,
                "actions": actions,
            }
            if start_branch:
                payload["start_branch"] = start_branch
            return _str(self._post(f"{_project_path(project)}/repository/commits", payload), "id")

    # --- projects and issues ------------------------------------------------------------------

    def project_id(self, project: str | int) -> int:
        """The numeric id of a project path (an int is returned as is, without a request)."""
        if isinstance(project, int):
            return project
        with self._calling(f"look up project {project}"):
            return _int(self._get(_project_path(project)), "id")

    def issue(self, project: str | int, iid: int) -> Issue:
        with self._calling(f"get issue {project}#{iid}"):
            data = self._get(f"{_project_path(project)}/issues/{iid}")
            return Issue(
                id=_int(data, "id"),
                iid=_int(data, "iid"),
                project_id=_int(data, "project_id"),
                title=_str(data, "title"),
                description=_text(data, "description"),
                state=_text(data, "state"),
                web_url=_text(data, "web_url"),
            )

    # --- transport ----------------------------------------------------------------------------

    @contextmanager
    def _calling(self, operation: str) -> Iterator[None]:
        """Turn whatever python-gitlab or requests raise into a GitLabError for ``operation``."""
        try:
            yield
        except gitlab.exceptions.GitlabError as exc:
            raise GitLabError(operation, self._redact(_answer(exc)), exc.response_code) from exc
        except requests.RequestException as exc:
            detail = f"could not reach {self.url} ({type(exc).__name__}: {exc})"
            raise GitLabError(operation, self._redact(detail)) from exc
        except _Malformed as exc:
            raise GitLabError(operation, f"unexpected answer: {exc}") from exc

    def _redact(self, text: str) -> str:
        for secret in self._secrets:
            text = text.replace(secret, "[REDACTED]")
        return text[:MAX_DETAIL_CHARS]

    def _reads(self) -> dict[str, Any]:
        return {"retry_transient_errors": True, "max_retries": self._retries}

    def _get(self, path: str, query: dict[str, Any] | None = None) -> Mapping[str, Any]:
        return _object(self._gl.http_get(path, query_data=query, **self._reads()))

    def _list(self, path: str, query: dict[str, Any] | None = None) -> list[Mapping[str, Any]]:
        query = {**(query or {}), "per_page": PER_PAGE}
        answer = self._gl.http_list(path, query_data=query, get_all=True, **self._reads())
        return _objects(list(answer))

    def _post(self, path: str, payload: dict[str, Any]) -> Mapping[str, Any]:
        return _object(self._gl.http_post(path, post_data=payload, max_retries=self._retries))

    def _put(self, path: str, payload: dict[str, Any]) -> Mapping[str, Any]:
        return _object(self._gl.http_put(path, post_data=payload, max_retries=self._retries))

    def _file_exists(self, project: str | int, path: str, ref: str) -> bool:
        files = f"{_project_path(project)}/repository/files/{quote(path, safe='')}"
        try:
            self._gl.http_head(files, query_data={"ref": ref}, **self._reads())
        except gitlab.exceptions.GitlabHttpError as exc:
            if exc.response_code == 404:
                return False
            raise
        return True


# --- paths ------------------------------------------------------------------------------------


def _project_path(project: str | int) -> str:
    if isinstance(project, str) and not project.strip("/"):
        raise ValueError("a GitLab project is a numeric id or a path like 'group/project'")
    return f"/projects/{quote(str(project).strip('/'), safe='')}"


def _mr_path(project: str | int, iid: int) -> str:
    return f"{_project_path(project)}/merge_requests/{int(iid)}"


def _mr(project: str | int, iid: int) -> str:
    return f"{project}!{iid}"


def _answer(exc: gitlab.exceptions.GitlabError) -> str:
    """GitLab's own words: ``message`` (a string, list or field → errors map) or
    ``error`` + ``error_description`` (OAuth-style scope errors), else the raw body."""
    body = exc.response_body
    try:
        data = json.loads(body) if body else None
    except ValueError:
        data = None
    if isinstance(data, dict):
        if "message" in data:
            return _flatten(data["message"])
        if "error" in data:
            described = data.get("error_description")
            return f"{data['error']}: {described}" if described else _flatten(data["error"])
    text = body.decode("utf-8", "replace").strip() if body else ""
    return text or _flatten(exc.error_message) or "no message"


def _flatten(message: object) -> str:
    if isinstance(message, dict):
        return "; ".join(f"{key}: {_flatten(value)}" for key, value in message.items())
    if isinstance(message, list | tuple):
        return ", ".join(_flatten(item) for item in message)
    return str(message).strip()


# --- parsing ----------------------------------------------------------------------------------


def _object(value: object) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise _Malformed(f"expected a JSON object, got {type(value).__name__}")
    return value


def _objects(value: object) -> list[Mapping[str, Any]]:
    if not isinstance(value, list):
        raise _Malformed(f"expected a JSON array, got {type(value).__name__}")
    return [_object(item) for item in value]


def _str(data: Mapping[str, Any], key: str) -> str:
    value = data.get(key)
    if not isinstance(value, str):
        raise _Malformed(f"{key!r} is not a string")
    return value


def _int(data: Mapping[str, Any], key: str) -> int:
    value = data.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _Malformed(f"{key!r} is not an integer")
    return value


def _text(data: Mapping[str, Any], key: str) -> str:
    """A string GitLab may send as null (descriptions, bodies): null reads as ""."""
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _optional_int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _username(data: Mapping[str, Any]) -> str:
    author = data.get("author")
    return _text(author, "username") if isinstance(author, dict) else ""


def _merge_request(data: Mapping[str, Any]) -> MergeRequest:
    refs = data.get("diff_refs")
    diff_refs = None
    if isinstance(refs, dict) and _text(refs, "base_sha") and _text(refs, "head_sha"):
        diff_refs = DiffRefs(
            base_sha=refs["base_sha"],
            start_sha=_text(refs, "start_sha") or refs["base_sha"],
            head_sha=refs["head_sha"],
        )
    project_id = _int(data, "project_id")
    return MergeRequest(
        id=_int(data, "id"),
        iid=_int(data, "iid"),
        project_id=project_id,
        source_project_id=_optional_int(data, "source_project_id") or project_id,
        title=_str(data, "title"),
        description=_text(data, "description"),
        state=_text(data, "state"),
        draft=bool(data.get("draft") or data.get("work_in_progress")),
        source_branch=_str(data, "source_branch"),
        target_branch=_str(data, "target_branch"),
        web_url=_text(data, "web_url"),
        author=_username(data),
        sha=_text(data, "sha") or None,
        diff_refs=diff_refs,
    )


def _file_change(data: Mapping[str, Any]) -> FileChange:
    new_path = _str(data, "new_path")
    return FileChange(
        old_path=_text(data, "old_path") or new_path,
        new_path=new_path,
        diff=_text(data, "diff"),
        new_file=bool(data.get("new_file")),
        deleted_file=bool(data.get("deleted_file")),
        renamed_file=bool(data.get("renamed_file")),
        too_large=bool(data.get("too_large")),
        collapsed=bool(data.get("collapsed")),
        generated=bool(data.get("generated_file")),
    )


def _commit(data: Mapping[str, Any]) -> Commit:
    message = _text(data, "message")
    return Commit(
        sha=_str(data, "id"),
        title=_text(data, "title") or message.partition("\n")[0],
        message=message,
        author_name=_text(data, "author_name"),
    )


def _note(data: Mapping[str, Any]) -> Note:
    return Note(
        id=_int(data, "id"),
        body=_text(data, "body"),
        author=_username(data),
        system=bool(data.get("system")),
    )


def _position(data: object) -> Position | None:
    if not isinstance(data, dict) or not data.get("head_sha"):
        return None
    new_path = _text(data, "new_path") or _text(data, "old_path")
    return Position(
        base_sha=_text(data, "base_sha"),
        start_sha=_text(data, "start_sha"),
        head_sha=_text(data, "head_sha"),
        old_path=_text(data, "old_path") or new_path,
        new_path=new_path,
        new_line=_optional_int(data, "new_line"),
        old_line=_optional_int(data, "old_line"),
    )


def _discussion(data: Mapping[str, Any]) -> Discussion:
    notes = _objects(data.get("notes") or [])
    return Discussion(
        id=_str(data, "id"),
        notes=tuple(_note(note) for note in notes),
        position=_position(notes[0].get("position")) if notes else None,
        individual_note=bool(data.get("individual_note")),
    )
