"""Viewability tokens: what is signed reads back exactly; anything altered, signed with another
secret, malformed or too long reads as nothing (never an exception); the beacon window."""

from __future__ import annotations

import base64
import hmac
import string

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from adtrack.domain.view_tokens import (
    MAX_TOKEN_BYTES,
    ViewToken,
    ViewTokenSigner,
    beacon_window_open,
)

SECRET = b"a deployment secret of some length"
SIGNER = ViewTokenSigner(SECRET)
TOKEN = ViewToken(
    "1a2b3c4d5e6f-17", 1_796_284_800_123_456, 12, 3, 4, 5, None, 7, "US", "mobile", "iOS", "Safari"
)
DAY_US = 86_400_000_000
FAMILY_NAME_CHARS = string.ascii_letters + string.digits + " ._-/"
# Texts as the collector signs them: decoded from bytes (Latin-1, or UTF-8 with errors replaced),
# so never a lone surrogate, which no UTF-8 holds; and an event's texts never hold NUL.
COLLECTOR_TEXT = st.characters(codec="utf-8", exclude_characters="\x00")


def test_a_signed_token_reads_back_exactly() -> None:
    text = SIGNER.sign(TOKEN)
    assert SIGNER.verify(text) == TOKEN
    assert text.isascii() and b'"' not in text and b"\\" not in text  # safe in JS and URLs
    assert len(text) < 200


@given(
    st.builds(
        ViewToken,
        st.text(COLLECTOR_TEXT, min_size=1, max_size=40),
        st.integers(-62_135_596_800_000_000 + 86_400_000_000, 253_402_214_400_000_000 - 1),
        *(st.integers(0, 2**63 - 1) for _ in range(4)),
        st.one_of(st.none(), st.integers(0, 2**63 - 1)),
        st.one_of(st.none(), st.integers(0, 2**63 - 1)),
        st.one_of(st.none(), st.text(COLLECTOR_TEXT, max_size=2)),
        st.one_of(st.none(), st.sampled_from(["desktop", "mobile", "ctv"])),
        # (family names: short; a token stays within MAX_TOKEN_BYTES)
        st.one_of(st.none(), st.text(alphabet=FAMILY_NAME_CHARS, max_size=40)),
        st.one_of(st.none(), st.text(alphabet=FAMILY_NAME_CHARS, max_size=40)),
    )
)
def test_any_token_reads_back(token: ViewToken) -> None:
    assert SIGNER.verify(SIGNER.sign(token)) == token


def test_another_secret_or_an_altered_token_reads_as_nothing() -> None:
    text = SIGNER.sign(TOKEN)
    assert ViewTokenSigner(b"another secret, just as long").verify(text) is None
    payload, _, mac = text.partition(b".")
    changed = orjson.dumps(["someone-else", *list(TOKEN)[1:]])
    forged = base64.urlsafe_b64encode(changed).rstrip(b"=")
    assert SIGNER.verify(forged + b"." + mac) is None
    assert SIGNER.verify(payload + b"." + mac[:-1] + (b"A" if mac[-1:] != b"A" else b"B")) is None


@pytest.mark.parametrize(
    "text",
    [b"", b".", b"abc", b"abc.", b".abc", b"%%%.%%%", b"a.b.c", b"x" * (MAX_TOKEN_BYTES + 1)],
)
def test_malformed_texts_read_as_nothing(text: bytes) -> None:
    assert SIGNER.verify(text) is None


def test_well_signed_but_malformed_fields_read_as_nothing() -> None:
    """A signer's own mac over a payload that is not a token (a bug, or an old layout)."""
    for fields in (
        ["id", 1],
        ["id", "not a time", 1, 1, 1, 1, None, None],
        ["", 0, 1, 1, 1, 1, None, None],
        ["id", 0, -1, 1, 1, 1, None, None],
        ["id", 0, 1, 1, 1, 1, "x", None],
        ["id", 0, 1, 1, 1, 1, None, None, "USA", None, None, None],  # too long a country
        ["id", 0, 1, 1, 1, 1, None, None, None, 7, None, None],
        {"impression_event_id": "id"},
    ):
        payload = base64.urlsafe_b64encode(orjson.dumps(fields)).rstrip(b"=")
        signed = SIGNER.sign(TOKEN)  # (the mac of another payload: re-sign this one by hand)
        mac = signed.partition(b".")[2]
        assert SIGNER.verify(payload + b"." + mac) is None
        assert SIGNER.verify(_signed(payload)) is None, fields


def _signed(payload: bytes) -> bytes:

    key = hmac.digest(
        b"a deployment secret of some length", b"adtrack viewability token v1", "sha256"
    )
    mac = hmac.digest(key, payload, "sha256")[:16]
    return payload + b"." + base64.urlsafe_b64encode(mac).rstrip(b"=")


def test_a_short_secret_is_refused() -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        ViewTokenSigner(b"short")


def test_the_beacon_window_ends_with_the_day_after_the_impressions_day() -> None:
    impression = 20_000 * DAY_US + 23 * 3_600_000_000  # 23:00 UTC
    assert beacon_window_open(impression, impression, days=1)
    assert beacon_window_open(impression, impression + DAY_US, days=1)  # next day, 23:00
    assert beacon_window_open(impression, 20_002 * DAY_US - 1, days=1)  # its last microsecond
    assert not beacon_window_open(impression, 20_002 * DAY_US, days=1)
    assert not beacon_window_open(impression, 20_001 * DAY_US, days=0)
    # an impression from the future (another collector's clock) within a few minutes only
    assert beacon_window_open(impression + 60_000_000, impression, days=1)
    assert not beacon_window_open(impression + 3_600_000_000, impression, days=1)
