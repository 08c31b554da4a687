"""Formatting what repeats once: a function of a few columns computed once per distinct
combination of their values and taken for each row (the feeds' ids, amounts, pages and
browsers repeat heavily in a day of clicks)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pyarrow as pa
import pyarrow.compute as pc

__all__ = ["per_combination"]

# Combination keys stay below this: products of numbers of distinct values, in 64 bits.
_KEY_LIMIT = 2**62
# Keys 0, 1, 2, ...: every combination of a few distinct values is formatted when there are
# at most a quarter as many as rows (no hashing of the rows' keys then).
_EVERY_KEY = pa.array(range(65_536), pa.int64())


def per_combination(columns: tuple[pa.Array, ...], cells: Callable[..., pa.Array]) -> pa.Array:
    """``cells(*columns)`` computed once per distinct combination of the columns' values
    (null one value more) and taken for each row: ids, amounts, pages and browsers repeat
    heavily in a day of clicks, and numbering them and taking a formatted piece costs less
    than formatting and joining every cell of every row. ``cells`` gets plain arrays (no
    dictionaries), one row per combination.

    Each column's values are numbered (:func:`_codes`) and a row's combination is the number
    ``(c0 * n1 + c1) * n2 + c2 ...`` of its values' numbers, a digit per column; the values
    of a combination come back from its number by division. When there are few possible
    combinations, every one is formatted; else the rows' combinations are numbered anew in
    order of appearance (a hash of one 64-bit number a row), and the distinct ones are."""
    key, distinct = _codes(columns[0])
    digits = [_Digit(len(distinct), [distinct])]
    for column in columns[1:]:
        codes, distinct = _codes(column)
        if _product(digits) * len(distinct) >= _KEY_LIMIT:
            key, so_far = _distinct(key, digits)
            digits = [_Digit(len(so_far[0]), so_far)]
        key = pc.add(pc.multiply(key, pa.scalar(len(distinct), pa.int64())), codes)
        digits.append(_Digit(len(distinct), [distinct]))
    combinations = _product(digits)
    if len(digits) == 1 and combinations <= len(key):
        return cells(*digits[0].values).take(key)
    if combinations * 4 <= min(len(key), len(_EVERY_KEY)):
        return cells(*_decoded(_EVERY_KEY.slice(0, combinations), digits)).take(key)
    numbers, distinct_values = _distinct(key, digits)
    return cells(*distinct_values).take(numbers)


@dataclass(frozen=True, slots=True)
class _Digit:
    """One digit of a combination's number: how many values it counts, and those values
    (one array per column it stands for, indexed by the digit)."""

    size: int
    values: list[pa.Array]


def _product(digits: list[_Digit]) -> int:
    product = 1
    for digit in digits:
        product *= digit.size
    return product


def _distinct(key: pa.Array, digits: list[_Digit]) -> tuple[pa.Array, list[pa.Array]]:
    """The keys numbered anew 0, 1, ... in order of first appearance, and the values of each
    of those numbers (one array per column)."""
    encoded = pc.dictionary_encode(key)
    return pc.cast(encoded.indices, pa.int64()), _decoded(encoded.dictionary, digits)


def _decoded(keys: pa.Array, digits: list[_Digit]) -> list[pa.Array]:
    """The values each key stands for, one array per column (see :func:`per_combination`)."""
    decoded: list[list[pa.Array]] = []
    for digit in reversed(digits):
        base = pa.scalar(digit.size, pa.int64())
        higher = pc.divide(keys, base)  # integer division: the keys are not negative
        own = pc.subtract(keys, pc.multiply(higher, base))
        decoded.append([values.take(own) for values in digit.values])
        keys = higher
    return [values for digit_values in reversed(decoded) for values in digit_values]


_BOOLEANS = pa.array([False, True, None], pa.bool_())
_NULL_CODE = pa.scalar(2, pa.int64())


def _codes(column: pa.Array) -> tuple[pa.Array, pa.Array]:
    """A number for each row (64-bit) and the plain values they stand for, in an array the
    numbers index: the numbers are equal where the values are (nulls included)."""
    if pa.types.is_dictionary(column.type):
        size = len(column.dictionary)
        indices = pc.fill_null(column.indices, pa.scalar(size, column.type.index_type))
        distinct = pa.concat_arrays([column.dictionary, pa.nulls(1, column.dictionary.type)])
        return pc.cast(indices, pa.int64()), distinct
    if pa.types.is_boolean(column.type):
        return pc.fill_null(pc.cast(column, pa.int64()), _NULL_CODE), _BOOLEANS
    encoded = pc.dictionary_encode(column, null_encoding="encode")
    return pc.cast(encoded.indices, pa.int64()), encoded.dictionary
