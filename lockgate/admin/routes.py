"""The admin API: keys, teams, budgets, limits, OIDC issuers, targets and config reload.

Everything here needs the admin key. Keys and teams declared in the config file are listed but
read-only: the file is their source of truth. Every change is visible to every worker within
`storage.key_refresh_s` (they poll the database's revision counter) and to this one at once.
"""

from __future__ import annotations

import os
import signal
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, HTTPException, Request, Response

from lockgate.admin import SUPERVISED_ENV
from lockgate.admin.schemas import (
    BudgetStatus,
    KeyChange,
    KeyCreate,
    KeyCreated,
    KeyView,
    LimitStatus,
    ReloadResult,
    TeamChange,
    TeamCreate,
    TeamView,
)
from lockgate.auth.keys import display_prefix, hash_key, hashes_match, new_key
from lockgate.auth.policy import MICROS_PER_USD
from lockgate.config.models import GatewayConfig, LimitsConfig
from lockgate.container import Container, Services
from lockgate.limits import BudgetScope, Quota, period_id
from lockgate.storage import InvalidRecord, NameTaken, StoredKey, StoredTeam

if TYPE_CHECKING:
    from lockgate.app import LockgateApp

__all__ = ["create_admin_app"]

UNAUTHORIZED = "Invalid credentials: the admin API needs the admin key"


