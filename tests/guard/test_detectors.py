"""Secret and personal-data detectors: real-looking texts in, exact kinds and spans out.

Every token below is made up (and split with `+`, so this file itself holds no whole token).
"""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from lockgate.guard.detectors import (
    PII_KINDS,
    SECRET_KINDS,
    Finding,
    merge,
    pii_detector,
    regex_detector,
    secrets_detector,
)

SECRETS = secrets_detector()
PII = pii_detector()

AWS_ID = "AKIA" + "Z7QW3ERT5YUI9OPL"
AWS_SECRET = "PtYgjmUhBel31iEl2hpC" + "hYgCfrL1spNxnyVmihA+"
PEM = (
    "-----BEGIN EC PRIVATE KEY-----\n"
    "+MHcCAQEEIBkg4LVWM9nuwNSk3yByxZpYRTBnVJk5oYdldb8KHlCIoAoGCCqGSM49\n"
    "+AwEHoUQDQgAE7dFgNYzM2xQ0mWJpLJbB8Yhq5l1kVvR3T6nUc8aFqJm9XcZ0eW2r\n"
    "+-----END EC PRIVATE KEY-----"
)
GITLAB = "glpat-" + "3hDavJA76rNicHTp8hkq"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."
    "eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ."
    "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
WEBHOOK = "https://hooks.slack.com/services/" + "T024BE7LD/B01ABCDEF12/q9Zx8Ry7Tw6Vu5Ps4Oq3Nr2M"
GOOGLE = "AIza" + "2O76UMFxFkM-R5Kjp1vRt_1fjORS-6ilI8i"
GITHUB = "ghp_" + "dUStPKR0CsTy4Qwb8DwkNhFdnXsiVpzz63Ff"
GITHUB_PAT = (
    "github_pat_"
    + "kCzJr4i0B3JrTAwR4y9ojf_ljoQoaF1LlqsajAIxNKu8iS2G8NPRVdD53X83RZJzzzzgEOzdmenCkhvMdg"
)
SLACK = "xoxb-" + "5724920868-2889093100251-y1CJdObOIRpFqaDZeV7G5IfQ"
OPENAI = "sk-proj-" + "atmUdjAWtGSU8po_799NksnRH9ucAUsdMlHUvTCQCyEZDz-T"
OPENAI_LEGACY = "sk-" + "UbbYrEqmSM9wCZ7Uw9xfT3BlbkFJogoEmvnEN5N1aE6PwZPf"
ANTHROPIC = (
    "sk-ant-"
    + "api03-pXz9w3QlY7Zkuvqdt7s8Stqcbnr3yBdGBLEPH1qhT61qtc4xatws8phP9nhFyJfm5di4PzJ59FHz5r1pY4OjE2jBMptUsAA"
)
STRIPE = "sk_live_" + "q4i9DoV8gz4FkQ1okTBGzvAm"
LOCKGATE = "lg-" + "TOlUcR64cXQLioDnkHIfxIq2HZt-PlJhx2jIclHkCiH"
KEY_ID = "1569969e58b081006f7e3dfc" + "967a64cb14028d51"

