"""CPU instructions per request of each gateway variant, counted by Valgrind (cachegrind).

Throughput on a shared VM moves by 10-20% from one minute to the next; instruction counts do not.
For each variant this runs the gateway under `valgrind --tool=cachegrind` twice: once only
starting and stopping (the baseline), once under a fixed wrk load; the difference divided by the
requests served is the gateway's instructions per request, including the SQLite writer thread.
Timers (the ledger's twice-a-second write, the key refresh) cost per second, not per request,
and under Valgrind far fewer requests share each second than in real use: the per-request
numbers of the variants that write a ledger are somewhat overstated.

    .venv/bin/python bench/instructions.py            # ~10 minutes; needs valgrind and wrk
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from run import (
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
                baseline, _ = run(workdir, config, variant, None, 0)
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
    """Instructions the gateway executed from start to stop, and the requests it served."""
    for old in workdir.glob(f"{variant}.db*"):
        old.unlink()
    port = free_port()
    out = workdir / f"{variant}.cachegrind"
    gateway = subprocess.Popen(
        [
            "valgrind",
            "--tool=cachegrind",
            "--cache-sim=no",
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
    if scenario is not None:
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
