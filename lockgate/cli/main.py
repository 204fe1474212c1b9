"""`lockgate` command line: one module per verb group, assembled here."""

from __future__ import annotations

import typer

from lockgate.cli import ci as ci_commands
from lockgate.cli import config as config_commands
from lockgate.cli import db as db_commands
from lockgate.cli import keys as keys_commands
from lockgate.cli import prompts as prompts_commands
from lockgate.cli import serve as serve_command
from lockgate.cli import simulate as simulate_command
from lockgate.cli import usage as usage_command

__all__ = ["app", "main"]

app = typer.Typer(
    name="lockgate",
    help="Lockgate: a self-hosted AI gateway.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
serve_command.register(app)
config_commands.register(app)
simulate_command.register(app)
db_commands.register(app)
keys_commands.register(app)
usage_command.register(app)
prompts_commands.register(app)
ci_commands.register(app)


def main() -> None:
    app()
