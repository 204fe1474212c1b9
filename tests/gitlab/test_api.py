"""GitLabAPI against the fake GitLab: real HTTP on loopback, python-gitlab making the calls.

The tests are sync (python-gitlab is) and use the fake served from its own thread; one async test
shows the gateway's way, the client in `asyncio.to_thread` against the fake on the test's loop.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from lockgate.gitlab.api import GitLabAPI, GitLabError, InvalidPositionError
from lockgate.gitlab.models import Commit, DiffRefs, FileChange, Position
from tests.gitlab.fake_gitlab import (
    DEFAULT_TOKEN,
    INVALID_POSITION,
    FakeGitLab,
    RunningFakeGitLab,
    ThreadedFakeGitLab,
    fake_gitlab,  # noqa: F401  (fixture)
    threaded_fake_gitlab,  # noqa: F401  (fixture)
)

PROJECT = "group/app"
APP_DIFF = "\n".join(
    [
        "@@ -1,4 +1,5 @@",
        " import os",  # old 1, new 1
        "-import sys",  # old 2
        "+import json",  # new 2
        "+import re",  # new 3
        " ",  # old 3, new 4 (a blank context line)
        " def main():",  # old 4, new 5
        "@@ -10,3 +11,3 @@ def main():",
        "     x = 1",  # old 10, new 11
        "-    y = 2",  # old 11
        "+    y = 3",  # new 12
        "     return x + y",  # old 12, new 13
        "",
    ]
)


@pytest.fixture
def gitlab(threaded_fake_gitlab: ThreadedFakeGitLab) -> FakeGitLab:  # noqa: F811
    """The fake's state with one project and MR !7."""
    state = threaded_fake_gitlab.state
    project = state.add_project(PROJECT, files={"README.md": "# app\n"})
    state.add_merge_request(
        project,
        7,
        title="Parse JSON",
        description="Adds JSON support.",
        diffs=[
            {"new_path": "app.py", "diff": APP_DIFF},
            {
                "new_path": "docs/new.md",
                "new_file": True,
                "diff": "@@ -0,0 +1,2 @@\n+# New\n+text\n",
            },
            {"new_path": "old.txt", "deleted_file": True, "diff": "@@ -1 +0,0 @@\n-bye\n"},
            {"old_path": "a.py", "new_path": "b.py", "renamed_file": True, "diff": ""},
            {"new_path": "logo.png", "diff": "Binary files a/logo.png and b/logo.png differ\n"},
            {"new_path": "big.json", "too_large": True, "diff": ""},
            {"new_path": "lock.txt", "collapsed": True, "generated_file": True, "diff": ""},
        ],
        commits=[
            {"id": "c2" * 20, "message": "Use re\n\nBody.", "author_name": "Bob"},
            {"id": "c1" * 20, "title": "Add json", "message": "Add json", "author_name": "Alice"},
        ],
        base_sha="b" * 40,
        start_sha="s" * 40,
        head_sha="h" * 40,
    )
    return state


@pytest.fixture
def connect(
    threaded_fake_gitlab: ThreadedFakeGitLab,  # noqa: F811
) -> Iterator[Callable[..., GitLabAPI]]:
    """Build clients of the fake (closed after the test): `connect(token, job_token=…, url=…)`."""
    clients: list[GitLabAPI] = []

    def build(token: str | None = DEFAULT_TOKEN, **options: Any) -> GitLabAPI:
        url = options.pop("url", threaded_fake_gitlab.url)
        clients.append(GitLabAPI(url, token, timeout_s=5, **options))
        return clients[-1]

    yield build
    for client in clients:
        client.close()


@pytest.fixture
def api(connect: Callable[..., GitLabAPI]) -> GitLabAPI:
    return connect()


REFS = DiffRefs(base_sha="b" * 40, start_sha="s" * 40, head_sha="h" * 40)


# --- reading an MR ------------------------------------------------------------------------------


def test_merge_request_by_path_and_by_id(gitlab: FakeGitLab, api: GitLabAPI) -> None:
    mr = api.merge_request(PROJECT, 7)
    assert (mr.iid, mr.title, mr.description, mr.author, mr.state) == (
        7,
        "Parse JSON",
        "Adds JSON support.",
        "alice",
        "opened",
    )
    assert (mr.source_branch, mr.target_branch, mr.sha) == ("feature", "main", "h" * 40)
    assert mr.diff_refs == REFS
    assert mr.project_id == mr.source_project_id == gitlab.project(PROJECT).id
    assert mr.web_url.endswith("/group/app/-/merge_requests/7")
    assert api.merge_request(mr.project_id, 7) == mr
    assert gitlab.calls[0].path == "/api/v4/projects/group%2Fapp/merge_requests/7"
    assert gitlab.calls[0].token_header == "PRIVATE-TOKEN"


