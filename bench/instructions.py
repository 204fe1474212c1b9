"""CPU instructions per request of each gateway variant, counted by Valgrind (cachegrind).

Throughput on a shared VM moves by 10-20% from one minute to the next; instruction counts do not.
For each variant this runs the gateway under `valgrind --tool=cachegrind`, pinned to the gateway's
CPU, twice: once idle for as long as the load lasts (the baseline: starting, stopping and the
timers, ~3M instructions a second), once under a fixed wrk load; the difference divided by the
requests served is the gateway's instructions per request, including the SQLite writer thread.
What the ledger does once per batch (a transaction, about twice a second: ~1.5M instructions) is
shared by far fewer requests under Valgrind than in real use: the per-request numbers of the
variants that write a ledger are overstated, and move with the request rate the machine allows
(by ~1% from run to run): compare variants measured in the same run.

    .venv/bin/python bench/instructions.py            # ~15 minutes; needs valgrind and wrk
"""

from __future__ import annotations

import argparse
import compileall
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (
    GATEWAY_CPU,
    LOAD_CPU,
    LOCKGATE,
    ROOT,
    SCENARIOS,
    Scenario,
    free_port,
    gateway_config,
    lua_script,
)

KINDS = {
    "json": "json c64",
    "stream": "stream c64",
    "4kb": "json c64, 4 KB prompt, no-store",
}
"""Short names of the `bench/run.py` scenarios whose requests are counted."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--variants", default="core,counted,bare")
    parser.add_argument("--seconds", type=int, default=30, help="of wrk load per run")
    parser.add_argument("--kinds", default="json,stream", help=f"of {', '.join(KINDS)}")
    args = parser.parse_args()
    scenarios = {s.name: s for s in SCENARIOS}
    kinds = [(kind, scenarios[KINDS[kind]]) for kind in args.kinds.split(",")]
    # Stale bytecode would be compiled by whichever run imports it first, and counted there.
    compileall.compile_dir(ROOT / "lockgate", quiet=1)
    with tempfile.TemporaryDirectory(prefix="lockgate-instructions-") as tmp:
        workdir = Path(tmp)
        sim_port = free_port()
        simulator = subprocess.Popen(
            ["taskset", "-c", LOAD_CPU, LOCKGATE, "simulate", "--port", str(sim_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            for variant in args.variants.split(","):
                config = workdir / f"{variant}.yaml"
                config.write_text(gateway_config(sim_port, variant, workdir, ""))
                baseline, _ = run(workdir, config, variant, None, args.seconds)
                for kind, scenario in kinds:
                    total, served = run(workdir, config, variant, scenario, args.seconds)
                    per_request = (total - baseline) / served
                    print(
                        f"{variant:8} {kind:6} {per_request / 1000:7.0f}k instructions/request "
                        f"({served} requests)",
                        flush=True,
                    )
        finally:
            simulator.terminate()
            simulator.wait(timeout=30)


def run(
    workdir: Path, config: Path, variant: str, scenario: Scenario | None, seconds: int
) -> tuple[int, int]:
    """Instructions the gateway executed from start to stop, and the requests it served (without
    a scenario: none, idle for `seconds`)."""
    for old in workdir.glob(f"{variant}.db*"):
        old.unlink()
    port = free_port()
    out = workdir / f"{variant}.cachegrind"
    gateway = subprocess.Popen(
        [
            "taskset",
            "-c",
            GATEWAY_CPU,
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
            # `lockgate serve` execs the serving process (counted: the same pid, so the same
            # file) after migrating in a child (not counted).
            "--trace-children=yes",
            "--trace-children-skip-by-arg=lockgate.storage.migrate",
            f"--cachegrind-out-file={out}",
            sys.executable,
            LOCKGATE,
            "serve",
            "-c",
            str(config),
            "--listen",
            f"127.0.0.1:{port}",
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 300
    while True:
        try:
            with urllib.request.urlopen(f"{url}/readyz", timeout=5):
                break
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit("the gateway did not start under valgrind") from None
            time.sleep(0.5)
    served = 0
    if scenario is None:
        time.sleep(seconds)
    else:
        script = lua_script(workdir, "bench", scenario)
        result = subprocess.run(
            [
                "taskset",
                "-c",
                LOAD_CPU,
                "wrk",
                "-t1",
                "-c8",
                f"-d{seconds}s",
                "-s",
                str(script),
                f"{url}/v1/chat/completions",
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        served = int(re.search(r"(\d+) requests in", result.stdout).group(1))  # type: ignore[union-attr]
    time.sleep(2)
    gateway.terminate()
    gateway.wait(timeout=120)
    summary = re.search(r"^summary: (\d+)", out.read_text(), re.MULTILINE)
    assert summary is not None
    return int(summary.group(1)), served


if __name__ == "__main__":
    main()
