"""The GitLab CI/CD components in templates/: their YAML checked statically, then their jobs run
for real by gitlab-ci-local (shell executor) against gateways started here, with this
checkout's `lockgate` on the jobs' PATH. See harness.py for what gitlab-ci-local supports.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import aiohttp
import orjson
import pytest
from ruamel.yaml import YAML

from lockgate.config.loader import load_config
from lockgate.simulate.server import RunningSimulator
from tests.auth.issuer import AUDIENCE, Issuer
from tests.conftest import config_from_yaml, running_gateway
from tests.gitlab.fake_gitlab import DEFAULT_TOKEN, RunningFakeGitLab, fake_gitlab
from tests.gitlab_ci.harness import (
    LOCKGATE,
    PROJECT_PATH,
    REPO_ROOT,
    TEMPLATES,
    CiRepo,
    component,
)

__all__ = ["fake_gitlab"]  # the fixture, imported for pytest

COMPONENTS = ("ai-review", "commit-sentiment", "docs-update", "gateway-config", "test-generation")
INPUT_TYPES = {"string": str, "number": (int, float), "boolean": bool, "array": list}
INPUT_KEYS = {"default", "description", "options", "regex", "type"}
INTERPOLATION = re.compile(r"\$\[\[(.*?)\]\]", re.DOTALL)
INPUT_REFERENCE = re.compile(r"^\s*inputs\.([A-Za-z0-9_-]+)\s*$")
ADMIN_KEY = "admin-key-for-component-tests-51c2e0"
# Every job's `lockgate_install`: print which lockgate the job runs (this checkout's); install none.
NO_INSTALL = "command -v lockgate"
GATEWAY_INPUTS = {"audience": AUDIENCE, "lockgate_install": NO_INSTALL}


# -- the YAML, statically ---------------------------------------------------------------------


def component_path(name: str) -> Path:
    single = TEMPLATES / f"{name}.yml"
    return single if single.exists() else TEMPLATES / name / "template.yml"


def load_component(name: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """The header, the body, and the body's text."""
    text = component_path(name).read_text()
    header_text, separator, body_text = text.partition("\n---\n")
    assert separator, f"{name}: no `---` line between the spec header and the jobs"
    documents = list(YAML(typ="safe").load_all(text))
    assert len(documents) == 2, f"{name}: expected two YAML documents, found {len(documents)}"
    header, body = documents
    assert "$[[" not in header_text, f"{name}: interpolation in the header"
    return header, body, body_text


def test_every_template_is_a_known_component() -> None:
    found = {path.stem for path in TEMPLATES.glob("*.yml")}
    found |= {path.parent.name for path in TEMPLATES.glob("*/template.yml")}
    assert found == set(COMPONENTS)


@pytest.mark.parametrize("name", COMPONENTS)
def test_a_components_inputs_are_declared_used_and_valid(name: str) -> None:
    header, body, body_text = load_component(name)
    assert set(header) == {"spec"}, f"{name}: the header holds only `spec`"
    inputs: dict[str, Any] = header["spec"]["inputs"]
    for input_name, spec in inputs.items():
        spec = spec or {}
        where = f"{name}: input {input_name}"
        assert re.fullmatch(r"[a-z][a-z0-9_]*", input_name), f"{where}: name style"
        assert set(spec) <= INPUT_KEYS, f"{where}: unknown keys {set(spec) - INPUT_KEYS}"
        assert spec.get("description"), f"{where}: no description"
        kind = spec.get("type", "string")
        assert kind in INPUT_TYPES, f"{where}: type {kind}"
        if "default" in spec:
            default = spec["default"]
            assert isinstance(default, INPUT_TYPES[kind]), f"{where}: default is not a {kind}"
            assert kind == "boolean" or not isinstance(default, bool), f"{where}: default"
            if "options" in spec:
                assert default in spec["options"], f"{where}: default outside options"
            if "regex" in spec:
                assert re.search(spec["regex"], str(default)), f"{where}: default fails regex"
        if "options" in spec:
            assert kind in ("string", "number"), f"{where}: options on a {kind}"
            assert all(isinstance(option, INPUT_TYPES[kind]) for option in spec["options"])

    used = set()
    for block in INTERPOLATION.findall(body_text):
        reference = INPUT_REFERENCE.match(block)
        assert reference, f"{name}: `$[[{block}]]` is not a plain input reference"
        used.add(reference.group(1))
    assert used - set(inputs) == set(), f"{name}: inputs used but not declared"
    assert set(inputs) - used == set(), f"{name}: inputs declared but never used"

    jobs = {job: spec for job, spec in body.items() if not job.startswith(".")}
    assert jobs, f"{name}: no jobs"
    for job, spec in jobs.items():
        assert "script" in spec, f"{name}: job {job} has no script"
        assert "stage" in spec, f"{name}: job {job} has no stage"