def test_changes_report_what_gitlab_left_out(gitlab: FakeGitLab, api: GitLabAPI) -> None:
    changes = {change.new_path: change for change in api.merge_request_changes(PROJECT, 7)}
    assert changes["app.py"] == FileChange("app.py", "app.py", APP_DIFF)
    assert changes["app.py"].has_text_diff
    assert changes["docs/new.md"].new_file
    assert changes["docs/new.md"].old_path == "docs/new.md"
    assert changes["old.txt"].deleted_file
    assert changes["old.txt"].has_text_diff
    renamed = changes["b.py"]
    assert (renamed.old_path, renamed.renamed_file, renamed.has_text_diff) == ("a.py", True, False)
    assert changes["logo.png"].binary
    assert not changes["logo.png"].has_text_diff
    assert changes["big.json"].too_large
    assert not changes["big.json"].has_text_diff
    lock = changes["lock.txt"]
    assert (lock.collapsed, lock.generated, lock.has_text_diff) == (True, True, False)
    assert "/merge_requests/7/diffs" in gitlab.calls[0].path


def test_changes_of_a_large_mr_span_pages(gitlab: FakeGitLab, api: GitLabAPI) -> None:
    diffs = [{"new_path": f"f{i}.py", "diff": "@@ -0,0 +1 @@\n+x\n"} for i in range(130)]
    gitlab.add_merge_request(PROJECT, 8, diffs=diffs, source_branch="many")
    changes = api.merge_request_changes(PROJECT, 8)
    assert [change.new_path for change in changes] == [f"f{i}.py" for i in range(130)]
    pages = gitlab.find_calls("GET", "/merge_requests/8/diffs")
    assert [call.query.get("page") for call in pages] == [None, "2"]


def test_merge_request_commits_newest_first(gitlab: FakeGitLab, api: GitLabAPI) -> None:
    assert api.merge_request_commits(PROJECT, 7) == [
        Commit("c2" * 20, "Use re", "Use re\n\nBody.", "Bob"),
        Commit("c1" * 20, "Add json", "Add json", "Alice"),
    ]


def test_commits_between_two_refs(gitlab: FakeGitLab, api: GitLabAPI) -> None:
    first, second, third = gitlab.add_commits(
        PROJECT, [{"message": "one"}, {"message": "two\n\nmore"}, {"message": "three"}]
    )
    commits = api.commits(PROJECT, (first, third))
    assert [(c.sha, c.title, c.message) for c in commits] == [
        (second, "two", "two\n\nmore"),
        (third, "three", "three"),
    ]
    assert gitlab.calls[-1].query == {"from": first, "to": third}
    assert api.commits(PROJECT, (third, third)) == []


# --- notes and discussions ----------------------------------------------------------------------


def test_notes_read_every_page_oldest_first(gitlab: FakeGitLab, api: GitLabAPI) -> None:
    gitlab.add_note(PROJECT, 7, "added 1 commit", author="alice", system=True)
    for number in range(249):
        gitlab.add_note(PROJECT, 7, f"note {number}", author="bob")
    notes = api.notes(PROJECT, 7)
    assert len(notes) == 250
    assert (notes[0].body, notes[0].system, notes[0].author) == ("added 1 commit", True, "alice")
    assert [note.body for note in notes[1:]] == [f"note {n}" for n in range(249)]
    calls = gitlab.find_calls("GET", "/notes")
    assert len(calls) == 3  # 100 a page
    assert calls[0].query == {"sort": "asc", "order_by": "created_at", "per_page": "100"}


def test_create_then_update_a_note(gitlab: FakeGitLab, api: GitLabAPI) -> None:
    note = api.create_note(PROJECT, 7, "## Lockgate review\nLooks good.")
    assert (note.body, note.author, note.system) == (
        "## Lockgate review\nLooks good.",
        "lockgate-bot",
        False,
    )
    updated = api.update_note(PROJECT, 7, note.id, "## Lockgate review\nUpdated.")
    assert (updated.id, updated.body) == (note.id, "## Lockgate review\nUpdated.")
    assert [n.body for n in gitlab.merge_request(PROJECT, 7).notes] == [updated.body]
    post, put = gitlab.find_calls("POST")[0], gitlab.find_calls("PUT")[0]
    assert post.json == {"body": "## Lockgate review\nLooks good."}
    assert put.path.endswith(f"/merge_requests/7/notes/{note.id}")
    assert put.json == {"body": updated.body}


