"""Click tokens read back to the click they were made for; anything else is refused with its
reason: made up or changed (forged), not a token (malformed), too old or from the future
(expired). Never another exception."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from adtrack.domain.click_tokens import (
    MAX_AGE_MICROS,
    MAX_CLOCK_SKEW_MICROS,
    ClickTokenRefused,
    ClickTokens,
)
from adtrack.domain.sealed_tokens import TokenSealer

SECRET = b"s" * 32
NOW = 1_800_000_000_000_000  # epoch microseconds
TOKENS = ClickTokens(SECRET)
IDS = ClickTokens.click_ids(7, 1, 2, 3, None, 9)


def a_token(
    ts_us: int = NOW, *, invalid: bool = False, event_id: bytes = b"0a1b2c3d4e5f-42"
) -> str:
    return TOKENS.make(ts_us, invalid, IDS, event_id).decode("ascii")


def reason(token: str | bytes, now_us: int = NOW, tokens: ClickTokens = TOKENS) -> str:
    with pytest.raises(ClickTokenRefused) as refused:
        tokens.read(token, now_us)
    return refused.value.reason


def test_round_trip() -> None:
    token = a_token(NOW - 1_000_000, invalid=True)
    assert token.isascii() and set(token) <= set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    )
    click = TOKENS.read(token, NOW)
    assert click.event_id == "0a1b2c3d4e5f-42"
    assert click.ts_us == NOW - 1_000_000 and click.invalid is True
    assert (click.tracker_id, click.advertiser_id, click.line_item_id) == (7, 1, 2)
    assert (click.publisher_id, click.placement_id, click.payment_rule_id) == (3, None, 9)
    assert TOKENS.read(token.encode(), NOW) == click  # bytes as well as text


def test_tokens_are_opaque() -> None:
    # what the click was (its ids, whether it was judged invalid) cannot be read from a token
    first, second = a_token(event_id=b"abc-1"), a_token(event_id=b"abc-1")
    assert first != second  # a fresh nonce each time: equal clicks do not look alike
    raw = base64.urlsafe_b64decode(first + "=" * (-len(first) % 4))
    assert b"abc-1" not in raw and IDS not in raw
    assert TOKENS.read(first, NOW) == TOKENS.read(second, NOW)


def test_another_secret_or_purpose_is_forged() -> None:
    token = a_token()
    assert reason(token, tokens=ClickTokens(b"t" * 32)) == "forged"
    # a token of another kind, sealed with the same secret, does not open as a click token
    other_kind = TokenSealer(SECRET, "viewability").seal(base64.b64decode(b"AQA=") + bytes(40))
    assert reason(other_kind) == "forged"


def test_any_changed_character_is_refused() -> None:
    token = a_token()
    for at in range(len(token)):
        changed = token[:at] + ("A" if token[at] != "A" else "B") + token[at + 1 :]
        assert reason(changed) in ("forged", "malformed"), at


@pytest.mark.parametrize(
    "garbage",
    [
        "",
        "abc",
        "not a token",
        "é" * 20,
        "A" * 10_000,
        "====",
        "AAAA+/AA" * 12,  # the other base64 alphabet
        "\x00" * 30,
    ],
)
def test_garbage_is_malformed(garbage: str) -> None:
    assert reason(garbage) == "malformed"


def test_a_truncated_token_is_refused() -> None:
    token = a_token()
    for cut in (1, 2, 3, 10, len(token) - 22):
        assert reason(token[:-cut]) in ("forged", "malformed")


def test_sealed_payloads_of_the_wrong_shape_are_malformed() -> None:
    # a holder of the secret could seal anything: the click's own fields are checked too
    sealer = TokenSealer(SECRET, "click")
    head = bytes([1, 0]) + NOW.to_bytes(8, "big")
    good_ids = IDS
    for payload in (
        bytes([2, 0]) + NOW.to_bytes(8, "big") + good_ids + b"e-1",  # unknown format
        bytes([1, 4]) + NOW.to_bytes(8, "big") + good_ids + b"e-1",  # unknown flag
        head + good_ids,  # no event id
        head + good_ids + b"e" * 41,  # event id longer than events hold
        head + good_ids + "é".encode(),  # not ASCII
        head + ClickTokens.click_ids(0, 1, 2, 3, None, None) + b"e-1",  # no tracker
        head + b"\x00" * 10,  # too short
    ):
        assert reason(sealer.seal(payload)) == "malformed", payload


def test_expiry() -> None:
    assert TOKENS.read(a_token(NOW - MAX_AGE_MICROS), NOW).ts_us == NOW - MAX_AGE_MICROS
    assert reason(a_token(NOW - MAX_AGE_MICROS - 1)) == "expired"
    assert TOKENS.read(a_token(NOW + MAX_CLOCK_SKEW_MICROS), NOW).ts_us > NOW
    assert reason(a_token(NOW + MAX_CLOCK_SKEW_MICROS + 1)) == "expired"
    # a clock moved on by 91 days
    assert reason(a_token(), NOW + 91 * 86_400 * 1_000_000) == "expired"


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="at least 16 bytes"):
        ClickTokens(b"short")


@given(st.one_of(st.text(max_size=300), st.binary(max_size=300)))
def test_arbitrary_input_is_refused_with_a_reason(garbage: str | bytes) -> None:
    with pytest.raises(ClickTokenRefused) as refused:
        TOKENS.read(garbage, NOW)
    assert refused.value.reason in ("malformed", "forged")
