"""Gateway vs direct, on loopback: throughput, added latency and the gateway's peak RSS.

The simulator and wrk share CPU 1; each gateway (one worker) is pinned to CPU 0. Each scenario
runs wrk against the simulator directly, then against each gateway variant in front of it, in one
run, so the numbers compare like with like. Variants are described at `VARIANTS`; `--rounds N`
alternates the runs N times and keeps the best of each, for a noisy machine.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LOCKGATE = str(ROOT / ".venv" / "bin" / "lockgate")
GATEWAY_CPU, LOAD_CPU = "0", "1"

CHAT = {
    "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Say hello in one short sentence."},
    ],
    "max_tokens": 32,
}


PROMPT_4KB = (
    "Since the update yesterday our dashboard shows an error whenever I export the monthly "
    "usage report. Clearing the cache and another browser changed nothing; it worked last "
    "Tuesday. Could you look into it and tell me whether there is a workaround? "
) * 20


@dataclass(frozen=True)
class Scenario:
    name: str
    stream: bool
    connections: int
    direct_model: str
    gateway_model: str
    prompt: str | None = None
    """The user message instead of `CHAT`'s."""
    headers: tuple[tuple[str, str], ...] = ()
    unique: bool = False
    """Every request asks something new (a counter in the user message): all cache misses."""


SCENARIOS = [
    Scenario("json c64", False, 64, "sim-small", "bench"),
    # With the cache on, "json c64" is all hits and this all misses: the pair gives the
    # throughput of a hit against a proxied miss of the same gateway.
    Scenario("json c64, every request new", False, 64, "sim-small", "bench", unique=True),
    Scenario("json c64, 3 targets", False, 64, "sim-small", "bench-3"),
    Scenario("stream c64", True, 64, "sim-small", "bench"),
    Scenario(
        "json c64, 4 KB prompt, no-store",
        False,
        64,
        "sim-small",
        "bench",
        PROMPT_4KB[:4096],
        # Looked up in the cache (a miss) and guarded on every request, never kept.
        (("x-lockgate-cache", "no-store"),),
    ),
    Scenario("json c1", False, 1, "sim-small", "bench"),
    Scenario("json c1, anthropic target", False, 1, "sim-small", "bench-anthropic"),
    Scenario("stream c1", True, 1, "sim-small", "bench"),
    Scenario("stream c1, anthropic target", True, 1, "sim-small", "bench-anthropic"),
    Scenario("json c1, 50 ms upstream", False, 1, "sim-small?latency_ms=50", "bench-50ms"),
    Scenario("stream c1, 50 ms upstream", True, 1, "sim-small?latency_ms=50", "bench-50ms"),
]


@dataclass(frozen=True)
class Result:
    requests_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu: float | None = None
    """Share of one CPU the gateway used during the run (None for direct runs)."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_ready(url: str, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"not ready: {url}")


BENCH_KEY_HASH = "sha256:" + hashlib.sha256(b"bench-key").hexdigest()
VARIANTS = ("core", "counted", "bare", "memory", "redis", "protected", "cached", "forwarder")
"""`core`: no usage ledger, metrics or access log, to show what those cost; `counted`: ledger and
metrics on, access log off; `bare`: the defaults (all three on), open access; `memory` and
`redis`: the defaults plus an API key with a rate limit, counted in memory or in Redis;
`protected`: `bare` plus input and output guardrails (secrets and PII) and the memory cache;
`cached`: `bare` plus the memory cache, so every repeated request is a hit; `forwarder`: not
Lockgate but `bench/forwarder.py`, a bare uvicorn + aiohttp forwarder, for scale."""

GUARDRAILS = """guardrails:
  input: [{type: secrets, action: block}, {type: pii, action: redact}]
  output: [{type: pii, action: redact}]
"""


def gateway_config(sim_port: int, variant: str, workdir: Path, redis_url: str) -> str:
    """The gateway's config: the same models for every variant, plus its auth and limits."""
    access = ""
    if variant in ("memory", "redis"):
        # The limit is checked and counted on every request but never reached.
        access = f"keys: [{{name: bench, hash: '{BENCH_KEY_HASH}', limits: {{rpm: 1000000000}}}}]\n"
    redis = ""
    if variant == "redis":
        redis = f", redis: '{redis_url}', redis_prefix: 'bench:{os.getpid()}:'"
    ledger = ", ledger: false" if variant == "core" else ""
    observability = {
        "core": "access_log: false, metrics: false, ",
        "counted": "access_log: false, ",
    }.get(variant, "")
    protection = ""
    if variant in ("protected", "cached"):
        protection = "cache: {backend: memory}\n"
    if variant == "protected":
        protection += GUARDRAILS
    return f"""
storage: {{database: "sqlite:///{workdir}/{variant}.db"{redis}{ledger}}}
{access}{protection}
providers:
  - {{name: sim, type: openai, base_url: "http://127.0.0.1:{sim_port}/v1", api_key: bench-key}}
  - {{name: claude, type: anthropic, base_url: "http://127.0.0.1:{sim_port}", api_key: bench-key}}
models:
  - name: bench
    targets: [{{provider: sim, model: sim-small}}]
  - name: bench-50ms
    targets: [{{provider: sim, model: "sim-small?latency_ms=50"}}]
  - name: bench-anthropic
    targets: [{{provider: claude, model: sim-small}}]
  - name: bench-3
    targets:
      - {{provider: sim, model: sim-a}}
      - {{provider: sim, model: sim-b}}
      - {{provider: sim, model: sim-c}}
observability: {{{observability}log_level: warning}}
"""


