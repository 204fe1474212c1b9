"""The gateway reviews and posts for a CI job that holds nothing but its ID token.

A real gateway trusts a test OIDC issuer (GitLab's ID token claims) and posts to a fake GitLab
with its own bot token; the model is the simulator, its review scripted in the prompt's params.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest

from lockgate.auth.keys import hash_key
from lockgate.gitlab.review_notes import SUMMARY_MARKER
from lockgate.simulate.server import RunningSimulator
from tests.auth.issuer import AUDIENCE, Issuer
from tests.conftest import config_from_yaml, running_gateway
from tests.gitlab.fake_gitlab import DEFAULT_TOKEN, RunningFakeGitLab, start_fake_gitlab

DIFF = "@@ -0,0 +1,3 @@\n+def ratio(a, b):\n+    return a / b\n+\n"
ANSWER = {
    "summary": "Adds a ratio helper.",
    "findings": [
        {
            "file": "app/math.py",
            "line": 2,
            "severity": "major",
            "message": "Division by zero when b is 0.",
            "suggestion": "Check b first.",
        }
    ],
}
KEY = "lg-gateway-posting-test-key-0123456789"


@dataclass
class Setup:
    url: str
    fake: RunningFakeGitLab
    issuer: Issuer
    project_id: int

    def token(self, **claims: Any) -> str:
        base = {"project_id": str(self.project_id), "project_path": "platform/lockgate"}
        return self.issuer.mint(self.issuer.claims(**{**base, **claims}))

    async def review(
        self, credential: str, project: str | int, iid: int = 1
    ) -> tuple[int, dict[str, Any]]:
        body = {"project": project, "merge_request_iid": iid}
        headers = {"authorization": f"Bearer {credential}"}
        url = f"{self.url}/gitlab/merge-requests/review"
        async with aiohttp.ClientSession() as http, http.post(url, json=body, headers=headers) as r:
            return r.status, await r.json()


def prompt_file() -> str:
    return f"""model: m
params: {{simulate: {{content: {json.dumps(json.dumps(ANSWER))}}}}}
messages:
  - {{role: user, content: "{{{{ diff }}}}"}}
input:
  type: object
  required: [diff]
  properties: {{diff: {{type: string}}, title: {{type: string}}, description: {{type: string}},
               language: {{type: string}}}}
output:
  type: object
  required: [summary, findings]
  properties:
    summary: {{type: string}}
    findings: {{type: array}}
"""


@pytest.fixture(scope="module")
async def setup(
    simulator: RunningSimulator, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Setup]:
    prompts = tmp_path_factory.mktemp("posting") / "prompts"
    (prompts / "code-review").mkdir(parents=True)
    (prompts / "code-review" / "1.0.0.yaml").write_text(prompt_file())
    issuer = await Issuer().start()
    fake = await start_fake_gitlab()
    fake.state.set_token(DEFAULT_TOKEN, "lockgate-bot")
    project_id = fake.state.add_project("platform/lockgate")
    fake.state.add_merge_request(
        project_id,
        1,
        title="Add ratio",
        diffs=[{"new_path": "app/math.py", "diff": DIFF, "new_file": True}],
    )
    other = fake.state.add_project("other/app")
    fake.state.add_merge_request(other, 1, diffs=[{"new_path": "x.py", "diff": DIFF}])
    yaml = f"""
providers: [{{name: sim, type: openai, base_url: "{simulator.base_url}", api_key: x}}]
models: [{{name: m, targets: [{{provider: sim, model: sim-small}}]}}]
prompts: {{dir: "{prompts}"}}
auth:
  oidc: [{{issuer: "{issuer.url}", audience: "{AUDIENCE}"}}]
keys: [{{name: ci, hash: "{hash_key(KEY)}"}}]
gitlab: {{url: "{fake.url}", token: "{DEFAULT_TOKEN}"}}
"""
    try:
        async with running_gateway(config_from_yaml(yaml)) as url:
            yield Setup(url, fake, issuer, project_id)
    finally:
        await fake.close()
        await issuer.close()


async def test_the_gateway_posts_the_review_with_its_own_token(setup: Setup) -> None:
    status, outcome = await setup.review(setup.token(), "platform/lockgate")
    assert status == 200, outcome
    mr = setup.fake.state.merge_request(setup.project_id, 1)
    notes = [note for note in mr.notes if SUMMARY_MARKER in note.body]
    assert len(notes) == 1
    assert notes[0].author == "lockgate-bot"
    [thread] = mr.diff_discussions
    assert thread.position is not None
    assert (thread.position["new_path"], thread.position["new_line"]) == ("app/math.py", 2)
    assert "Division by zero" in thread.notes[0].body
    assert [f["status"] for f in outcome["findings"]] == ["created"]
    writes = [c for c in setup.fake.state.calls if c.method in ("POST", "PUT")]
    assert {c.token for c in writes} == {DEFAULT_TOKEN}  # the bot's, never the job's

    # Again on the same commit (by project id this time): nothing new.
    status, outcome = await setup.review(setup.token(), setup.project_id)
    assert status == 200
    assert [f["status"] for f in outcome["findings"]] == ["existing"]
    assert len(mr.diff_discussions) == 1
    assert len([n for n in mr.notes if SUMMARY_MARKER in n.body]) == 1


async def test_a_job_cannot_have_another_project_reviewed(setup: Setup) -> None:
    before = len(setup.fake.state.calls)
    status, body = await setup.review(setup.token(), "other/app")
    assert status == 403
    assert "platform/lockgate" in body["error"]["message"]
    assert len(setup.fake.state.calls) == before  # GitLab was not even read


async def test_a_key_is_refused_it_names_no_project(setup: Setup) -> None:
    status, body = await setup.review(KEY, "platform/lockgate")
    assert status == 403
    assert "ID token" in body["error"]["message"]


async def test_bad_requests_name_the_field(setup: Setup) -> None:
    status, body = await setup.review(setup.token(), "platform/lockgate", iid=0)
    assert status == 400
    assert body["error"]["param"] == "merge_request_iid"
