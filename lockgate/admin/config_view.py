"""`GET /admin/config`: the running gateway's effective config and prompt files, secrets redacted.

What `lockgate config diff` compares a file with. Each secret is a fingerprint keyed with the admin
key (`lockgate.config.diff.fingerprint`): the command, holding that key, fingerprints the file's
secrets the same way, so a changed secret shows as changed and its value never leaves the gateway.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from fastapi import APIRouter, Depends, HTTPException, Request

from lockgate.admin.routes import Running, require_admin
from lockgate.config.diff import ConfigSnapshot, snapshot

if TYPE_CHECKING:
    from lockgate.app import LockgateApp
    from lockgate.container import Container
    from lockgate.prompts.registry import PromptRegistry

__all__ = ["router"]

router = APIRouter(prefix="/admin", dependencies=[Depends(require_admin)], tags=["config"])


@router.get("/config", response_model=ConfigSnapshot)
async def running_config(request: Request, running: Running) -> ConfigSnapshot:
    """The config this gateway runs (defaults filled in; every secret, and every credential in a
    URL, replaced by `***hmac-sha256:<16 hex>`, an HMAC-SHA256 keyed with the admin key), the
    SHA-256 of each prompt version file it serves and each prompt's labels, the config file it
    reloads from, and the `server` settings the command line overrides."""
    app: LockgateApp = request.app.state.lockgate
    _, container = running
    admin_key = app.config.server.admin_key
    if admin_key is None:  # never: require_admin let the request in with it
        raise HTTPException(401, "the admin API needs the admin key")
    return snapshot(
        app.config,
        _registry(container),
        key=admin_key.get_secret_value().encode(),
        source=None if app.source is None else str(app.source),
        # What `lockgate serve --listen/--workers` set: a reload keeps it (LockgateApp has no
        # public accessor for it yet).
        overrides=app.server_overrides.keys(),
    )


def _registry(container: Container) -> PromptRegistry | None:
    """The prompt registry the container serves: the files as loaded, not as they are on disk now
    (the container keeps it only inside its prompt endpoints)."""
    if container.prompts is None:
        return None
    return container.prompts.registry
