"""``format_micros``: micros as six-place decimal text, exact for any integer (reports and
exports format every money cell with it)."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from adtrack.domain.money import format_micros


@given(st.integers(min_value=-(2**70), max_value=2**70))
def test_six_places_equal_the_exact_decimal(micros: int) -> None:
    assert format_micros(micros) == f"{Decimal(micros).scaleb(-6):.6f}"


def test_signs_and_small_amounts() -> None:
    assert [format_micros(m) for m in (0, 1, -1, 999_999, -1_000_000, 2_500_000)] == [
        "0.000000",
        "0.000001",
        "-0.000001",
        "0.999999",
        "-1.000000",
        "2.500000",
    ]
