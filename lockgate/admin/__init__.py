"""The admin API (`/admin/...`, OpenAPI at `/openapi.json`), a FastAPI app beside the hot path."""

from lockgate.admin.routes import SUPERVISED_ENV, create_admin_app

__all__ = ["SUPERVISED_ENV", "create_admin_app"]
