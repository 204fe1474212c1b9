"""The admin API (`/admin/...`, OpenAPI at `/openapi.json`), a FastAPI app beside the hot path.

FastAPI and the admin routes load on the first admin request (`create_admin_app`), not with the
gateway: most workers never answer one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from fastapi import FastAPI

    from lockgate.app import LockgateApp

__all__ = ["SUPERVISED_ENV", "create_admin_app"]

SUPERVISED_ENV = "LOCKGATE_SUPERVISED"
"""Set in worker processes of `lockgate serve --workers N`: a reload asks the supervisor to
pass SIGHUP to every worker."""


def create_admin_app(app: LockgateApp) -> FastAPI:
    from lockgate.admin import config_view, routes, usage

    admin = routes.create_admin_app(app)
    admin.include_router(usage.router)
    admin.include_router(config_view.router)
    return admin