EXAMPLES = REPO_ROOT / "examples" / "gitlab"
EXAMPLE_PIPELINES = (EXAMPLES / ".gitlab-ci.yml", EXAMPLES / "gateway-config" / ".gitlab-ci.yml")


def component_includes(pipeline: Path) -> list[tuple[str, dict[str, Any]]]:
    """(component name, inputs) of each `include: component:` of a pipeline file."""
    document = YAML(typ="safe").load(pipeline.read_text())
    found = []
    for entry in document["include"]:
        if "component" in entry:
            name = entry["component"].rsplit("/", 1)[1].split("@")[0]
            found.append((name, dict(entry.get("inputs", {}))))
    return found


@pytest.mark.parametrize("pipeline", EXAMPLE_PIPELINES, ids=lambda path: path.parent.name)
def test_an_example_pipeline_passes_each_component_declared_inputs(pipeline: Path) -> None:
    includes = component_includes(pipeline)
    assert includes
    for name, given in includes:
        assert name in COMPONENTS, name
        inputs = load_component(name)[0]["spec"]["inputs"]
        assert set(given) <= set(inputs), f"{name}: unknown inputs {set(given) - set(inputs)}"
        required = {key for key, spec in inputs.items() if "default" not in (spec or {})}
        assert required <= set(given), f"{name}: required inputs missing {required - set(given)}"


# -- the pipeline, as gitlab-ci-local reads it ------------------------------------------------


def listed(output: str) -> dict[str, str]:
    """`--list-all` rows: job name -> its `when`."""
    rows = {}
    for line in output.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[2] in ("on_success", "manual", "never", "always"):
            rows[fields[0]] = fields[2]
    return rows


