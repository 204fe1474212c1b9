"""`create_app(config)` -> the ASGI application: routes and lifespan, no logic."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from lockgate.api.http import ClientGone, Receive, Request, Scope, Send
from lockgate.api.replies import send_error
from lockgate.config.models import GatewayConfig
from lockgate.container import Container
from lockgate.errors import GatewayError, MethodNotAllowed, RouteNotFound, openai_error_body

__all__ = ["LockgateApp", "create_app"]

log = logging.getLogger("lockgate")

Handler = Callable[[Request, Send], Awaitable[None]]


class LockgateApp:
    """Dispatches by exact path and method; services are built at lifespan startup."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self.container: Container | None = None
        self._routes: dict[str, dict[str, Handler]] = {}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            await self._http(scope, receive, send)
        elif scope["type"] == "lifespan":
            await self._lifespan(receive, send)

    async def startup(self) -> None:
        container = await Container.start(self.config)
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

    async def shutdown(self) -> None:
        if self.container is not None:
            await self.container.close()
            self.container = None

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        try:
            methods = self._routes.get(scope["path"])
            if methods is None:
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


async def _send_error(send: Send, error: GatewayError, request_id: bytes) -> None:
    await send_error(send, error, request_id, error.status, openai_error_body(error))


def create_app(config: GatewayConfig) -> LockgateApp:
    return LockgateApp(config)
