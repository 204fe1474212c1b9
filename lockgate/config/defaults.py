"""The embedded default: a working config when no file is given.

`lockgate serve` without `-c` reads ./lockgate.yaml; failing that it builds a config from what it
finds (OPENAI_API_KEY, a local Ollama); failing that it serves the built-in simulator as a demo
provider. Every choice is reported, so nobody mistakes the simulator for a model.
"""

from __future__ import annotations

import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from lockgate.config.loader import load_config
from lockgate.config.models import GatewayConfig, ModelConfig, ProviderConfig, TargetConfig

__all__ = ["ResolvedConfig", "resolve_config"]

OLLAMA_URL = "http://127.0.0.1:11434"


@dataclass(frozen=True)
class ResolvedConfig:
    config: GatewayConfig
    source: str
    """`file:PATH`, `env` or `demo`: how a worker process rebuilds the same config."""
    notes: list[str]


def resolve_config(
    path: Path | None, env: Mapping[str, str], cwd: Path, probe_ollama: bool = True
) -> ResolvedConfig:
    """The config to serve, and what was found on the way."""
    if path is not None:
        return ResolvedConfig(load_config(path, env), f"file:{path}", [f"config: {path}"])
    local = cwd / "lockgate.yaml"
    if local.is_file():
        return ResolvedConfig(load_config(local, env), f"file:{local}", [f"config: {local}"])
    providers: list[ProviderConfig] = []
    models: list[ModelConfig] = []
    notes: list[str] = ["no lockgate.yaml here: building a config from the environment"]
    openai_key = env.get("OPENAI_API_KEY")
    ollama_url = env.get("OLLAMA_HOST", OLLAMA_URL) if probe_ollama else None
    if ollama_url and not ollama_url.startswith("http"):
        ollama_url = f"http://{ollama_url}"
    if ollama_url and _ollama_answers(ollama_url):
        providers.append(
            ProviderConfig(name="ollama", type="openai", base_url=f"{ollama_url.rstrip('/')}/v1")
        )
        models.append(_passthrough("ollama/*", "ollama"))
        shown = urllib.parse.urlsplit(ollama_url).hostname or "the configured host"
        notes.append(f"found Ollama on {shown}: models as ollama/<name>")
    if openai_key:
        providers.append(
            ProviderConfig(name="openai", type="openai", api_key=SecretStr(openai_key))
        )
        models.append(_passthrough("*", "openai"))
        notes.append("found OPENAI_API_KEY: any other model name goes to OpenAI")
    elif providers:
        models.append(_passthrough("*", "ollama"))
    if providers:
        return ResolvedConfig(GatewayConfig(providers=providers, models=models), "env", notes)
    demo = GatewayConfig(
        providers=[ProviderConfig(name="simulator", type="simulator")],
        models=[
            ModelConfig(
                name="demo-chat", targets=[TargetConfig(provider="simulator", model="demo-chat")]
            ),
            ModelConfig(
                name="demo-embedding",
                targets=[TargetConfig(provider="simulator", model="demo-embedding")],
            ),
            _passthrough("*", "simulator"),
        ],
    )
    notes += [
        "no provider found (no OPENAI_API_KEY, no Ollama on 127.0.0.1:11434)",
        "serving the built-in SIMULATOR as a demo provider: "
        "its answers are made up, not from a model",
        "to use a real model: set OPENAI_API_KEY, or write a lockgate.yaml (docs/configuration.md)",
    ]
    return ResolvedConfig(demo, "demo", notes)


def _passthrough(name: str, provider: str) -> ModelConfig:
    return ModelConfig(name=name, targets=[TargetConfig(provider=provider, model="*")])


def _ollama_answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url.rstrip('/')}/api/version", timeout=0.3) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False