def test_discussions_carry_their_position(gitlab: FakeGitLab, api: GitLabAPI) -> None:
    gitlab.add_note(PROJECT, 7, "plain")
    position = {
        "base_sha": REFS.base_sha,
        "start_sha": REFS.start_sha,
        "head_sha": REFS.head_sha,
        "old_path": "app.py",
        "new_path": "app.py",
        "position_type": "text",
        "new_line": 3,
        "old_line": None,
    }
    gitlab.add_note(PROJECT, 7, "on a line", author="lockgate-bot", position=position)
    plain, on_line = api.discussions(PROJECT, 7)
    assert plain.position is None
    assert plain.individual_note
    assert [n.body for n in plain.notes] == ["plain"]
    assert on_line.position == REFS.position("app.py", "app.py", new_line=3)
    assert on_line.notes[0].author == "lockgate-bot"


@pytest.mark.parametrize(
    ("old_line", "new_line"),
    [(None, 3), (None, 12), (2, None), (11, None), (1, 1), (3, 4), (10, 11)],
    ids=["added", "added-2", "removed", "removed-2", "unchanged", "blank-context", "hunk-2"],
)
def test_diff_discussion_on_a_diff_line(
    gitlab: FakeGitLab, api: GitLabAPI, old_line: int | None, new_line: int | None
) -> None:
    position = REFS.position("app.py", "app.py", new_line=new_line, old_line=old_line)
    discussion = api.create_diff_discussion(PROJECT, 7, "Consider `json.loads`.", position)
    assert discussion.position == position
    assert [n.body for n in discussion.notes] == ["Consider `json.loads`."]
    sent = gitlab.find_calls("POST", "/discussions")[0].json["position"]
    assert sent["position_type"] == "text"
    # GitLab wants absent lines left out, not sent as null.
    assert ("old_line" in sent, "new_line" in sent) == (old_line is not None, new_line is not None)
    assert gitlab.merge_request(PROJECT, 7).diff_discussions[0].notes[0].type == "DiffNote"


def test_diff_discussion_on_a_new_file(gitlab: FakeGitLab, api: GitLabAPI) -> None:
    position = REFS.position("docs/new.md", "docs/new.md", new_line=2)
    assert api.create_diff_discussion(PROJECT, 7, "Typo.", position).position == position


@pytest.mark.parametrize(
    "position",
    [
        REFS.position("app.py", "app.py", new_line=5),  # unchanged line without its old_line
        REFS.position("app.py", "app.py", new_line=40),  # outside the hunks
        REFS.position("app.py", "app.py", old_line=1, new_line=2),  # numbers that don't pair
        REFS.position("README.md", "README.md", new_line=1),  # not a changed file
        REFS.position("big.json", "big.json", new_line=1),  # GitLab has no diff for it
        DiffRefs("0" * 40, "s" * 40, "h" * 40).position("app.py", "app.py", new_line=3),
    ],
    ids=["context-new-only", "outside", "mismatch", "unchanged-file", "too-large", "stale-sha"],
)
def test_invalid_position_is_rejected_like_gitlab(
    gitlab: FakeGitLab, api: GitLabAPI, position: Position
) -> None:
    with pytest.raises(InvalidPositionError) as caught:
        api.create_diff_discussion(PROJECT, 7, "Hmm.", position)
    assert caught.value.status == 400
    assert caught.value.detail == INVALID_POSITION
    assert str(caught.value).startswith("GitLab create diff discussion on group/app!7 at ")
    assert gitlab.merge_request(PROJECT, 7).discussions == []


def test_general_discussion_is_the_fallback(gitlab: FakeGitLab, api: GitLabAPI) -> None:
    discussion = api.create_discussion(PROJECT, 7, "**app.py:2** Consider `json.loads`.")
    assert discussion.position is None
    assert not discussion.individual_note
    assert gitlab.find_calls("POST", "/discussions")[0].json == {
        "body": "**app.py:2** Consider `json.loads`."
    }


# --- projects, branches, commits, MRs, issues -----------------------------------------------------


def test_project_id(gitlab: FakeGitLab, api: GitLabAPI) -> None:
    project_id = gitlab.project(PROJECT).id
    assert api.project_id(PROJECT) == project_id
    assert api.project_id(str(project_id)) == project_id  # CI_PROJECT_ID is a string
    calls = len(gitlab.calls)
    assert api.project_id(project_id) == project_id
    assert len(gitlab.calls) == calls


