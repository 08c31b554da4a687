"""The collector's bounded caches forget their oldest entries, an eighth at a time, and never
hold more than their bound, however many new keys come."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from adtrack.collector.cache_eviction import make_room


def test_a_full_cache_forgets_its_oldest_eighth() -> None:
    cache = {key: key * 10 for key in range(16)}
    make_room(cache, 16)
    assert list(cache) == list(range(2, 16))  # 0 and 1 (16 // 8) forgotten, in order
    assert cache[2] == 20


def test_a_cache_below_its_bound_keeps_everything() -> None:
    cache = dict.fromkeys(range(5), True)
    make_room(cache, 6)
    assert list(cache) == list(range(5))


def test_a_small_cache_forgets_at_least_one() -> None:
    cache = {"a": 1, "b": 2}
    make_room(cache, 2)
    assert cache == {"b": 2}


@given(st.integers(1, 200), st.lists(st.integers(0, 50), max_size=400))
def test_a_cache_fed_new_keys_stays_bounded_and_keeps_the_newest(
    bound: int, keys: list[int]
) -> None:
    cache: dict[int, int] = {}
    for n, key in enumerate(keys):
        if key not in cache:
            make_room(cache, bound)
            cache[key] = n
        assert len(cache) <= bound
        assert key in cache  # the newest key is never the one forgotten
