"""What guardrails and cache lookups cost a request with a 4 KB prompt (median µs, in-process).

First each detector family's scan of 4 KB (a support ticket, a code diff, a text full of
findings); then the whole per-request work as the pipeline does it: input rules on the request
body, the cache key and a memory-cache lookup that misses, and output rules on a 1 KB answer.
The issue's budget for that is 100 µs. The load benchmark (`bench/run --variants
bare,protected`) shows the same cost end to end.

Run: `.venv/bin/python bench/protection.py` (`--runs N` for more samples on a noisy machine).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import orjson

from lockgate.auth.policy import UNRESTRICTED, Principal
from lockgate.cache.responses import ResponseCache
from lockgate.cache.stores import MemoryStore
from lockgate.config.models import CacheConfig, GuardrailRule, GuardrailsConfig
from lockgate.guard.checks import Guard
from lockgate.guard.detectors import pii_detector, secrets_detector
from lockgate.guard.text import Found
from lockgate.options import RequestOptions

SIZE = 4096

TICKET = """Hello support team,

since the update to version 2.4 yesterday our dashboard shows an error whenever I try to export
the monthly usage report. I have tried clearing the cache, logging out and in again, and using
another browser, but nothing changed. The export worked fine last Tuesday at about 10:45 and the
report for March was complete. Our team has 12 members and we mostly use the reporting page in
the morning, so this is blocking our weekly review meeting. Could you please look into it and
let me know whether this is a known problem? If you need more details about our account or the
steps I took, I am happy to provide them. We would also like to know if there is a workaround we
can use until a fix is released, for example exporting the data through the API instead of the
web page. Thank you in advance for your help, and have a great day.

Best regards,
Maria from the finance department
"""

DIFF = '''diff --git a/lockgate/usage/ledger.py b/lockgate/usage/ledger.py
index 3f2a1b0..8c9d4e2 100644
--- a/lockgate/usage/ledger.py
+++ b/lockgate/usage/ledger.py
@@ -112,13 +112,19 @@ class Ledger:
     async def record(self, entry: UsageEntry) -> None:
-        """Queue one entry; the writer task flushes every `flush_interval` seconds."""
-        self._queue.append(entry)
+        """Queue one entry; the writer flushes every `flush_interval_s` seconds or 500 rows."""
+        self._queue.append(entry)
+        if len(self._queue) >= self._max_batch:
+            self._wake.set()
         self._metrics.queued.inc()
+
     async def _write_loop(self) -> None:
         while not self._closed:
-            await asyncio.sleep(self._interval)
+            try:
+                await asyncio.wait_for(self._wake.wait(), timeout=self._interval)
+            except TimeoutError:
+                pass
+            self._wake.clear()
             batch, self._queue = self._queue, []
             if batch:
                 await self._flush(batch)
'''

FINDINGS = """From: dana.miller@example.com, phone +44 20 7946 0958 or (555) 234-5678.
Card 4111 1111 1111 1111, IBAN DE89 3704 0044 0532 0130 00, SSN 123-45-6789, host 10.20.30.40.
+AWS_ACCESS_KEY_ID=AKIAZ7QW3ERT5YUI9OPL
+aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzq8TkpL2Xd"
GITLAB_TOKEN=glpat-Xy8Kq2LmN4pR7sTv9WbZ and ghp_Ab3dE5fG7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5
Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3
-----BEGIN RSA PRIVATE KEY-----
MIIEowIBAAKCAQEAx7Qzkq9Lm3wJalrXUtnFEMI
-----END RSA PRIVATE KEY-----
"""


def four_kb(text: str) -> str:
    return (text * (SIZE // len(text) + 1))[:SIZE]


def median_us(scan: Callable[[str], object], text: str, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter_ns()
        scan(text)
        times.append(time.perf_counter_ns() - start)
    return statistics.median(times) / 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3000)
    runs = parser.parse_args().runs
    secrets, pii = secrets_detector(), pii_detector()
    scans: dict[str, Callable[[str], object]] = {
        "secrets": secrets.find,
        "pii": pii.find,
        "both": lambda text: (secrets.find(text), pii.find(text)),
    }
    texts = {"ticket": TICKET, "diff": DIFF, "findings": FINDINGS}
    print(f"{'µs per 4 KB scan (median)':28}" + "".join(f"{name:>10}" for name in scans))
    for name, text in texts.items():
        sample = four_kb(text)
        row = [median_us(scan, sample, runs) for scan in scans.values()]
        found = len(secrets.find(sample)) + len(pii.find(sample))
        label = f"{name} ({found} findings)"
        print(f"{label:28}" + "".join(f"{us:10.1f}" for us in row))
    print()
    request_path(runs)


RULES = GuardrailsConfig(
    input=[
        GuardrailRule(type="secrets", action="block"),
        GuardrailRule(type="pii", action="redact"),
    ],
    output=[
        GuardrailRule(type="regex", pattern="(?i)internal use only", action="block"),
        GuardrailRule(type="pii", action="redact"),
    ],
)


def request_path(runs: int) -> None:
    """Guard the input, plan and look up the cache (a miss), guard a 1 KB answer."""
    guard = Guard(RULES)
    cache = ResponseCache(CacheConfig(), [], MemoryStore(64 << 20))
    principal = Principal("key", "bench", "platform", UNRESTRICTED)
    answer = orjson.dumps(
        {
            "id": "chatcmpl-1",
            "object": "chat.completion",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": TICKET[:1024]}}],
        }
    )

    async def embed(model: str, text: str) -> list[float]:
        raise AssertionError("no semantic cache here")

    def one(prompt: str) -> None:
        raw = {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "You are a support assistant."},
                {"role": "user", "content": prompt},
            ],
            "temperature": 0.2,
        }
        found = Found("bench")
        guard.check_request(raw, found)
        plan = cache.plan(principal, "openai", raw, "gpt-4o-mini", RequestOptions())
        coroutine = cache.get(plan, embed)
        with contextlib.suppress(StopIteration):
            coroutine.send(None)  # a memory lookup completes without suspending
        guard.check_answer(answer, "openai", found)

    print(f"{'µs per request (median)':28}{'4 KB prompt':>14}")
    for name, text in (("ticket", TICKET), ("diff", DIFF)):
        print(f"{name:28}{median_us(one, four_kb(text), runs):14.1f}")


if __name__ == "__main__":
    main()