def test_all_components_pass_the_schema_and_run_in_the_right_pipelines(tmp_path: Path) -> None:
    repo = CiRepo(tmp_path / "repo")
    repo.pipeline(*(component(name, gateway_url=AUDIENCE, **GATEWAY_INPUTS) for name in COMPONENTS))
    repo.commit()

    push = repo.list_jobs()
    assert push.returncode == 0, push
    assert "json schema validated" in push.output
    assert listed(push.output) == {
        "gateway-config-check": "on_success",
        "gateway-config-diff": "never",
        "gateway-config-prompts-test": "never",
        "gateway-config-rollout": "on_success",
        "ai-review": "never",
        "commit-sentiment": "never",
        "test-generation": "never",
        "docs-update": "never",
    }

    merge_request = repo.list_jobs(
        {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_IID": "7"},
        unset=("CI_COMMIT_BRANCH",),  # GitLab leaves it out of merge request pipelines
    )
    assert merge_request.returncode == 0, merge_request
    assert listed(merge_request.output) == {
        "gateway-config-check": "on_success",
        "gateway-config-diff": "on_success",
        "gateway-config-prompts-test": "on_success",
        "gateway-config-rollout": "never",
        "ai-review": "on_success",
        "commit-sentiment": "on_success",
        "test-generation": "manual",
        "docs-update": "manual",
    }


def test_an_input_outside_its_options_is_refused(tmp_path: Path) -> None:
    repo = CiRepo(tmp_path / "repo")
    repo.pipeline(component("ai-review", gateway_url="https://x", fail_on="bad", audience="x"))
    repo.commit()
    result = repo.list_jobs()
    assert result.returncode != 0
    assert "`bad` cannot be used because it is not in the list of allowed options" in result.output


# -- gateway-config: check --------------------------------------------------------------------

VALID_CONFIG = """\
providers: [{name: sim, type: simulator}]
models: [{name: chat, targets: [{provider: sim, model: sim-small}]}]
"""


def config_repo(path: Path, files: dict[str, str], **inputs: Any) -> CiRepo:
    repo = CiRepo(path)
    repo.write(files)
    defaults = {"gateway_url": "http://127.0.0.1:9", **GATEWAY_INPUTS}
    repo.pipeline(component("gateway-config", **{**defaults, **inputs}))
    repo.commit("The gateway's config")
    return repo


def test_the_check_job_passes_a_valid_config_with_this_checkouts_lockgate(tmp_path: Path) -> None:
    repo = config_repo(tmp_path / "repo", {"lockgate.yaml": VALID_CONFIG})
    result = repo.run("gateway-config-check")
    assert result.passed, result
    assert f"> {LOCKGATE}" in result.output  # `command -v lockgate` in before_script
    assert "ok lockgate.yaml: 1 providers, 1 models" in result.output


def test_the_check_job_fails_an_invalid_config_and_says_where(tmp_path: Path) -> None:
    broken = (
        VALID_CONFIG.replace("sim-small}]", "sim-small}], colour: red") + "routing: {retries: x}\n"
    )
    repo = config_repo(
        tmp_path / "repo", {"gateway/lockgate.yaml": broken}, config="gateway/lockgate.yaml"
    )
    result = repo.run("gateway-config-check")
    assert not result.passed, result
    assert result.exit_code == 1, result
    assert "gateway/lockgate.yaml:2: models[0].colour: unknown key 'colour'" in result.output
    assert (
        "gateway/lockgate.yaml:3: routing.retries: Input should be a valid integer" in result.output
    )
    assert "2 errors in gateway/lockgate.yaml" in result.output


def test_the_example_config_repository_passes_its_check_job(tmp_path: Path) -> None:
    repo = CiRepo(tmp_path / "repo")
    shutil.copytree(EXAMPLES / "gateway-config", repo.path, dirs_exist_ok=True)
    ((name, inputs),) = component_includes(repo.path / ".gitlab-ci.yml")
    repo.pipeline(component(name, **{**inputs, "lockgate_install": NO_INSTALL}))
    repo.commit()
    # The secrets lockgate.yaml names come from CI/CD variables (placeholders do for a check).
    secrets = {"LOCKGATE_ADMIN_KEY": ADMIN_KEY, "OPENAI_API_KEY": "placeholder"}
    result = repo.run("gateway-config-check", secrets)
    assert result.passed, result
    assert "ok lockgate.yaml: 1 providers, 1 models" in result.output


# -- gateway-config: prompts test -------------------------------------------------------------


def prompt_version(answer: dict[str, Any]) -> str:
    """A sentiment prompt whose model answer the simulator is scripted to give."""
    content = orjson.dumps(orjson.dumps(answer).decode()).decode()
    return f"""model: chat
params: {{temperature: 0, simulate: {{content: {content}}}}}
messages:
  - {{role: user, content: "Rate: {{{{ text }}}}"}}
input:
  type: object
  required: [text]
  properties: {{text: {{type: string}}}}
output:
  type: object
  required: [score, label]
  properties:
    score: {{type: number, minimum: -1, maximum: 1}}
    label: {{enum: [positive, neutral, negative]}}
"""


PROMPT_TESTS = """\
tests:
  - name: praise is positive
    input: {text: "Great work, thanks!"}
    expect: {label: positive, score: {gte: 0.3}}
  - name: a complaint is negative
    input: {text: "Third outage this week."}
    expect: {label: negative}
"""


def gateway_yaml(sim: RunningSimulator, *, target: str = "sim-v1", extra: str = "") -> str:
    return f"""\
providers: [{{name: sim, type: openai, base_url: "{sim.base_url}", api_key: sim-key}}]
routing: {{retries: 0, timeout_s: 10}}
models:
  - {{name: chat, targets: [{{provider: sim, model: "{target}"}}]}}
{extra}"""


async def test_the_prompts_test_job_reports_each_case_in_junit(
    tmp_path: Path, simulator: RunningSimulator
) -> None:
    repo = tmp_path / "repo"
    prompts = {
        "prompts/sentiment/1.0.0.yaml": prompt_version({"score": 0.8, "label": "positive"}),
        "prompts/sentiment/tests.yaml": PROMPT_TESTS,
    }
    config = gateway_yaml(simulator) + f'prompts: {{dir: "{repo / "prompts"}"}}\n'
    ci = CiRepo(repo)
    ci.write({"lockgate.yaml": config, **prompts})
    async with running_gateway(config_from_yaml(config)) as url:
        ci.pipeline(component("gateway-config", gateway_url=url, **GATEWAY_INPUTS))
        ci.commit("Prompts with tests")
        result = await ci.run_async(
            "gateway-config-prompts-test", {"CI_PIPELINE_SOURCE": "merge_request_event"}
        )

    assert result.exit_code == 1, result  # one case fails: the scripted model is always positive
    assert "1 passed, 1 failed" in result.output
    report = ElementTree.parse(repo / "prompt-tests.xml").getroot()
    assert (report.get("tests"), report.get("failures")) == ("2", "1")
    cases = {case.get("name"): case for case in report.iter("testcase")}
    assert set(cases) == {"praise is positive", "a complaint is negative"}
    assert cases["praise is positive"].find("failure") is None
    failure = cases["a complaint is negative"].find("failure")
    assert failure is not None
    assert "label" in (failure.text or "")


# -- gateway-config: rollout ------------------------------------------------------------------


class Deployment:
    """A gateway serving a config file, and the config repository that rolls out to it."""

    def __init__(self, tmp_path: Path, sim: RunningSimulator) -> None:
        self.sim = sim
        self.file = tmp_path / "gateway" / "lockgate.yaml"
        self.file.parent.mkdir()
        self.database = f"sqlite:///{tmp_path / 'gateway' / 'lockgate.db'}"
        self.repo = CiRepo(tmp_path / "config-repo")

    def config(self, target: str, extra: str = "") -> str:
        head = f'server: {{admin_key: "{ADMIN_KEY}"}}\nstorage: {{database: "{self.database}"}}\n'
        return head + gateway_yaml(self.sim, target=target, extra=extra)

    def push(self, config: str, url: str) -> None:
        self.repo.write({"lockgate.yaml": config})
        self.repo.pipeline(
            component(
                "gateway-config",
                gateway_url=url,
                deploy_command=f'cp "$LOCKGATE_CONFIG_FILE" "{self.file}"',
                smoke_model="chat",
                ready_timeout_s=5,
                **GATEWAY_INPUTS,
            )
        )
        self.repo.commit()

    async def rollout(self) -> Any:
        return await self.repo.run_async(
            "gateway-config-rollout", {"LOCKGATE_ADMIN_KEY": ADMIN_KEY}
        )


async def answering_target(url: str, model: str) -> tuple[int, str | None]:
    """(status, x-lockgate-model) of one chat completion on `model`."""
    body = {"model": model, "messages": [{"role": "user", "content": "hi"}]}
    headers = {"authorization": f"Bearer {ADMIN_KEY}"}
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/v1/chat/completions", json=body, headers=headers) as answer,
    ):
        await answer.read()
        return answer.status, answer.headers.get("x-lockgate-model")


