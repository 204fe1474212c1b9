"""`create_app(config)` -> the ASGI application: routes, lifespan, and config reload.

Client endpoints are dispatched by exact path to plain ASGI handlers (the hot path); `/admin/...`
and `/openapi.json` go to the admin API, a FastAPI app. A reload builds a whole new `Container`
and swaps it in; requests already running finish on the one they started with.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from pathlib import Path

from lockgate.api.http import ClientGone, Receive, Request, Scope, Send
from lockgate.api.replies import send_error
from lockgate.config.loader import ConfigError, load_config
from lockgate.config.models import GatewayConfig
from lockgate.config.prompts import PROMPT_API_PREFIX
from lockgate.container import Container, Services, load_directory
from lockgate.errors import GatewayError, MethodNotAllowed, RouteNotFound, openai_error_body
from lockgate.prompts.errors import PromptFilesError

__all__ = ["LockgateApp", "create_app"]

log = logging.getLogger("lockgate")

Handler = Callable[[Request, Send], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class LockgateApp:
    """Dispatches by exact path and method; services are built at lifespan startup."""

    def __init__(
        self,
        config: GatewayConfig,
        source: Path | None = None,
        handle_sighup: bool = False,
        server_overrides: Mapping[str, object] | None = None,
    ) -> None:
        self.config = config
        self.source = source
        """The config file, re-read on reload (None: the config did not come from a file)."""
        self._server_overrides = dict(server_overrides or {})
        """`server` settings given on the command line: they win over the file on reload too."""
        self.services: Services | None = None
        self.container: Container | None = None
        self._handle_sighup = handle_sighup
        self._routes: dict[str, dict[str, Handler]] = {}
        self._admin: ASGIApp | None = None
        self._refresher: asyncio.Task[None] | None = None
        self._reload_lock = asyncio.Lock()
        self._revision = 0
        self._background: set[asyncio.Task[None]] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            if self.services is not None and (
                path.startswith("/admin/") or path in ("/admin", "/openapi.json")
            ):
                await self._admin_app()(scope, receive, send)
            else:
                await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    def _admin_app(self) -> ASGIApp:
        """The admin API, built on its first use (FastAPI costs memory a gateway may not need)."""
        if self._admin is None:
            from lockgate.admin import create_admin_app

            self._admin = create_admin_app(self)
        return self._admin

    async def startup(self) -> None:
        services = await Services.start(self.config)
        try:
            container = await Container.start(self.config, services, self._config_dir)
        except BaseException:
            await services.close()
            raise
        self.services = services
        self._use(container)
        self._revision = await services.database.current_revision()
        self._refresher = asyncio.get_running_loop().create_task(self._refresh_loop())
        # Everything built so far lives as long as the process: keep it out of the cyclic
        # garbage collector's scans, which otherwise grow with every library imported.
        gc.collect()
        gc.freeze()
        if self._handle_sighup:
            asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, self._on_sighup)

    async def shutdown(self) -> None:
        if self._refresher is not None:
            self._refresher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refresher
        if self.container is not None:
            await self.container.close()
            self.container = None
        if self.services is not None:
            await self.services.close()
            self.services = None

    @property
    def server_overrides(self) -> Mapping[str, object]:
        """`server` settings the command line set (`--listen`, `--workers`); reloads keep them."""
        return self._server_overrides

    @property
    def _config_dir(self) -> Path | None:
        """Relative paths in the config (the prompts folder) start here."""
        return None if self.source is None else Path(self.source).parent

    async def reload(self) -> list[str]:
        """Re-read the config file and swap it in; the problems found, or [] when it took."""
        async with self._reload_lock:
            if self.source is None:
                return [
                    "this gateway's config did not come from a file: there is nothing to reload"
                ]
            try:
                config = apply_server_overrides(load_config(self.source), self._server_overrides)
            except ConfigError as exc:
                return [str(issue) for issue in exc.issues]
            except OSError as exc:
                return [f"{self.source}: cannot read it ({exc.strerror})"]
            problems = _restart_only_changes(self.config, config)
            if problems:
                return problems
            services = self.services
            if services is None:
                return ["the gateway is not running"]
            try:
                container = await Container.start(config, services, self._config_dir)
            except PromptFilesError as exc:
                return exc.problems
            services.replace_alerts(config)
            old = self.container
            self.config = config
            self._use(container)
            if old is not None:
                self._retire(old)
            log.info("config reloaded from %s", self.source)
            return []

    async def refresh_keys(self) -> None:
        """Reload keys and teams from the database now (after a change made here)."""
        if self.services is None or self.container is None:
            return
        self._revision = await self.services.database.current_revision()
        directory = await load_directory(self.config, self.services.database)
        self.container.identifier.replace(directory)

    def _use(self, container: Container) -> None:
        self.container = container
        self._routes = {
            "/v1/chat/completions": {"POST": container.openai.chat_completions},
            "/chat/completions": {"POST": container.openai.chat_completions},
            "/v1/messages": {"POST": container.anthropic.messages},
            "/v1/embeddings": {"POST": container.openai.embeddings},
            "/embeddings": {"POST": container.openai.embeddings},
            "/v1/models": {"GET": container.openai.models},
            "/models": {"GET": container.openai.models},
            "/healthz": {"GET": container.health.healthz},
            "/readyz": {"GET": container.health.readyz},
        }
        if container.metrics is not None:
            self._routes["/metrics"] = {"GET": container.metrics.metrics}
        if container.gitlab is not None:
            self._routes["/gitlab/merge-requests/review"] = {"POST": container.gitlab.review}
        for path, (handler, methods) in container.apis.items():
            self._routes[path] = dict.fromkeys(methods, handler)
        if self.services is not None:
            self.services.metrics.set_health_source(container.gateway.target_health)

    def _retire(self, container: Container) -> None:
        async def close_when_idle() -> None:
            if container.active:
                await container.idle.wait()
            await container.close()

        container.retired = True

        self._spawn(close_when_idle())

    def _on_sighup(self) -> None:
        async def reload() -> None:
            problems = await self.reload()
            for problem in problems:
                log.error("config reload failed: %s", problem)

        self._spawn(reload())

    def _spawn(self, work: Coroutine[None, None, None]) -> None:
        task = asyncio.get_running_loop().create_task(work)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def _refresh_loop(self) -> None:
        """Pick up keys and teams changed by any worker or instance (revocation within ~1 s)."""
        assert self.services is not None
        database = self.services.database
        while True:
            await asyncio.sleep(self.config.storage.key_refresh_s)
            try:
                revision = await database.current_revision()
                if revision != self._revision:
                    await self.refresh_keys()
            except Exception:
                log.warning("reading key changes from the database failed", exc_info=True)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        container = self.container
        if container is not None:
            container.active += 1
        try:
            methods = self._routes.get(scope["path"])
            if methods is None:
                if container is not None and scope["path"].startswith(PROMPT_API_PREFIX):
                    if container.prompts is None:
                        raise RouteNotFound(
                            f"No prompts are served here: {scope['path']} needs a prompts "
                            "folder (docs/prompts.md)"
                        )
                    methods = {"POST": container.prompts.by_name}
                else:
                    raise RouteNotFound(f"No route for {scope['path']}")
            handler = methods.get(scope["method"])
            if handler is None:
                raise MethodNotAllowed(
                    f"{scope['method']} is not allowed on {scope['path']}; use "
                    + ", ".join(methods)
                )
            await handler(request, send)
        except GatewayError as error:
            await _send_error(send, error, request.request_id)
        except ClientGone:
            return
        except Exception:
            log.exception("unexpected error (request %s)", request.request_id.decode())
            await _send_error(
                send,
                GatewayError("The gateway failed to handle this request", code="internal_error"),
                request.request_id,
            )
        finally:
            if container is not None:
                container.active -= 1
                if container.retired and not container.active:
                    container.idle.set()

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self.startup()
                except Exception as exc:
                    log.exception("startup failed")
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.shutdown()
                await send({"type": "lifespan.shutdown.complete"})
                return


def _restart_only_changes(old: GatewayConfig, new: GatewayConfig) -> list[str]:
    """Settings a running process cannot change: they need a restart, so the reload refuses."""
    problems = []
    for field in ("listen", "workers"):
        if getattr(old.server, field) != getattr(new.server, field):
            problems.append(f"server.{field} changed: restart the gateway to apply it")
    if old.storage != new.storage:
        problems.append("storage changed: restart the gateway to apply it")
    for field in ("otlp_endpoint", "trace_sample_ratio", "service_name"):
        if getattr(old.observability, field) != getattr(new.observability, field):
            problems.append(f"observability.{field} changed: restart the gateway to apply it")
    return problems


async def _send_error(send: Send, error: GatewayError, request_id: bytes) -> None:
    await send_error(send, error, request_id, error.status, openai_error_body(error))


def apply_server_overrides(config: GatewayConfig, overrides: Mapping[str, object]) -> GatewayConfig:
    """`config` with `server` settings replaced (already validated by the command line)."""
    if not overrides:
        return config
    server = config.server.model_copy(update=dict(overrides))
    return config.model_copy(update={"server": server})


def create_app(
    config: GatewayConfig,
    source: Path | None = None,
    handle_sighup: bool = False,
    server_overrides: Mapping[str, object] | None = None,
) -> LockgateApp:
    return LockgateApp(config, source, handle_sighup, server_overrides)
