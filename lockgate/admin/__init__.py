"""The admin API (`/admin/...`, OpenAPI at `/openapi.json`), a FastAPI app beside the hot path."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lockgate.admin import config_view, routes, usage
from lockgate.admin.routes import SUPERVISED_ENV

if TYPE_CHECKING:
    from fastapi import FastAPI

    from lockgate.app import LockgateApp

__all__ = ["SUPERVISED_ENV", "create_admin_app"]


def create_admin_app(app: LockgateApp) -> FastAPI:
    admin = routes.create_admin_app(app)
    admin.include_router(usage.router)
    admin.include_router(config_view.router)
    return admin
