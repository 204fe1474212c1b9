"""Body redaction for the access log: secrets and personal data out, ordinary text kept."""

from __future__ import annotations

from pathlib import Path

import pytest

from lockgate.telemetry.redaction import MAX_LOGGED_BODY, BodyRedactor

REDACT = BodyRedactor(["sim-provider-key-123"])


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("key AKIAIOSFODNN7EXAMPLE here", "aws_access_key"),
        ("token ghp_" + "a" * 36, "github_token"),
        ("glpat-" + "x1" * 12, "gitlab_token"),
        ("xoxb-123456789012-abcdefghij", "slack_token"),
        ("sk-proj-" + "Ab3" * 10, "openai_key"),
        (
            "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
            "jwt",
        ),
        ("-----BEGIN RSA PRIVATE KEY-----\nMIIEow\n-----END RSA PRIVATE KEY-----", "private_key"),
        ('{"password": "hunter2hunter2"}', "secret"),
        ("write to ops@example.org", "email"),
        ("call +49 30 1234 5678", "phone"),
        ("or (555) 123-4567", "phone"),
        ("IBAN DE89 3704 0044 0532 0130 00", "iban"),
        ("card 5555-5555-5555-4444", "credit_card"),
        ("from 192.168.10.20", "ip_address"),
        ("uses sim-provider-key-123 upstream", "configured_secret"),
    ],
)
def test_each_kind_is_redacted(text: str, kind: str) -> None:
    assert f"[REDACTED:{kind}]" in REDACT(text.encode())


def test_a_number_that_fails_luhn_is_kept() -> None:
    assert REDACT(b"order 4111 1111 1111 1112") == "order 4111 1111 1111 1112"


def test_long_bodies_are_cut() -> None:
    logged = REDACT(b"a" * (MAX_LOGGED_BODY + 10))
    assert logged.endswith(f"...[cut at {MAX_LOGGED_BODY} characters]")


def test_this_repository_s_source_code_is_not_mangled() -> None:
    """Ordinary code (ours) has nothing to redact but what really looks like data."""
    for name in ("usage/ledger.py", "usage/journal.py", "transport/client.py", "auth/keys.py"):
        text = (Path(__file__).parents[2] / "lockgate" / name).read_bytes()
        assert len(text) < MAX_LOGGED_BODY
        assert REDACT(text) == text.decode(), name