POSITIVE = [
    pytest.param(
        f"""diff --git a/deploy/env.sh b/deploy/env.sh
index 3f2a1b0..8c9d4e2 100644
--- a/deploy/env.sh
+++ b/deploy/env.sh
@@ -1,3 +1,5 @@
 export REGION=eu-west-1
+export AWS_ACCESS_KEY_ID={AWS_ID}
+aws_secret_access_key = "{AWS_SECRET}"
 export BUCKET=reports
""",
        [("aws_access_key", AWS_ID), ("aws_secret_key", AWS_SECRET)],
        id="diff-aws-keys",
    ),
    pytest.param(
        f"""diff --git a/deploy/tls/server.key b/deploy/tls/server.key
new file mode 100644
index 0000000..5d1e9b2
--- /dev/null
+++ b/deploy/tls/server.key
@@ -0,0 +1,4 @@
+{PEM}
""",
        [("private_key", PEM)],
        id="diff-pem-key",
    ),
    pytest.param(
        "here is the key:\n-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5v\n",
        [("private_key", "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAABG5v\n")],
        id="pem-unterminated-runs-to-the-end",
    ),
    pytest.param(
        f"# CI\nGITLAB_URL=https://gitlab.example.com\nGITLAB_TOKEN={GITLAB}\nPROJECT_ID=4821\n",
        [("gitlab_token", GITLAB)],
        id="env-gitlab-pat",
    ),
    pytest.param(
        "Hello, I was charged twice. My card is 4111 1111 1111 1111 and the refund can go to "
        "IBAN DE89 3704 0044 0532 0130 00. Reach me at dana.miller@example.com or on "
        "+44 20 7946 0958 after 5 pm. Order 88123, placed on 2024-03-02 at 10:45.",
        [
            ("credit_card", "4111 1111 1111 1111"),
            ("iban", "DE89 3704 0044 0532 0130 00"),
            ("email", "dana.miller@example.com"),
            ("phone", "+44 20 7946 0958"),
        ],
        id="support-ticket",
    ),
    pytest.param(
        f"GET /v1/me HTTP/1.1\nHost: api.example.com\nAuthorization: Bearer {JWT}\n",
        [("jwt", JWT)],
        id="jwt-in-authorization-header",
    ),
    pytest.param(
        "curl -X POST -H 'Content-type: application/json' --data '{\"text\":\"deployed\"}' "
        f"{WEBHOOK}",
        [("slack_webhook", WEBHOOK)],
        id="slack-webhook",
    ),
    pytest.param(
        f'MAPS = Client(key="{GOOGLE}")\nexport GH_TOKEN={GITHUB}\ngit push https://{GITHUB_PAT}@x',
        [("google_api_key", GOOGLE), ("github_token", GITHUB), ("github_token", GITHUB_PAT)],
        id="google-and-github",
    ),
    pytest.param(
        f"SLACK_BOT_TOKEN={SLACK}\nclient = OpenAI(api_key='{OPENAI}')\nold: {OPENAI_LEGACY}",
        [("slack_token", SLACK), ("openai_key", OPENAI), ("openai_key", OPENAI_LEGACY)],
        id="slack-and-openai",
    ),
    pytest.param(
        f"ANTHROPIC_API_KEY={ANTHROPIC}\nstripe.api_key = '{STRIPE}'\nlockgate: {LOCKGATE}",
        [("anthropic_key", ANTHROPIC), ("stripe_key", STRIPE), ("lockgate_key", LOCKGATE)],
        id="anthropic-stripe-lockgate",
    ),
    pytest.param(
        "{\n"
        '  "type": "service_account",\n'
        '  "project_id": "acme-prod",\n'
        f'  "private_key_id": "{KEY_ID}",\n'
        '  "private_key": "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n'
        '-----END PRIVATE KEY-----\\n",\n'
        '  "client_email": "deployer@acme-prod.iam.gserviceaccount.com",\n'
        '  "client_id": "104729384756102938475"\n'
        "}",
        [
            ("gcp_service_account", KEY_ID),
            (
                "gcp_service_account",
                "-----BEGIN PRIVATE KEY-----\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n"
                "-----END PRIVATE KEY-----",
            ),
            ("email", "deployer@acme-prod.iam.gserviceaccount.com"),
        ],
        id="gcp-service-account-json",
    ),
    pytest.param(
        'DB_PASSWORD = "x7Gk29pQzL4mNw"\n'
        "oauth:\n  client_secret: 9fQ2mZ7xK4tLp1Wv8Rb3\n"
        '{"api_key": "2c9791e558e08baa7196b50ac2f86702"}\n'
        "SECRET_KEY=q0fjzLczbttOofL9H2WjQ5TY4MyW\n"
        "curl -H 'X-Api-Key: Wq7Lm2Zx9Pk4Rt8Nv3Bc' https://api.example.com",
        [
            ("generic_secret", "x7Gk29pQzL4mNw"),
            ("generic_secret", "9fQ2mZ7xK4tLp1Wv8Rb3"),
            ("generic_secret", "2c9791e558e08baa7196b50ac2f86702"),
            ("generic_secret", "q0fjzLczbttOofL9H2WjQ5TY4MyW"),
            ("generic_secret", "Wq7Lm2Zx9Pk4Rt8Nv3Bc"),
        ],
        id="generic-secrets-in-python-yaml-json-env-header",
    ),
    pytest.param(
        "SSN 536-22-4187, NI number AB 12 34 56 C (or JG103759A), DNI 12345678Z, "
        "call (555) 234-5678 or 415-555-0132.",
        [
            ("us_ssn", "536-22-4187"),
            ("uk_nino", "AB 12 34 56 C"),
            ("uk_nino", "JG103759A"),
            ("es_dni", "12345678Z"),
            ("phone", "(555) 234-5678"),
            ("phone", "415-555-0132"),
        ],
        id="national-ids-and-us-phones",
    ),
    pytest.param(
        "client 203.0.113.42 via 10.0.0.7, from 2001:db8:85a3::8a2e:370:7334 and "
        "fe80:0000:0000:0000:0202:b3ff:fe1e:8329; Visa 4012888888881881, Amex 3782 822463 10005.",
        [
            ("ip_address", "203.0.113.42"),
            ("ip_address", "10.0.0.7"),
            ("ip_address", "2001:db8:85a3::8a2e:370:7334"),
            ("ip_address", "fe80:0000:0000:0000:0202:b3ff:fe1e:8329"),
            ("credit_card", "4012888888881881"),
            ("credit_card", "3782 822463 10005"),
        ],
        id="addresses-and-cards",
    ),
]