def gateway_command(variant: str, port: int, workdir: Path) -> list[str]:
    if variant == "forwarder":
        python = str(ROOT / ".venv" / "bin" / "python")
        return [
            *(python, "-m", "uvicorn", "--app-dir", str(ROOT / "bench"), "forwarder:app"),
            *("--port", str(port), "--loop", "uvloop", "--http", "httptools"),
            *("--no-access-log", "--log-level", "warning"),
        ]
    config = workdir / f"{variant}.yaml"
    return [LOCKGATE, "serve", "-c", str(config), "--listen", f"127.0.0.1:{port}"]


def model_for(variant: str, scenario: Scenario) -> str:
    """The forwarder passes the body on as it is, so it is sent the upstream's model name."""
    return scenario.direct_model if variant == "forwarder" else scenario.gateway_model


def lua_script(directory: Path, model: str, scenario: Scenario) -> Path:
    chat = CHAT
    if scenario.prompt is not None:
        chat = {**CHAT, "messages": [{"role": "user", "content": scenario.prompt}]}
    body = json.dumps({"model": model, **chat, "stream": scenario.stream})
    path = directory / f"{abs(hash((model, scenario)))}.lua"
    headers = "".join(
        f"wrk.headers[{json.dumps(name)}] = {json.dumps(value)}\n"
        for name, value in scenario.headers
    )
    script = (
        'wrk.method = "POST"\n'
        'wrk.headers["Content-Type"] = "application/json"\n'
        'wrk.headers["Authorization"] = "Bearer bench-key"\n'
        f"{headers}wrk.body = {json.dumps(body)}\n"
    )
    if scenario.unique:
        # The counter goes where the user message ends: `..."sentence. 123"...`.
        head, tail = body.split('sentence."', 1)
        script += (
            # Runs start at least a second apart: a run never repeats an earlier run's body
            # (formatted with %d: LuaJIT would print a number this large as 1.7e+15).
            "local n = os.time() * 1000000\n"
            "request = function()\n"
            "  n = n + 1\n"
            f"  return wrk.format(nil, nil, nil, {json.dumps(head + 'sentence. ')} .. "
            'string.format("%d", n) .. '
            f"{json.dumps(chr(34) + tail)})\n"
            "end\n"
        )
    path.write_text(script)
    return path


def run_wrk(url: str, script: Path, connections: int, duration_s: int) -> Result:
    command = [
        "taskset",
        "-c",
        LOAD_CPU,
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{duration_s}s",
        "--latency",
        "-s",
        str(script),
        url,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"Non-2xx or 3xx responses:\s+(\d+)", output))
    errors += sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", output))
    return Result(rate, _percentile(output, "50"), _percentile(output, "99"), errors)