def create_admin_app(app: LockgateApp) -> FastAPI:
    admin = FastAPI(
        title="Lockgate admin API",
        version="1",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )

    admin.state.lockgate = app
    router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)])

    # -- keys -------------------------------------------------------------------------------

    @router.get("/keys", response_model=list[KeyView], tags=["keys"])
    async def list_keys(running: Running, revoked: bool = False) -> list[KeyView]:
        """Declared and stored keys (revoked ones with `?revoked=true`)."""
        services, container = running
        stored = await services.database.keys.list(include_revoked=revoked)
        declared = [_declared_key(key) for key in container.config.keys]
        names = {key.name for key in declared}
        return declared + [_stored_key(key) for key in stored if key.name not in names]

    @router.post("/keys", response_model=KeyCreated, status_code=201, tags=["keys"])
    async def create_key(body: KeyCreate, running: Running) -> KeyCreated:
        """Create a key. The answer holds the key itself: it is never shown again."""
        services, container = running
        _refuse_declared_key(container.config, body.name)
        _require_shared_counters(container.config, body.limits)
        if body.team is not None:
            _require_team(container, body.team)
        key = new_key()
        try:
            stored = await services.database.keys.create(
                name=body.name,
                key_hash=hash_key(key),
                prefix=display_prefix(key),
                team=body.team,
                models=body.models,
                limits=body.limits or LimitsConfig(),
                budget=body.budget,
                expires_at=body.expires_at,
                metadata=body.metadata or {},
            )
        except NameTaken:
            raise HTTPException(409, f"a key named {body.name!r} exists already") from None
        except InvalidRecord as exc:
            raise HTTPException(422, str(exc)) from None
        await app.refresh_keys()
        return KeyCreated(**_stored_key(stored).model_dump(), key=key)

    @router.get("/keys/{name}", response_model=KeyView, tags=["keys"])
    async def get_key(name: str, running: Running) -> KeyView:
        services, container = running
        for declared in container.config.keys:
            if declared.name == name:
                return _declared_key(declared)
        stored = await services.database.keys.get(name)
        if stored is None:
            raise HTTPException(404, f"no key named {name!r}")
        return _stored_key(stored)

    @router.patch("/keys/{name}", response_model=KeyView, tags=["keys"])
    async def update_key(name: str, body: KeyChange, running: Running) -> KeyView:
        services, container = running
        _refuse_declared_key(container.config, name)
        changes = _policy_changes(container.config, body)
        if body.team is not None:
            _require_team(container, body.team)
        try:
            stored = await services.database.keys.update(name, **changes)
        except InvalidRecord as exc:
            raise HTTPException(422, str(exc)) from None
        if stored is None:
            raise HTTPException(404, f"no key named {name!r}")
        await app.refresh_keys()
        return _stored_key(stored)

    @router.post("/keys/{name}/revoke", response_model=KeyView, tags=["keys"])
    async def revoke_key(name: str, running: Running) -> KeyView:
        """Revoke a key: every worker refuses it within about a second."""
        services, container = running
        _refuse_declared_key(container.config, name)
        if not await services.database.keys.revoke(name):
            raise HTTPException(404, f"no key named {name!r} (or it is revoked already)")
        await app.refresh_keys()
        stored = await services.database.keys.get(name)
        if stored is None:
            raise HTTPException(404, f"no key named {name!r}")
        return _stored_key(stored)

    @router.delete("/keys/{name}", status_code=204, tags=["keys"])
    async def delete_key(name: str, running: Running) -> Response:
        services, container = running
        _refuse_declared_key(container.config, name)
        if not await services.database.keys.delete(name):
            raise HTTPException(404, f"no key named {name!r}")
        await app.refresh_keys()
        return Response(status_code=204)

    # -- teams ------------------------------------------------------------------------------

    @router.get("/teams", response_model=list[TeamView], tags=["teams"])
    async def list_teams(running: Running) -> list[TeamView]:
        services, container = running
        declared = [_declared_team(team.model_dump()) for team in container.config.teams]
        names = {team.name for team in declared}
        stored = await services.database.teams.list()
        return declared + [_stored_team(team) for team in stored if team.name not in names]

    @router.post("/teams", response_model=TeamView, status_code=201, tags=["teams"])
    async def create_team(body: TeamCreate, running: Running) -> TeamView:
        services, container = running
        _refuse_declared_team(container.config, body.name)
        _require_shared_counters(container.config, body.limits)
        try:
            stored = await services.database.teams.create(
                name=body.name,
                models=body.models if body.models is not None else ["*"],
                limits=body.limits or LimitsConfig(),
                budget=body.budget,
                metadata=body.metadata or {},
            )
        except NameTaken:
            raise HTTPException(409, f"a team named {body.name!r} exists already") from None
        except InvalidRecord as exc:
            raise HTTPException(422, str(exc)) from None
        await app.refresh_keys()
        return _stored_team(stored)

    @router.get("/teams/{name:path}", response_model=TeamView, tags=["teams"])
    async def get_team(name: str, running: Running) -> TeamView:
        services, container = running
        for team in container.config.teams:
            if team.name == name:
                return _declared_team(team.model_dump())
        stored = await services.database.teams.get(name)
        if stored is None:
            raise HTTPException(404, f"no team named {name!r}")
        return _stored_team(stored)

    @router.patch("/teams/{name:path}", response_model=TeamView, tags=["teams"])
    async def update_team(name: str, body: TeamChange, running: Running) -> TeamView:
        services, container = running
        _refuse_declared_team(container.config, name)
        changes = _policy_changes(container.config, body)
        if "models" in changes and changes["models"] is None:
            changes["models"] = ["*"]
        try:
            stored = await services.database.teams.update(name, **changes)
        except InvalidRecord as exc:
            raise HTTPException(422, str(exc)) from None
        if stored is None:
            raise HTTPException(404, f"no team named {name!r}")
        await app.refresh_keys()
        return _stored_team(stored)

    @router.delete("/teams/{name:path}", status_code=204, tags=["teams"])
    async def delete_team(name: str, running: Running) -> Response:
        services, container = running
        _refuse_declared_team(container.config, name)
        if not await services.database.teams.delete(name):
            raise HTTPException(404, f"no team named {name!r}")
        await app.refresh_keys()
        return Response(status_code=204)

    # -- budgets, limits, issuers, targets ---------------------------------------------------

    @router.get("/budgets", response_model=list[BudgetStatus], tags=["usage"])
    async def budgets(running: Running) -> list[BudgetStatus]:
        """Every budget with its current period's spend and the amount reserved in flight."""
        services, container = running
        now = datetime.now(UTC)
        found: list[BudgetStatus] = []
        for scope in _budget_scopes(container):
            spent, reserved, period = await services.ledger.usage(scope)
            found.append(
                BudgetStatus(
                    scope=scope.key,
                    label=scope.label,
                    period=scope.period,
                    period_id=period or period_id(scope.period, now),
                    budget_usd=scope.limit_micros / MICROS_PER_USD,
                    spent_usd=spent / MICROS_PER_USD,
                    reserved_usd=reserved / MICROS_PER_USD,
                )
            )
        return found

    @router.get("/limits", response_model=list[LimitStatus], tags=["usage"])
    async def limits(running: Running) -> list[LimitStatus]:
        """Every key's and team's rate limits with their current counters."""
        services, container = running
        quotas = _quotas(container)
        snapshots = await services.limiter.snapshot(quotas) if quotas else []
        return [
            LimitStatus(
                scope=quota.key,
                label=quota.label,
                rpm=quota.rpm,
                tpm=quota.tpm,
                parallel=quota.parallel,
                counters=dict(snapshot),
            )
            for quota, snapshot in zip(quotas, snapshots, strict=True)
        ]

    @router.get("/oidc", tags=["auth"])
    async def oidc_status(running: Running) -> list[dict[str, Any]]:
        """Each OIDC issuer: its JWKS address, keys cached, last fetch and last error."""
        _, container = running
        return container.oidc.status() if container.oidc is not None else []

    @router.get("/targets", tags=["routing"])
    async def targets(running: Running) -> dict[str, dict[str, object]]:
        """Each target's health: cooldown, failures, latency, requests in flight."""
        _, container = running
        return container.gateway.target_health()

    @router.post("/config/reload", response_model=ReloadResult, tags=["config"])
    async def reload(response: Response) -> ReloadResult:
        """Re-read the config file; on every worker when run with several. A config that fails
        validation is not applied: the running one stays and the errors are returned."""
        errors = await app.reload()
        if errors:
            response.status_code = 422
            return ReloadResult(status="failed", errors=errors)
        if os.environ.get(SUPERVISED_ENV):
            os.kill(os.getppid(), signal.SIGHUP)
        return ReloadResult(status="reloaded")

    admin.include_router(router)
    return admin


