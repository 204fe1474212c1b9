"""``lockgate simulate``: run the local fake OpenAI-compatible provider."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console

from lockgate.simulate.settings import SimulatorSettings
from lockgate.simulate.sockets import url_host


def simulate(
    host: Annotated[str, typer.Option(help="Interface to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0 picks a free one).")] = 8090,
    latency_ms: Annotated[
        float, typer.Option("--latency-ms", help="Delay before each response, in ms.")
    ] = 0.0,
    tokens_per_s: Annotated[
        float, typer.Option("--tokens-per-s", help="Stream pacing; 0 sends chunks at once.")
    ] = 0.0,
    tokens: Annotated[int, typer.Option(help="Words (tokens) per completion.", min=0)] = 20,
    workers: Annotated[
        int, typer.Option(help="Processes sharing the port via SO_REUSEPORT.", min=1)
    ] = 1,
) -> None:
    """Run a fake LLM provider speaking the OpenAI API (for tests, demos and benchmarks)."""
    settings = SimulatorSettings(
        latency_ms=latency_ms, tokens_per_s=tokens_per_s, completion_tokens=tokens
    )
    console = Console()

    def announce(bound: int) -> None:
        plural = "s" if workers > 1 else ""
        console.print(
            f"[bold green]Lockgate simulator[/] listening on "
            f"[cyan]http://{url_host(host)}:{bound}/v1[/] ({workers} worker{plural})",
            soft_wrap=True,
            highlight=False,
        )

    from lockgate.simulate.server import run_simulator  # aiohttp's server: only when it runs

    run_simulator(settings, host, port, workers, on_listening=announce)


def register(app: typer.Typer) -> None:
    """Add the ``simulate`` command to the ``lockgate`` CLI."""
    app.command("simulate")(simulate)