@pytest.fixture
def deployment(tmp_path: Path, simulator: RunningSimulator) -> Deployment:
    return Deployment(tmp_path, simulator)


async def test_the_rollout_deploys_and_reloads_a_good_change(deployment: Deployment) -> None:
    old = deployment.config("sim-v1")
    deployment.file.write_text(old)
    async with running_gateway(load_config(deployment.file), source=deployment.file) as url:
        deployment.push(old, url)
        new = deployment.config(
            "sim-v2", extra="  - {name: added, targets: [{provider: sim, model: sim-added}]}\n"
        )
        deployment.push(new, url)
        assert await answering_target(url, "chat") == (200, "sim/sim-v1")

        result = await deployment.rollout()

        assert result.passed, result
        assert "is live on" in result.output
        assert deployment.file.read_text() == new
        assert await answering_target(url, "chat") == (200, "sim/sim-v2")
        assert await answering_target(url, "added") == (200, "sim/sim-added")


async def test_the_rollout_rolls_a_failing_change_back(deployment: Deployment) -> None:
    old = deployment.config("sim-v1")
    deployment.file.write_text(old)
    async with running_gateway(load_config(deployment.file), source=deployment.file) as url:
        deployment.push(old, url)
        previous = deployment.repo.git("rev-parse", "HEAD")
        # Valid (config check passes, the reload applies it), but every answer is a 500.
        deployment.push(deployment.config("sim-v2?status=500"), url)

        result = await deployment.rollout()

        assert not result.passed, result
        assert result.exit_code == 1, result
        assert "smoke request to model chat" in result.output
        assert f"rolling back to {previous}" in result.output
        assert f"rolled back to {previous}" in result.output
        assert deployment.file.read_text() == old
        assert await answering_target(url, "chat") == (200, "sim/sim-v1")


async def test_the_rollout_rolls_back_a_change_the_reload_refuses(deployment: Deployment) -> None:
    old = deployment.config("sim-v1")
    deployment.file.write_text(old)
    async with running_gateway(load_config(deployment.file), source=deployment.file) as url:
        deployment.push(old, url)
        # `storage` needs a restart: the reload answers 422 and keeps the running config.
        moved = old.replace("lockgate.db", "elsewhere.db").replace("sim-v1", "sim-v2")
        deployment.push(moved, url)

        result = await deployment.rollout()

        assert result.exit_code == 1, result
        assert "422" in result.output or '"status":"failed"' in result.output
        assert "rolled back to" in result.output
        assert deployment.file.read_text() == old
        assert await answering_target(url, "chat") == (200, "sim/sim-v1")