def _gateway(request: Request) -> LockgateApp:
    app: LockgateApp = request.app.state.lockgate
    return app


def _credential(request: Request) -> str | None:
    header = request.headers.get("authorization")
    if header is not None:
        scheme, _, value = header.partition(" ")
        return value.strip() if scheme.lower() == "bearer" else None
    return request.headers.get("x-api-key")


async def require_admin(request: Request) -> None:
    admin_key = _gateway(request).config.server.admin_key
    presented = _credential(request)
    if (
        admin_key is None
        or presented is None
        or not hashes_match(hash_key(presented), hash_key(admin_key.get_secret_value()))
    ):
        raise HTTPException(401, UNAUTHORIZED, headers={"www-authenticate": "Bearer"})


def _running(request: Request) -> tuple[Services, Container]:
    app = _gateway(request)
    if app.services is None or app.container is None:
        raise HTTPException(503, "the gateway is starting or stopping")
    return app.services, app.container


Running = Annotated[tuple[Services, Container], Depends(_running)]


def _refuse_declared_key(config: GatewayConfig, name: str) -> None:
    if any(key.name == name for key in config.keys):
        raise HTTPException(
            409, f"key {name!r} is declared in the config file: change it there, not here"
        )


def _refuse_declared_team(config: GatewayConfig, name: str) -> None:
    if any(team.name == name for team in config.teams):
        raise HTTPException(
            409, f"team {name!r} is declared in the config file: change it there, not here"
        )


def _policy_changes(config: GatewayConfig, body: KeyChange | TeamChange) -> dict[str, Any]:
    """The fields a PATCH sets, with limits and budget as config models (null limits: none)."""
    if body.limits is not None:
        _require_shared_counters(config, body.limits)
    changes = body.model_dump(exclude_unset=True)
    if "limits" in changes:
        changes["limits"] = body.limits or LimitsConfig()
    if "budget" in changes:
        changes["budget"] = body.budget
    return changes


def _require_team(container: Container, team: str) -> None:
    if team not in container.identifier.directory.teams:
        raise HTTPException(
            422, f"no team named {team!r}: declare it in the config or create it first"
        )


def _require_shared_counters(config: GatewayConfig, limits: LimitsConfig | None) -> None:
    if limits is None or (limits.empty and not limits.models):
        return
    if config.server.workers > 1 and not config.storage.redis:
        raise HTTPException(
            409,
            "rate limits with server.workers > 1 need storage.redis: without it each worker "
            "would count alone",
        )


def _declared_key(key: Any) -> KeyView:
    return KeyView(
        name=key.name,
        prefix=None,
        team=key.team,
        models=key.models,
        limits=key.limits,
        budget=key.budget,
        expires_at=key.expires_at,
        metadata=key.metadata,
        created_at=None,
        revoked_at=None,
        declared=True,
    )


def _stored_key(key: StoredKey) -> KeyView:
    return KeyView(
        name=key.name,
        prefix=key.prefix,
        team=key.team,
        models=list(key.models) if key.models is not None else None,
        limits=key.limits,
        budget=key.budget,
        expires_at=key.expires_at,
        metadata=dict(key.metadata),
        created_at=key.created_at,
        revoked_at=key.revoked_at,
        declared=False,
    )


def _declared_team(team: dict[str, Any]) -> TeamView:
    return TeamView(**team, declared=True)


def _stored_team(team: StoredTeam) -> TeamView:
    return TeamView(
        name=team.name,
        models=list(team.models),
        limits=team.limits,
        budget=team.budget,
        metadata=dict(team.metadata),
        declared=False,
    )


def _budget_scopes(container: Container) -> list[BudgetScope]:
    directory = container.identifier.directory
    scopes: dict[str, BudgetScope] = {}
    policies = [entry.principal.policy for entry in directory.by_hash.values()]
    policies += directory.team_policies.values()
    for policy in policies:
        for scope in policy.budgets:
            scopes.setdefault(scope.key, scope)
    return list(scopes.values())


def _quotas(container: Container) -> list[Quota]:
    directory = container.identifier.directory
    quotas: dict[str, Quota] = {}
    policies = [entry.principal.policy for entry in directory.by_hash.values()]
    policies += directory.team_policies.values()
    for policy in policies:
        for quota in policy.all_quotas():
            quotas.setdefault(quota.key, quota)
    return list(quotas.values())
