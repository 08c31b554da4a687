"""Which unknown tracker ids and codes may be looked up in the store, so garbage ids cannot
hammer it: lookups are rate-limited (a token bucket) and misses are remembered in a bounded
negative cache (LRU with a TTL of a few seconds)."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Container

from adtrack.collector.tracker_tables import LookupKey

__all__ = ["UnknownIds"]


class UnknownIds:
    """The lookup budget and the remembered misses. Called on the event loop only."""

    def __init__(
        self,
        in_flight: Container[LookupKey],
        *,
        lookups_per_second: float,
        negative_ttl: float,
        max_entries: int,
    ) -> None:
        self._in_flight = in_flight  # the keys being looked up now
        self._rate = lookups_per_second
        self._tokens = lookups_per_second
        self._tokens_at = time.monotonic()
        self._negative: OrderedDict[LookupKey, float] = OrderedDict()
        self._negative_ttl = negative_ttl
        self.max_entries = max_entries

    def __len__(self) -> int:
        """How many misses are remembered."""
        return len(self._negative)

    def may_look_up(self, key: LookupKey) -> bool:
        """Whether an unknown key should be looked up in the store now: False when it missed a
        moment ago or the budget is spent; a lookup already in flight is joined without
        spending it. Cheap (the hot path calls it for every unknown key)."""
        now = time.monotonic()
        negative = self._negative
        expires = negative.get(key)
        if expires is not None:
            if expires > now:
                return False
            negative.pop(key, None)
        if key in self._in_flight:
            return True
        self._tokens = min(self._rate, self._tokens + (now - self._tokens_at) * self._rate)
        self._tokens_at = now
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def missed(self, key: LookupKey) -> None:
        """Remember that the store does not know ``key`` (the oldest miss goes when full)."""
        negative = self._negative
        negative[key] = time.monotonic() + self._negative_ttl
        negative.move_to_end(key)
        while len(negative) > self.max_entries:
            negative.popitem(last=False)

    def forget_misses(self) -> None:
        """After trackers were added: a key refused a moment ago may exist now."""
        self._negative.clear()
