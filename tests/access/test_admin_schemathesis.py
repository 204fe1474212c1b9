"""Schemathesis against the admin API of a running gateway: no input makes it answer 5xx.

The gateway serves on the test's event loop; schemathesis' client is blocking, so it runs in a
thread. Generation is derandomized (the same cases every run) and bounded per operation, in both
schemathesis modes: valid input, and input that breaks the schema. `LOCKGATE_FUZZ_EXAMPLES=300`
runs a deeper (slower) search locally.
"""

from __future__ import annotations

import asyncio
import os
import traceback
from pathlib import Path
from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import Case, GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.core.result import Ok

from lockgate.config.loader import load_config
from tests.access.admin_helpers import ADMIN_KEY, base_yaml, declared_key_yaml, raw_request
from tests.conftest import running_gateway

EXAMPLES_PER_OPERATION = int(os.environ.get("LOCKGATE_FUZZ_EXAMPLES", "30"))
AUTH = {"authorization": f"Bearer {ADMIN_KEY}"}


def fuzz(url: str) -> list[str]:
    """Run every operation in both modes; a report per operation that found a failure."""
    schema = schemathesis.openapi.from_url(f"{url}/openapi.json", timeout=10)
    results = list(schema.get_all_operations())
    operations = [result.ok() for result in results if isinstance(result, Ok)]
    assert len(operations) == len(results) == 18  # every operation's schema is usable
    failures = []
    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=EXAMPLES_PER_OPERATION,
                derandomize=True,
                database=None,
                deadline=None,
                phases=[Phase.explicit, Phase.generate, Phase.shrink],
                suppress_health_check=list(HealthCheck),
                print_blob=False,
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: Case[Any]) -> None:
                case.call_and_validate(
                    base_url=url, headers=AUTH, checks=[not_a_server_error], timeout=10
                )

            try:
                check()
            except Unsatisfiable:
                # Nothing in the operation can be made invalid (no body, no constrained
                # parameter): there is no negative case to send.
                assert mode is GenerationMode.NEGATIVE, operation.label
            except Exception:
                failures.append(
                    f"{operation.label} ({mode.value}):\n{traceback.format_exc(limit=0)}"
                )
    return failures


async def test_the_admin_api_answers_no_5xx(tmp_path: Path) -> None:
    path = tmp_path / "lockgate.yaml"
    path.write_text(
        base_yaml(database=f"sqlite:///{tmp_path / 'fuzz.db'}")
        + "teams: [{name: declared-team}]\nkeys:\n"
        + declared_key_yaml("declared-bot", team="declared-team")
    )
    async with running_gateway(load_config(path), source=path) as url:
        failures = await asyncio.to_thread(fuzz, url)
        # The gateway still serves after the run.
        assert (await raw_request(url, "GET", "/healthz")).status == 200
    assert not failures, "\n\n".join(failures)