async def test_the_rollout_fails_without_the_admin_key(deployment: Deployment) -> None:
    deployment.push(deployment.config("sim-v1"), "http://127.0.0.1:9")
    result = await deployment.repo.run_async("gateway-config-rollout")
    assert result.exit_code == 1, result
    assert "LOCKGATE_ADMIN_KEY (the gateway's admin key) is not set" in result.output
    assert not deployment.file.exists()


# -- gateway-config: diff, posted on the merge request ----------------------------------------


async def test_the_diff_job_posts_the_change_once_and_updates_it(
    tmp_path: Path, simulator: RunningSimulator, fake_gitlab: RunningFakeGitLab
) -> None:
    gateway_file = tmp_path / "gateway" / "lockgate.yaml"
    gateway_file.parent.mkdir()
    database = f"sqlite:///{gateway_file.parent / 'lockgate.db'}"
    running = (
        f'server: {{admin_key: "{ADMIN_KEY}"}}\nstorage: {{database: "{database}"}}\n'
        + gateway_yaml(simulator)
    )
    gateway_file.write_text(running)
    project = fake_gitlab.state.add_project(PROJECT_PATH)
    mr = fake_gitlab.state.add_merge_request(project, 3, title="Add a model")
    added = "  - {name: added, targets: [{provider: sim, model: sim-added}]}\n"
    async with running_gateway(load_config(gateway_file), source=gateway_file) as url:
        repo = config_repo(tmp_path / "repo", {"lockgate.yaml": running + added}, gateway_url=url)
        variables = {
            **merge_request_variables(fake_gitlab, project, 3),
            "LOCKGATE_ADMIN_KEY": ADMIN_KEY,
            "GITLAB_TOKEN": DEFAULT_TOKEN,
        }
        changed = await repo.run_async("gateway-config-diff", variables)
        assert changed.passed, changed
        assert "Posted the diff on !3" in changed.output
        (note,) = mr.notes
        assert note.body.startswith("<!-- lockgate:config-diff -->")
        assert "Config diff: 1 change\n" in note.body
        assert "added `added`" in note.body
        assert (repo.path / "lockgate-config-diff.md").read_text() in note.body

        # The MR drops the change again: the same note now says so; nothing new is posted.
        repo.write({"lockgate.yaml": running})
        repo.commit("Drop the model again")
        unchanged = await repo.run_async("gateway-config-diff", variables)
    assert unchanged.passed, unchanged
    assert "Updated the diff note on !3" in unchanged.output
    assert [n.id for n in mr.notes] == [note.id]
    assert "Config diff: no changes" in mr.notes[0].body
    posts = fake_gitlab.state.find_calls("POST", "/notes")
    assert [post.token for post in posts] == [DEFAULT_TOKEN]


# -- ai-review and commit-sentiment, with the job's ID token ----------------------------------

USERS_DIFF = "".join(
    line + "\n"
    for line in (
        "@@ -1,3 +1,6 @@",
        " def get_user(db, user_id):",
        '     return db.execute("SELECT * FROM users WHERE id = ?", (user_id,)).fetchone()',
        " ",
        "+def search_users(db, name):",
        '+    query = "SELECT * FROM users WHERE name LIKE \'%" + name + "%\'"',
        "+    return db.execute(query).fetchall()",
    )
)
REVIEW = {
    "summary": "Adds a user search.",
    "findings": [
        {
            "file": "app/users.py",
            "line": 5,
            "severity": "critical",
            "message": "SQL built by concatenating user input: injection.",
        }
    ],
}


def merge_request_variables(fake: RunningFakeGitLab, project: int, iid: int) -> dict[str, str]:
    """What GitLab sets in a merge request pipeline of `project` on the fake GitLab."""
    return {
        "CI_PIPELINE_SOURCE": "merge_request_event",
        "CI_SERVER_URL": fake.url,
        "CI_API_V4_URL": f"{fake.url}/api/v4",
        "CI_PROJECT_ID": str(project),
        "CI_MERGE_REQUEST_IID": str(iid),
    }