def test_create_branch(gitlab: FakeGitLab, api: GitLabAPI) -> None:
    api.create_branch(PROJECT, "lockgate/tests", "main")
    assert gitlab.project(PROJECT).branches["lockgate/tests"].files == {"README.md": "# app\n"}
    assert gitlab.calls[-1].json == {"branch": "lockgate/tests", "ref": "main"}
    with pytest.raises(GitLabError) as caught:
        api.create_branch(PROJECT, "lockgate/tests", "main")
    assert (caught.value.status, caught.value.detail) == (400, "Branch already exists")


def test_commit_files_creates_and_updates_in_one_commit(gitlab: FakeGitLab, api: GitLabAPI) -> None:
    files = {"README.md": "# app\nMore.\n", "tests/test_new.py": "def test(): ...\n"}
    sha = api.commit_files(PROJECT, "lockgate/tests", "Add tests", files, start_branch="main")
    project = gitlab.project(PROJECT)
    branch = project.branches["lockgate/tests"]
    assert branch.head == sha
    assert branch.files == files
    assert project.branches["main"].files == {"README.md": "# app\n"}
    actions = project.created_commits[0]["actions"]
    assert [(a["action"], a["file_path"]) for a in actions] == [
        ("update", "README.md"),
        ("create", "tests/test_new.py"),
    ]
    assert project.created_commits[0]["start_branch"] == "main"
    heads = gitlab.find_calls("HEAD", "/repository/files/")
    assert [call.path.rsplit("/", 1)[1] for call in heads] == ["README.md", "tests%2Ftest_new.py"]
    assert {call.query["ref"] for call in heads} == {"main"}

    again = api.commit_files(PROJECT, "lockgate/tests", "More", {"tests/test_new.py": "pass\n"})
    assert project.branches["lockgate/tests"].head == again != sha
    assert project.created_commits[1]["actions"][0]["action"] == "update"
    assert "start_branch" not in project.created_commits[1]


def test_commit_files_refuses_nothing(api: GitLabAPI) -> None:
    with pytest.raises(ValueError, match="at least one file"):
        api.commit_files(PROJECT, "main", "Nothing", {})


def test_create_merge_request(gitlab: FakeGitLab, api: GitLabAPI) -> None:
    api.create_branch(PROJECT, "lockgate/docs", "main")
    mr = api.create_merge_request(PROJECT, "lockgate/docs", "main", "Update docs", "By Lockgate.")
    assert (mr.iid, mr.title, mr.description, mr.author) == (
        8,
        "Update docs",
        "By Lockgate.",
        "lockgate-bot",
    )
    assert [m.iid for m in gitlab.created_merge_requests(PROJECT)] == [8]
    with pytest.raises(GitLabError) as caught:
        api.create_merge_request(PROJECT, "lockgate/docs", "main", "Again", "")
    assert caught.value.status == 409
    assert caught.value.detail == (
        "Another open merge request already exists for this source branch: !8"
    )


def test_issue(gitlab: FakeGitLab, api: GitLabAPI) -> None:
    gitlab.add_issue(PROJECT, 3, "Flaky login test", "It fails on Mondays.")
    issue = api.issue(PROJECT, 3)
    assert (issue.iid, issue.title, issue.description, issue.state) == (
        3,
        "Flaky login test",
        "It fails on Mondays.",
        "opened",
    )
    assert issue.web_url.endswith("/group/app/-/issues/3")


# --- credentials and errors -----------------------------------------------------------------------


def test_job_token_goes_in_the_job_token_header(
    gitlab: FakeGitLab, connect: Callable[..., GitLabAPI]
) -> None:
    gitlab.set_token("job-secret-123", "ci-bot", job=True)
    note = connect(None, job_token="job-secret-123").create_note(PROJECT, 7, "From CI.")
    assert note.author == "ci-bot"
    call = gitlab.calls[-1]
    assert (call.token_header, call.token) == ("JOB-TOKEN", "job-secret-123")
    # A job token is no access token: GitLab answers 401 when it comes as PRIVATE-TOKEN.
    with pytest.raises(GitLabError) as caught:
        connect("job-secret-123").merge_request(PROJECT, 7)
    assert caught.value.status == 401


def test_unknown_token_is_401_without_the_token(
    gitlab: FakeGitLab, connect: Callable[..., GitLabAPI]
) -> None:
    with pytest.raises(GitLabError) as caught:
        connect("glpat-wrong-secret").notes(PROJECT, 7)
    error = caught.value
    assert (error.status, error.operation) == (401, "list notes of group/app!7")
    assert str(error) == "GitLab list notes of group/app!7 failed: HTTP 401: 401 Unauthorized"
    assert "glpat-wrong-secret" not in repr(error)


