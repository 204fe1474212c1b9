"""Assembling the simulator's aiohttp application."""

from __future__ import annotations

from aiohttp import web

from lockgate.simulate.anthropic_handlers import AnthropicHandlers
from lockgate.simulate.bedrock_handlers import BedrockHandlers
from lockgate.simulate.cohere_handlers import CohereHandlers
from lockgate.simulate.echo import echoes, record_echoes
from lockgate.simulate.gemini_handlers import GeminiHandlers
from lockgate.simulate.handlers import SimulatorHandlers
from lockgate.simulate.settings import SimulatorSettings
from lockgate.simulate.state import STATE_KEY, SimulatorState

# Large enough for base64 images in chat messages.
MAX_REQUEST_BYTES = 64 * 1024 * 1024
AZURE_PREFIX = "/openai/deployments/{deployment}"
VERTEX_PREFIX = "/v1/projects/{project}/locations/{location}/publishers/google"


def create_simulator_app(settings: SimulatorSettings | None = None) -> web.Application:
    """A fresh app with its own counters and fault state (``app[STATE_KEY]``)."""
    state = SimulatorState(settings or SimulatorSettings())
    handlers = SimulatorHandlers(state)
    app = web.Application(client_max_size=MAX_REQUEST_BYTES, middlewares=[record_echoes])
    app[STATE_KEY] = state
    router = app.router
    for prefix in ("/v1", "/openai/v1"):
        router.add_post(f"{prefix}/chat/completions", handlers.chat_completions)
        router.add_post(f"{prefix}/embeddings", handlers.embeddings)
        router.add_get(f"{prefix}/models", handlers.models)
        router.add_get(f"{prefix}/models/{{model}}", handlers.model)
    router.add_post(f"{AZURE_PREFIX}/chat/completions", handlers.azure_chat_completions)
    router.add_post(f"{AZURE_PREFIX}/embeddings", handlers.azure_embeddings)
    router.add_post("/v1/messages", AnthropicHandlers(state).messages)
    gemini = GeminiHandlers(state)
    router.add_post("/v1beta/models/{target}", gemini.gemini)
    router.add_post(f"{VERTEX_PREFIX}/models/{{target}}", gemini.vertex)
    router.add_post("/model/{model}/{method}", BedrockHandlers(state).converse)
    router.add_post("/v2/{operation}", CohereHandlers(state).serve)
    router.add_get("/sim/stats", handlers.stats)
    router.add_get("/sim/echoes", echoes)
    router.add_post("/sim/reset", handlers.reset)
    router.add_route("*", "/{tail:.*}", handlers.not_found)
    return app
