"""Streamed text is guarded as if it had arrived whole, however it is split."""

from __future__ import annotations

import random

import pytest

from lockgate.config.protection import GuardrailRule
from lockgate.guard.rules import GuardrailBlocked, compile_rules, scan
from lockgate.guard.text import Found, Redactions, TextWindow, apply

REDACT = compile_rules(
    [
        GuardrailRule(type="pii", action="redact"),
        GuardrailRule(type="secrets", action="redact"),
    ]
)
BLOCK = compile_rules([GuardrailRule(type="regex", pattern="(?i)internal use only")])

TEXT = (
    "Thanks for waiting. Your refund for card 4111 1111 1111 1111 is on its way; "
    "questions go to billing@example.com or +44 20 7946 0958. The deploy token was "
    "glpat-Xy8Kq2LmN4pR7sTv9WbZ and the key below leaked:\n"
    "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEAx7Qz\nkq9Lm3\n-----END RSA PRIVATE KEY-----\n"
    "Nothing else to report. " * 3
)
SECRETS = ("4111 1111 1111 1111", "billing@example.com", "7946 0958", "glpat-Xy8K", "MIIEow")


def whole(text: str) -> str:
    return apply(scan(REDACT, text), text, "answer", "answer", None, Found("r"))


def streamed(pieces: list[str], rules=REDACT, redactions: Redactions | None = None) -> list[str]:
    window = TextWindow(rules, redactions, "choices[0]", Found("r"))
    out = [window.feed(piece) for piece in pieces]
    out.append(window.finish())
    return out


def test_every_two_piece_split_gives_the_whole_text_s_redaction() -> None:
    expected = whole(TEXT)
    assert "[REDACTED:credit_card]" in expected
    assert "[REDACTED:private_key]" in expected
    for cut in range(1, len(TEXT)):
        assert "".join(streamed([TEXT[:cut], TEXT[cut:]])) == expected, cut


@pytest.mark.parametrize("seed", range(20))
def test_word_and_random_splits_never_let_a_secret_out(seed: int) -> None:
    rng = random.Random(seed)
    pieces, position = [], 0
    while position < len(TEXT):
        step = rng.randint(1, 12)
        pieces.append(TEXT[position : position + step])
        position += step
    out = streamed(pieces)
    assert "".join(out) == whole(TEXT)
    sent = ""
    for released in out:
        sent += released
        assert not any(secret in sent for secret in SECRETS)


def test_a_blocked_phrase_raises_before_any_of_it_is_released() -> None:
    text = "Summary follows. " * 10 + "This is INTERNAL USE ONLY material."
    window = TextWindow(BLOCK, None, "choices[0]", Found("r"))
    sent = ""
    with pytest.raises(GuardrailBlocked) as raised:
        for word in text.split(" "):
            sent += window.feed(word + " ")
        window.finish()
    assert "INTERNAL" not in sent
    assert "INTERNAL" not in raised.value.message


def test_placeholders_split_across_pieces_are_restored() -> None:
    redactions = Redactions()
    placeholder = redactions.placeholder("email", "dana@example.com", restore=True)
    assert placeholder == "[REDACTED:email_1]"
    text = f"I will write to {placeholder} today."
    for cut in range(1, len(text)):
        out = streamed([text[:cut], text[cut:]], rules=(), redactions=redactions)
        assert "".join(out) == "I will write to dana@example.com today."


def test_a_placeholder_of_another_request_is_left_as_it_is() -> None:
    redactions = Redactions()
    redactions.placeholder("email", "dana@example.com", restore=True)
    out = streamed(["see [REDACTED:email_2] and ", "[REDACTED:phone_1]"], (), redactions)
    assert "".join(out) == "see [REDACTED:email_2] and [REDACTED:phone_1]"


def test_restored_values_are_json_escaped_in_json_answers() -> None:
    redactions = Redactions()
    placeholder = redactions.placeholder("name", 'Dana "DJ" Miller', restore=True)
    body = b'{"content": "Hello ' + placeholder.encode() + b'"}'
    assert redactions.restore_json(body) == b'{"content": "Hello Dana \\"DJ\\" Miller"}'


def test_text_is_released_as_it_comes_once_enough_follows() -> None:
    window = TextWindow(REDACT, None, "choices[0]", Found("r"))
    released = "".join(window.feed(f"word{i} ") for i in range(100))
    assert released.startswith("word0 word1")
    assert len(released) > 500  # only a short tail is held back
