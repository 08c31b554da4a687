"""Where a click token goes in a redirect target (the collector's split, made once per tag)."""

from __future__ import annotations

import pytest

from adtrack.collector.click_token_targets import token_parts, without_token
from adtrack.collector.query import safe_redirect_target


def filled(location: bytes, param: bytes | None = None) -> bytes | None:
    parts = token_parts(location, param)
    return None if parts is None else b"TOKEN".join(parts)


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (b"https://a.example/?t=${SSP_DATA}", b"https://a.example/?t=TOKEN"),
        (b"https://a.example/?t=[SSP_DATA]", b"https://a.example/?t=TOKEN"),
        (b"https://a.example/?t=%24%7BSSP_DATA%7D", b"https://a.example/?t=TOKEN"),
        (b"https://a.example/?t=%24%7bSSP_DATA%7d", b"https://a.example/?t=TOKEN"),
        (b"https://a.example/?t=%5BSSP_DATA%5D", b"https://a.example/?t=TOKEN"),
        (b"https://a.example/${SSP_DATA}/x#[SSP_DATA]", b"https://a.example/TOKEN/x#TOKEN"),
    ],
)
def test_macros_as_the_safe_location_spells_them(target: bytes, expected: bytes) -> None:
    location = safe_redirect_target(target)  # "{" and "}" are percent-encoded in a Location
    assert location is not None
    assert filled(location) == expected


@pytest.mark.parametrize(
    "target",
    [
        b"https://a.example/?t=SSP_DATA",
        b"https://a.example/?t={SSP_DATA}",
        b"https://a.example/?t=$SSP_DATA",
        b"https://a.example/?t=[ssp_data]",
        b"https://a.example/",
    ],
)
def test_no_macro_no_token(target: bytes) -> None:
    location = safe_redirect_target(target)
    assert location is not None
    assert token_parts(location, None) is None
    assert without_token(location) == location


@pytest.mark.parametrize(
    ("location", "expected"),
    [
        (b"https://a.example/p", b"https://a.example/p?sspdata=TOKEN"),
        (b"https://a.example/p?x=1", b"https://a.example/p?x=1&sspdata=TOKEN"),
        (b"https://a.example/p?", b"https://a.example/p?sspdata=TOKEN"),
        (b"https://a.example/p?x=1&", b"https://a.example/p?x=1&sspdata=TOKEN"),
        (b"https://a.example/p#frag?x", b"https://a.example/p?sspdata=TOKEN#frag?x"),
        (
            b"https://a.example/p?m=[SSP_DATA]#f",
            b"https://a.example/p?m=TOKEN&sspdata=TOKEN#f",
        ),
    ],
)
def test_the_parameter_is_appended_to_the_query(location: bytes, expected: bytes) -> None:
    assert filled(location, b"sspdata") == expected


def test_without_token_removes_every_macro() -> None:
    assert (
        without_token(b"https://a.example/?a=$%7BSSP_DATA%7D&b=[SSP_DATA]")
        == b"https://a.example/?a=&b="
    )