def found(text: str) -> list[tuple[str, str]]:
    return [(f.kind, text[f.start : f.end]) for f in merge(SECRETS.find(text) + PII.find(text))]


@pytest.mark.parametrize(("text", "expected"), POSITIVE)
def test_each_secret_and_personal_value_is_found_with_its_own_span(
    text: str, expected: list[tuple[str, str]]
) -> None:
    assert found(text) == expected


def test_the_positive_cases_cover_every_kind() -> None:
    covered = {kind for case in POSITIVE for kind, _ in case.values[1]}
    assert covered == set(SECRET_KINDS) | set(PII_KINDS)


NEGATIVE = [
    "order 4111 1111 1111 1112",  # fails Luhn
    "IBAN DE89 3704 0044 0532 0130 01",  # fails mod 97
    "XAKIAZ7QW3ERT5YUI9OPL and AKIAZ7QW3ERT5YUI9OPLX",  # AKIA inside a word
    "password = get_password()",
    'token: str = ""',
    "api_key=settings.api_key",
    'password = "hunter2hunter2"',  # too guessable for generic_secret
    "secret = os.environ['APP_SECRET']",
    "tokenizer = 'cl100k_base'; max_tokens = 4096",
    "sort_key = 'a9f3c2e1b7d64f08'",  # not a secret's name
    "secret_name: prod-db-credentials-2024",
    'API_KEY = "your-api-key-here"',
    "uuid 123e4567-e89b-12d3-a456-426614174000",
    "commit 8c9d4e2f1a3b5c7d9e0f2a4b6c8d0e1f3a5b7c9d",
    "sha256:9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
    "aGVsbG8gd29ybGQ= and dGVzdA==",
    "at 2024-03-02T10:45:12.123456+00:00 or 2024-03-02 10:45:12Z, 12:30:45, 15.01.2024",
    "version 1.24.3-rc.1+build.5, v2.0.0, python 3.11.7",
    "3.14159, 2.718, 1,234,567.89 and -0.5e-3",
    "localhost:8080, 0.0.0.0:443, 127.0.0.1:5432, [::1]:80",  # loopback is nobody's address
    "std::vector<int> v; Vec::new(); a::b; x[100::200]; mac 00:1a:2b:3c:4d:5e",
    "ids 1234567890123456789 and 1700000000000, diff @@ -112,14 +112,19 @@",
    "sk-this-is-not-a-real-key-at-all and glpat-placeholder-token-goes-here",
    "QQ 12 34 56 C and AB123456E",  # not National Insurance numbers
    "12345678A",  # wrong DNI letter
    "000-12-3456, 666-12-3456, 912-34-5678",  # never-issued SSNs
    "(123) 456-7890",  # area codes start at 2
    "postgresql://gw:s3cret@db.internal:5433/lockgate",  # URL credentials, not an address
    "@dataclass(frozen=True)\n@pytest.mark.parametrize('x', [1])",
]


@pytest.mark.parametrize("text", NEGATIVE)
def test_lookalikes_are_left_alone(text: str) -> None:
    assert found(text) == []


ROOT = Path(__file__).parents[2]
DELIBERATE = {
    "tests/guard",  # this file and the guardrail tests
    "tests/usage/test_redaction.py",
    "tests/usage/test_observability_e2e.py",  # personal data and an AWS key to redact
    "tests/api/test_bedrock_target.py",  # AWS's documented example credentials
    "tests/providers/conformance_cases.py",  # an AWS-style secret
    "tests/auth/issuer.py",  # a user's e-mail address in a GitLab token's claims
    "tests/config/test_diff.py",  # secrets it checks `config diff` never prints
    "tests/gitlab",  # git authors' addresses; the fake GitLab's tokens
    "tests/gitlab_ci/harness.py",  # the git author of the test repositories
    "tests/transport/test_proxies.py",  # IP addresses and ranges in NO_PROXY cases
}