def _percentile(output: str, which: str) -> float:
    match = re.search(rf"^\s+{which}%\s+([\d.]+)(us|ms|s)\s*$", output, re.MULTILINE)
    if match is None:
        raise SystemExit(f"wrk printed no {which}th percentile:\n{output}")
    value, unit = float(match.group(1)), match.group(2)
    return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(re.search(r"VmHWM:\s+(\d+) kB", status).group(1)) / 1024  # type: ignore[union-attr]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=int, default=10, help="seconds per wrk run")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    parser.add_argument(
        "--only", default="", help="run only scenarios whose name contains this text"
    )
    parser.add_argument(
        "--variants",
        default="core,counted,bare",
        help=f"comma-separated gateway variants to measure, of {', '.join(VARIANTS)}",
    )
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="for `redis`")
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="measure each scenario this many times, alternating, and keep the best run of each",
    )
    args = parser.parse_args()
    variants = [v.strip() for v in args.variants.split(",") if v.strip()]
    unknown = set(variants) - set(VARIANTS)
    if unknown:
        raise SystemExit(f"unknown variants {sorted(unknown)}; choose from {VARIANTS}")
    if (os.cpu_count() or 1) < 2:
        raise SystemExit("the benchmark pins the gateway and the load to two different CPUs")

    sim_port = free_port()
    processes: list[subprocess.Popen[bytes]] = []
    gateways: dict[str, tuple[subprocess.Popen[bytes], int]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        try:
            processes.append(
                subprocess.Popen(
                    ["taskset", "-c", LOAD_CPU, LOCKGATE, "simulate", "--port", str(sim_port)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.DEVNULL,
                )
            )
            for variant in variants:
                if variant != "forwarder":
                    config = workdir / f"{variant}.yaml"
                    config.write_text(gateway_config(sim_port, variant, workdir, args.redis))
                port = free_port()
                log = (workdir / f"{variant}.log").open("wb")
                gateway = subprocess.Popen(
                    ["taskset", "-c", GATEWAY_CPU, *gateway_command(variant, port, workdir)],
                    stdout=log,
                    stderr=subprocess.STDOUT,  # access log lines to a file, as in production
                    env={**os.environ, "FORWARD_TO": f"http://127.0.0.1:{sim_port}"},
                )
                processes.append(gateway)
                gateways[variant] = (gateway, port)
                log.close()  # the gateway has its own handle
            wait_ready(f"http://127.0.0.1:{sim_port}/sim/stats")
            for _, port in gateways.values():
                wait_ready(f"http://127.0.0.1:{port}/readyz")
            rows = []
            for scenario in [s for s in SCENARIOS if args.only in s.name]:
                # Rounds alternate direct and every variant; the best of each is kept, since on
                # a shared machine noise only ever slows a run down.
                best: dict[str, Result] = {}
                for _ in range(args.rounds):
                    runs: dict[str, tuple[int, str, int | None]] = {
                        "direct": (sim_port, scenario.direct_model, None)
                    }
                    runs |= {
                        variant: (port, model_for(variant, scenario), gateway.pid)
                        for variant, (gateway, port) in gateways.items()
                    }
                    for name, (port, model, pid) in runs.items():
                        result = measure(workdir, port, model, scenario, args.duration, pid)
                        if name not in best or result.requests_per_s > best[name].requests_per_s:
                            best[name] = result
                for variant in gateways:
                    rows.append((scenario, variant, best["direct"], best[variant]))
                    print_row(scenario, variant, best["direct"], best[variant])
            rss = {variant: peak_rss_mb(gateway.pid) for variant, (gateway, _) in gateways.items()}
        finally:
            for process in processes:
                process.terminate()
            for process in processes:
                process.wait(timeout=30)
    for variant, mb in rss.items():
        print(f"gateway ({variant}) peak RSS: {mb:.1f} MB")
    _print_hit_ratio(rows)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "python": sys.version.split()[0],
                "duration_s": args.duration,
                "rounds": args.rounds,
                "gateway_peak_rss_mb": {variant: round(mb, 1) for variant, mb in rss.items()},
                "scenarios": [
                    {
                        "scenario": asdict(s),
                        "variant": variant,
                        "direct": asdict(d),
                        "gateway": asdict(g),
                    }
                    for s, variant, d, g in rows
                ],
            },
            indent=2,
        )
    )
    print(f"results: {args.out}")


def measure(
    workdir: Path,
    port: int,
    model: str,
    scenario: Scenario,
    duration_s: int,
    gateway_pid: int | None = None,
) -> Result:
    """One wrk run after a one-second warm-up; with the gateway's CPU share when given its pid."""
    script = lua_script(workdir, model, scenario)
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    run_wrk(url, script, scenario.connections, 1)  # warm-up
    if gateway_pid is None:
        return run_wrk(url, script, scenario.connections, duration_s)
    cpu_before, started = cpu_seconds(gateway_pid), time.monotonic()
    result = run_wrk(url, script, scenario.connections, duration_s)
    used = cpu_seconds(gateway_pid) - cpu_before
    return replace(result, cpu=used / (time.monotonic() - started))


def _print_hit_ratio(rows: list[tuple[Scenario, str, Result, Result]]) -> None:
    """A cache-on variant's throughput on repeated requests (hits) against new ones (misses)."""
    rates = {
        (scenario.name, variant): gateway.requests_per_s for scenario, variant, _, gateway in rows
    }
    for variant in ("cached", "protected"):
        hits = rates.get(("json c64", variant))
        misses = rates.get(("json c64, every request new", variant))
        bare = rates.get(("json c64", "bare"))
        if hits and misses:
            also = f", {hits / bare:.2f}x a bare gateway's proxied request" if bare else ""
            print(f"cache hits ({variant}): {hits / misses:.2f}x the throughput of misses{also}")


def print_row(scenario: Scenario, variant: str, direct: Result, gateway: Result) -> None:
    ratio = gateway.requests_per_s / direct.requests_per_s if direct.requests_per_s else 0
    cpu = gateway.cpu or 0.0
    cpu_us = cpu * 1e6 / gateway.requests_per_s if gateway.requests_per_s else 0.0
    print(
        f"{scenario.name:27} {variant:6} direct {direct.requests_per_s:7.0f}/s  "
        f"gateway {gateway.requests_per_s:7.0f}/s ({ratio:4.0%}, CPU {cpu:4.0%}, "
        f"{cpu_us:4.0f} us/req)  "
        f"p50 +{gateway.p50_ms - direct.p50_ms:6.3f} ms  "
        f"p99 +{gateway.p99_ms - direct.p99_ms:6.3f} ms  errors {direct.errors}/{gateway.errors}",
        flush=True,
    )


if __name__ == "__main__":
    main()
