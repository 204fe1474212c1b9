"""`require` rules and teams with claims as GitLab CI puts them in `id_tokens`."""

from __future__ import annotations

from typing import Any

import pytest

from lockgate.auth.oidc import OidcIdentity, OidcVerifier
from lockgate.errors import PermissionDenied, Unauthenticated
from tests.auth.conftest import MakeVerifier
from tests.auth.issuer import Issuer


async def denied(verifier: OidcVerifier, token: str) -> PermissionDenied:
    with pytest.raises(PermissionDenied) as caught:
        await verifier.verify(token)
    assert caught.value.status == 403
    return caught.value


async def allowed(verifier: OidcVerifier, issuer: Issuer, **claims: Any) -> OidcIdentity:
    return await verifier.verify(issuer.mint(issuer.claims(**claims)))


async def test_ref_protected_string_true(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(issuer.url, require={"ref_protected": "true"})
    await allowed(verifier, issuer, ref_protected="true")
    error = await denied(verifier, issuer.mint(issuer.claims(ref_protected="false")))
    assert "ref_protected" in error.message
    assert "false" not in error.message  # the claim is named, its value is not echoed
    error = await denied(verifier, issuer.mint(issuer.claims(ref_protected=None)))
    assert "no 'ref_protected' claim" in error.message


async def test_json_booleans_equal_their_string_form(
    issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(
        issuer.url, require={"ref_protected": "true", "environment_protected": "false"}
    )
    await allowed(verifier, issuer, ref_protected=True, environment_protected=False)
    await allowed(verifier, issuer, ref_protected="true", environment_protected="false")
    await denied(
        verifier, issuer.mint(issuer.claims(ref_protected=False, environment_protected=False))
    )
    await denied(
        verifier, issuer.mint(issuer.claims(ref_protected=True, environment_protected=True))
    )
    # Neither 1 nor "yes" is a boolean spelling.
    await denied(
        verifier, issuer.mint(issuer.claims(ref_protected=1, environment_protected="false"))
    )
    await denied(
        verifier, issuer.mint(issuer.claims(ref_protected="yes", environment_protected="false"))
    )


async def test_path_claims_compare_case_insensitively(
    issuer: Issuer, make_verifier: MakeVerifier
) -> None:
    verifier = make_verifier(
        issuer.url,
        require={
            "namespace_path": "Platform",
            "project_path": "platform/LockGate",
            "ci_config_ref_uri": "gitlab.example.com/platform/lockgate//.gitlab-ci.yml@refs/heads/*",
        },
    )
    await allowed(
        verifier,
        issuer,
        namespace_path="PLATFORM",
        project_path="Platform/Lockgate",
        ci_config_ref_uri="GitLab.example.com/Platform/Lockgate//.gitlab-ci.yml@refs/heads/main",
    )
    error = await denied(
        verifier, issuer.mint(issuer.claims(project_path="platform/lockgate-fork"))
    )
    assert "'project_path'" in error.message


async def test_other_claims_are_case_sensitive(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(
        issuer.url, require={"ref": "main", "user_login": "alice", "ref_path": "refs/heads/main"}
    )
    await allowed(verifier, issuer, ref="main", user_login="alice", ref_path="refs/heads/main")
    await denied(verifier, issuer.mint(issuer.claims(ref="Main")))
    await denied(verifier, issuer.mint(issuer.claims(user_login="Alice")))
    # ref_path ends in _path but is a Git ref: `Main` is another (maybe unprotected) branch.
    error = await denied(verifier, issuer.mint(issuer.claims(ref_path="refs/heads/Main")))
    assert "'ref_path'" in error.message


async def test_job_project_path_is_preferred(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    """A fork's merge request pipeline running in the target project: GitLab puts the fork in
    `project_path` and the project that ran the job in `job_project_path`."""
    verifier = make_verifier(issuer.url, require={"project_path": "platform/lockgate"})
    await allowed(
        verifier,
        issuer,
        project_path="mallory/lockgate",
        namespace_path="mallory",
        job_project_path="platform/lockgate",
        job_namespace_path="platform",
        pipeline_source="merge_request_event",
    )
    # The other way round: the token's own project matches, the job ran elsewhere.
    error = await denied(
        verifier,
        issuer.mint(
            issuer.claims(project_path="platform/lockgate", job_project_path="mallory/lockgate")
        ),
    )
    assert "'job_project_path'" in error.message
    # Without job_project_path (older GitLab, or not a cross-project job) project_path counts.
    await allowed(verifier, issuer, project_path="Platform/Lockgate", job_project_path=None)


async def test_team_from_namespace_path(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(issuer.url, team_claim="namespace_path", team="fallback-unused")
    identity = await allowed(verifier, issuer, namespace_path="platform/ml")
    assert identity.team == "platform/ml"
    assert identity.claims["namespace_path"] == "platform/ml"
    error = await denied(verifier, issuer.mint(issuer.claims(namespace_path=None)))
    assert error.message == "The token has no 'namespace_path' claim, which names the team"
    await denied(verifier, issuer.mint(issuer.claims(namespace_path="")))
    await denied(verifier, issuer.mint(issuer.claims(namespace_path=["platform"])))


async def test_glob_rules(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(
        issuer.url,
        require={"ref": "release/*", "ref_type": "branch", "pipeline_source": ["push", "web"]},
    )
    await allowed(verifier, issuer, ref="release/1.4")
    await allowed(verifier, issuer, ref="release/2025-q3/hotfix", pipeline_source="web")
    for bad in ("main", "release", "hotfix/release/1.4", "Release/1.4"):
        error = await denied(verifier, issuer.mint(issuer.claims(ref=bad)))
        assert "'ref'" in error.message
    await denied(verifier, issuer.mint(issuer.claims(ref="release/1.4", ref_type="tag")))
    error = await denied(
        verifier, issuer.mint(issuer.claims(ref="release/1.4", pipeline_source="schedule"))
    )
    assert "'pipeline_source'" in error.message


async def test_list_and_numeric_claims(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    verifier = make_verifier(
        issuer.url, require={"groups_direct": "platform*", "runner_id": ["3", "4"]}
    )
    await allowed(verifier, issuer, groups_direct=["security", "platform-ops"], runner_id=3)
    await allowed(verifier, issuer, groups_direct=["platform"], runner_id="4")
    await denied(verifier, issuer.mint(issuer.claims(groups_direct=["security"])))
    await denied(verifier, issuer.mint(issuer.claims(groups_direct=[])))
    await denied(verifier, issuer.mint(issuer.claims(runner_id=33)))
    await denied(verifier, issuer.mint(issuer.claims(runner_id={"id": 3})))


async def test_rules_run_only_on_valid_tokens(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    """A token that fails its rules *and* is invalid is a 401: a 403 would confirm the
    signature checks passed."""
    verifier = make_verifier(issuer.url, require={"ref_protected": "true"})
    token = issuer.mint(issuer.claims(ref_protected="false", aud="https://elsewhere.example.com"))
    with pytest.raises(Unauthenticated):
        await verifier.verify(token)
    with pytest.raises(Unauthenticated):
        await verifier.verify(issuer.mint(issuer.claims(ref_protected="false", exp=1)))


async def test_a_full_gitlab_policy(issuer: Issuer, make_verifier: MakeVerifier) -> None:
    """The DESIGN example: team from namespace_path, protected refs only."""
    verifier = make_verifier(
        issuer.url,
        team_claim="namespace_path",
        require={
            "ref_protected": "true",
            "namespace_path": ["platform", "platform/*"],
            "user_access_level": ["developer", "maintainer", "owner"],
        },
        models=["summarize", "gpt-*"],
    )
    identity = await allowed(verifier, issuer, namespace_path="Platform/Infra")
    assert identity.team == "Platform/Infra"
    assert identity.issuer.models == ["summarize", "gpt-*"]
    assert identity.claims["user_login"] == "alice"
    await denied(verifier, issuer.mint(issuer.claims(user_access_level="guest")))
    await denied(verifier, issuer.mint(issuer.claims(namespace_path="platformer")))