def test_this_repository_s_code_has_nothing_to_find() -> None:
    """Ordinary source code: no finding at all (files holding fake secrets on purpose aside)."""
    paths = sorted((ROOT / "lockgate").rglob("*.py")) + sorted((ROOT / "tests").rglob("*.py"))
    hits = []
    for path in paths:
        name = path.relative_to(ROOT).as_posix()
        if any(name == skip or name.startswith(skip + "/") for skip in DELIBERATE):
            continue
        text = path.read_text()
        hits += [
            f"{name}: {f.kind}: {text[f.start : f.end]!r}"
            for f in SECRETS.find(text) + PII.find(text)
        ]
    assert len(paths) > 100
    assert hits == []


def test_kinds_choose_what_is_reported() -> None:
    text = "mail ops@example.org, call +49 30 1234 5678, key " + AWS_ID
    assert [f.kind for f in pii_detector(["phone"]).find(text)] == ["phone"]
    assert [f.kind for f in secrets_detector({"aws_access_key"}).find(text)] == ["aws_access_key"]
    assert secrets_detector([]).find(text) == []


def test_a_service_account_key_is_a_plain_private_key_when_only_that_is_asked_for() -> None:
    text = '{"type": "service_account", "private_key": "' + PEM.replace("\n", "\\n") + '"}'
    assert [f.kind for f in secrets_detector(["private_key"]).find(text)] == ["private_key"]
    assert [f.kind for f in SECRETS.find(text)] == ["gcp_service_account"]


@pytest.mark.parametrize(
    ("make", "kind"), [(secrets_detector, "emial"), (pii_detector, "aws_access_key")]
)
def test_an_unknown_kind_is_named_with_the_valid_ones(make: object, kind: str) -> None:
    assert callable(make)
    with pytest.raises(ValueError, match=rf"unknown .*'{kind}'; valid: .*, "):
        make([kind])


def test_a_custom_rule_reports_its_own_kind() -> None:
    detector = regex_detector("ticket_id", r"\bTCK-\d{6}\b|x*")
    text = "see TCK-004217 and TCK-1"
    assert [(f.kind, text[f.start : f.end]) for f in detector.find(text)] == [
        ("ticket_id", "TCK-004217")
    ]


def test_a_bad_custom_pattern_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"'internal' is not a valid regular expression: .*"):
        regex_detector("internal", "(unclosed")


def test_merge_keeps_the_earliest_then_the_longest() -> None:
    a, b, c, d = (
        Finding(5, 9, "a"),
        Finding(0, 4, "b"),
        Finding(5, 12, "c"),
        Finding(10, 14, "d"),
    )
    assert merge([a, b, c, d]) == [b, c]
    assert merge([Finding(3, 6, "first"), Finding(3, 6, "second")]) == [Finding(3, 6, "first")]
    assert merge([]) == []


def test_findings_are_sorted_and_never_overlap() -> None:
    text = "\n".join(str(case.values[0]) for case in POSITIVE) * 2
    for detector in (SECRETS, PII):
        findings = detector.find(text)
        assert findings == merge(findings)


PIECES = (
    *(
        "AKIA",
        "AIza",
        "eyJ",
        "ghp_",
        "github_pat_",
        "glpat-",
        "xoxb-",
        "sk-",
        "sk-ant-",
        "sk_live_",
    ),
    *("lg-", "-----BEGIN RSA PRIVATE KEY-----", "hooks.slack.com/services/", "password", "key"),
    *(
        '"',
        "=",
        ": ",
        " ",
        "\n",
        "@",
        ".",
        "+",
        "(",
        ")",
        "-",
        "_",
        "::",
        "4111",
        "DE89",
        "İ",
        "日本",
    ),
    *("example.com", "service_account", "\\n", "fe80", "0", "7", "123"),
)


@pytest.mark.parametrize("seed", range(4))
def test_random_texts_give_sorted_findings_inside_the_text(seed: int) -> None:
    rng = random.Random(seed)
    alphabet = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
    for _ in range(500):
        text = "".join(
            rng.choice(PIECES)
            if rng.random() < 0.6
            else "".join(rng.choices(alphabet, k=rng.randint(1, 45)))
            for _ in range(rng.randint(0, 40))
        )
        for detector in (SECRETS, PII):
            findings = detector.find(text)
            assert findings == merge(findings)
            assert all(0 <= f.start < f.end <= len(text) for f in findings)