def oidc_gateway_yaml(sim: RunningSimulator, issuer: Issuer, prompts: Path) -> str:
    """A gateway only GitLab CI ID tokens of `issuer` get into (no keys, no admin key)."""
    return (
        gateway_yaml(sim)
        + f"""\
prompts: {{dir: "{prompts}"}}
auth:
  oidc:
    - {{issuer: "{issuer.url}", audience: "{AUDIENCE}", team_claim: namespace_path}}
"""
    )


@pytest.fixture
async def issuer() -> AsyncIterator[Issuer]:
    running = await Issuer().start()
    yield running
    await running.close()


async def test_ai_review_reviews_the_merge_request_with_the_jobs_id_token(
    tmp_path: Path, simulator: RunningSimulator, fake_gitlab: RunningFakeGitLab, issuer: Issuer
) -> None:
    prompts = tmp_path / "prompts"
    shutil.copytree(REPO_ROOT / "prompts" / "_partials", prompts / "_partials")
    review_version = YAML(typ="safe").load(
        (REPO_ROOT / "prompts" / "code-review" / "1.0.0.yaml").read_text()
    )
    review_version["model"] = "chat"
    review_version["params"]["simulate"] = {"content": orjson.dumps(REVIEW).decode()}
    (prompts / "code-review").mkdir()
    (prompts / "code-review" / "1.0.0.yaml").write_text(orjson.dumps(review_version).decode())
    project = fake_gitlab.state.add_project("platform/app")
    diffs = [{"old_path": "app/users.py", "new_path": "app/users.py", "diff": USERS_DIFF}]
    mr = fake_gitlab.state.add_merge_request(project, 5, title="Add user search", diffs=diffs)

    repo = CiRepo(tmp_path / "repo")
    config = oidc_gateway_yaml(simulator, issuer, prompts)
    async with running_gateway(config_from_yaml(config)) as url:
        repo.pipeline(component("ai-review", gateway_url=url, **GATEWAY_INPUTS))
        repo.commit("Add user search")
        result = await repo.run_async(
            "ai-review",
            {
                **merge_request_variables(fake_gitlab, project, 5),
                "GITLAB_TOKEN": DEFAULT_TOKEN,
                "LOCKGATE_ID_TOKEN": issuer.mint(issuer.claims(project_path="platform/app")),
            },
        )

    assert result.exit_code == 1, result  # a critical finding, and fail_on defaults to critical
    assert "--fail-on critical" in result.output
    (summary,) = [note for note in mr.notes if note.type is None]
    assert "Adds a user search." in summary.body
    (thread,) = mr.diff_discussions
    assert thread.position is not None
    assert thread.position["new_line"] == 5
    report = orjson.loads((repo.path / "gl-code-quality-report.json").read_bytes())
    assert [(issue["severity"], issue["location"]["path"]) for issue in report] == [
        ("critical", "app/users.py")
    ]


async def test_commit_sentiment_gates_the_merge_requests_commits(
    tmp_path: Path, simulator: RunningSimulator, fake_gitlab: RunningFakeGitLab, issuer: Issuer
) -> None:
    prompts = tmp_path / "prompts"
    answer = {"score": -0.8, "label": "negative"}
    (prompts / "sentiment").mkdir(parents=True)
    (prompts / "sentiment" / "1.0.0.yaml").write_text(prompt_version(answer))
    project = fake_gitlab.state.add_project(PROJECT_PATH)
    fake_gitlab.state.add_merge_request(project, 9, title="Fix the build")
    repo = CiRepo(tmp_path / "repo")
    config = oidc_gateway_yaml(simulator, issuer, prompts)
    async with running_gateway(config_from_yaml(config)) as url:
        repo.pipeline(component("commit-sentiment", gateway_url=url, **GATEWAY_INPUTS))
        base = repo.commit("Start the project")
        repo.write({"app.py": "print('hi')\n"})
        repo.commit("Ugh, this garbage keeps breaking, I give up")
        result = await repo.run_async(
            "commit-sentiment",
            {
                **merge_request_variables(fake_gitlab, project, 9),
                "CI_MERGE_REQUEST_DIFF_BASE_SHA": base,
                "GITLAB_TOKEN": DEFAULT_TOKEN,  # should the command report on the MR too
                "LOCKGATE_ID_TOKEN": issuer.mint(),
            },
        )

    assert result.exit_code == 1, result  # -0.8 is below the default min_score, -0.5
    assert "--min-score -0.5" in result.output
    assert "Ugh, this garbage keeps breaking" in result.output
    assert "Start the project" not in result.output.split("--min-score")[1]  # the base is not rated