def test_token_limited_to_other_projects_is_403(
    gitlab: FakeGitLab, connect: Callable[..., GitLabAPI]
) -> None:
    gitlab.add_project("group/other")
    gitlab.set_token("glpat-other-only", "other-bot", projects=["group/other"])
    client = connect("glpat-other-only")
    assert client.project_id("group/other") == gitlab.project("group/other").id
    with pytest.raises(GitLabError) as caught:
        client.merge_request(PROJECT, 7)
    assert (caught.value.status, caught.value.detail) == (403, "403 Forbidden")


def test_read_only_token_cannot_write(
    gitlab: FakeGitLab, connect: Callable[..., GitLabAPI]
) -> None:
    gitlab.set_token("glpat-reader", "reader", scopes=["read_api"])
    client = connect("glpat-reader")
    assert client.merge_request(PROJECT, 7).iid == 7
    with pytest.raises(GitLabError) as caught:
        client.create_note(PROJECT, 7, "hi")
    assert caught.value.status == 403
    assert caught.value.detail.startswith("insufficient_scope: The request requires higher")


@pytest.mark.parametrize(
    ("call", "detail"),
    [
        (lambda api: api.merge_request(PROJECT, 99), "404 Not found"),
        (lambda api: api.merge_request("group/missing", 7), "404 Project Not Found"),
        (lambda api: api.issue(PROJECT, 5), "404 Not found"),
    ],
    ids=["mr", "project", "issue"],
)
def test_not_found_is_404(
    gitlab: FakeGitLab, api: GitLabAPI, call: Callable[[GitLabAPI], object], detail: str
) -> None:
    with pytest.raises(GitLabError) as caught:
        call(api)
    assert (caught.value.status, caught.value.detail) == (404, detail)


def test_unreachable_gitlab_has_no_status() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with (
        GitLabAPI(f"http://127.0.0.1:{port}", "glpat-secret", retries=0) as client,
        pytest.raises(GitLabError) as caught,
    ):
        client.merge_request(PROJECT, 7)
    assert caught.value.status is None
    assert f"could not reach http://127.0.0.1:{port}" in str(caught.value)
    assert "glpat-secret" not in str(caught.value)


def test_reads_retry_transient_errors(gitlab: FakeGitLab, api: GitLabAPI) -> None:
    gitlab.fail_next("GET", "/merge_requests/7", 502, {"message": "502 Bad Gateway"})
    assert api.merge_request(PROJECT, 7).iid == 7
    assert [call.status for call in gitlab.find_calls("GET")] == [502, 200]


def test_writes_are_not_retried(gitlab: FakeGitLab, api: GitLabAPI) -> None:
    gitlab.fail_next("POST", "/notes", 500, {"message": "500 Internal Server Error"})
    with pytest.raises(GitLabError) as caught:
        api.create_note(PROJECT, 7, "once")
    assert (caught.value.status, caught.value.detail) == (500, "500 Internal Server Error")
    assert len(gitlab.find_calls("POST")) == 1


def test_unexpected_answer_is_a_gitlab_error(gitlab: FakeGitLab, api: GitLabAPI) -> None:
    gitlab.fail_next("GET", "/merge_requests/7", 200, {"id": 1})
    with pytest.raises(GitLabError, match="unexpected answer: 'project_id' is not an integer"):
        api.merge_request(PROJECT, 7)


def test_an_api_url_works_as_the_base_url(
    gitlab: FakeGitLab, api: GitLabAPI, connect: Callable[..., GitLabAPI]
) -> None:
    assert connect(url=f"{api.url}/api/v4/").merge_request(PROJECT, 7).iid == 7


def test_one_credential_only() -> None:
    with pytest.raises(ValueError, match="not both"):
        GitLabAPI("https://gitlab.example.com", "a", job_token="b")


async def test_from_async_code_through_a_thread(fake_gitlab: RunningFakeGitLab) -> None:  # noqa: F811
    state = fake_gitlab.state
    state.add_project(PROJECT)
    state.add_merge_request(PROJECT, 1, diffs=[{"new_path": "x.py", "diff": "@@ -0,0 +1 @@\n+x\n"}])
    with GitLabAPI(fake_gitlab.url, DEFAULT_TOKEN) as client:
        mr = await asyncio.to_thread(client.merge_request, PROJECT, 1)
        assert mr.diff_refs is not None
        position = mr.diff_refs.position("x.py", "x.py", new_line=1)
        discussion = await asyncio.to_thread(
            client.create_diff_discussion, PROJECT, 1, "Nice.", position
        )
    assert discussion.position == position
