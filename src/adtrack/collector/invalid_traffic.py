"""Invalid-traffic verdicts (IAB/MRC "general invalid traffic"), kept apart from billable events.

* ``bot``: a known bot or spider by user agent, from three maintained lists; ``non_browser``:
  a user agent that is not a recognisable browser, app web view or known SDK, or none at all
  (both decided in ``agent_lists.py``). Judging a new user agent costs 0.1-0.3 ms, so
  verdicts are cached per user agent (bounded; see :class:`BotDetector`).
* ``datacentre``: a client address in a known cloud provider's published ranges
  (``datacentre.py``), cached per address.
* ``prefetch``: a prefetch/prerender/preview request (``Purpose``/``Sec-Purpose``/``X-Purpose``/
  ``X-Moz`` headers) — nobody saw the ad.
* ``duplicate_click``: a click repeating the cachebuster of an earlier valid click on the same
  tracker within a window (default 10 minutes). Memory is fixed (see :class:`DuplicateClicks`);
  clicks without a cachebuster, or with an unreplaced macro such as ``[CACHEBUSTER]``, are never
  treated as duplicates because they carry no identity.
"""

from __future__ import annotations

import time
from array import array
from collections.abc import Callable
from typing import Final, TypeVar

from adtrack.collector.agent_lists import AgentLists, agent_lists
from adtrack.collector.cache_eviction import make_room
from adtrack.collector.datacentre import DatacentreAddresses, datacentre_ranges
from adtrack.collector.records import user_agent_fragment
from adtrack.config import Settings
from adtrack.domain.events import INVALID_NON_BROWSER

__all__ = [
    "BotDetector",
    "DuplicateClicks",
    "is_prefetch",
    "judges_for",
    "usable_cachebuster",
]


MAX_USER_AGENT_CHARS: Final = 1024  # longer user agents are cut (stored and judged) here
# no user agent: not a browser
_NO_USER_AGENT: Final = (None, INVALID_NON_BROWSER, user_agent_fragment(None))
_K = TypeVar("_K")
_V = TypeVar("_V")


class BotDetector:
    """The user agent's verdict (``bot``, ``non_browser`` or None) with a cache in front of
    the lists (:class:`~adtrack.collector.agent_lists.AgentLists`).

    The caches forget their oldest entries first when full (an eighth at a time): a hit is a
    plain dict lookup, with no reordering on the hot path. A busy user agent that is forgotten
    is judged again once, then cached again.
    """

    __slots__ = ("_lists", "_cache", "_max", "_raw")

    def __init__(self, max_entries: int = 50_000, lists: AgentLists | None = None) -> None:
        self._lists = lists or agent_lists()
        self._cache: dict[str, str | None] = {}
        self._raw: dict[bytes, tuple[str | None, str | None, bytes]] = {}
        self._max = max(1, max_entries)

    def classify(self, raw: bytes | None) -> tuple[str | None, str | None, bytes]:
        """The header value as text (cut to 1024 characters), its invalid-traffic reason
        (None for a browser), and the text pre-encoded for the event record.

        Cached by the raw header bytes, so a known user agent costs one dict lookup.
        """
        if not raw:
            return _NO_USER_AGENT
        cache = self._raw
        hit = cache.get(raw)
        if hit is not None:
            return hit
        text = raw[:MAX_USER_AGENT_CHARS].decode("utf-8", "replace")
        result = (text, self.reason(text), user_agent_fragment(text))
        self._remember(cache, raw, result)
        return result

    def reason(self, user_agent: str | None) -> str | None:
        """``bot``, ``non_browser`` or None, cached per user agent."""
        if not user_agent:
            return INVALID_NON_BROWSER
        cache = self._cache
        if user_agent in cache:
            return cache[user_agent]
        verdict = self._lists.reason(user_agent)
        self._remember(cache, user_agent, verdict)
        return verdict

    def _remember(self, cache: dict[_K, _V], key: _K, value: _V) -> None:
        """Cache ``value``, forgetting the oldest entries first when full (only on a miss)."""
        make_room(cache, self._max)
        cache[key] = value


def judges_for(settings: Settings) -> tuple[BotDetector, DatacentreAddresses]:
    """The user-agent and address judges of a collector core, sized by ``settings``."""
    ranges = datacentre_ranges(settings.data_dir / "cache") if settings.ivt_datacentre else None
    return (
        BotDetector(settings.ivt_user_agent_cache),
        DatacentreAddresses(ranges, settings.ivt_address_cache),
    )


_PREFETCH_WORDS: Final = (b"prefetch", b"prerender", b"preview")


def is_prefetch(purpose: bytes | None) -> bool:
    """Whether a purpose header value marks a prefetch/prerender/preview request."""
    if not purpose:
        return False
    lowered = purpose.lower()
    return any(word in lowered for word in _PREFETCH_WORDS)


def usable_cachebuster(cachebuster: str | None) -> bool:
    """A cachebuster that identifies one ad view (not empty, not an unreplaced macro)."""
    if not cachebuster:
        return False
    return not (
        (cachebuster.startswith("[") and cachebuster.endswith("]"))
        or (cachebuster.startswith("${") and cachebuster.endswith("}"))
        or (cachebuster.startswith("%%") and cachebuster.endswith("%%"))
    )


class DuplicateClicks:
    """Remembers (tracker, cachebuster) of recent valid clicks, in fixed memory.

    A click repeats another if it comes less than ``window_seconds`` after it (compared to the
    millisecond). The memory is one flat array of 64-bit integers, so a click costs no Python
    object and the table never grows, shrinks or frees anything: no pauses, however fast clicks
    come. The array is cut into buckets of two entries, each a fingerprint (the hash of tracker
    and cachebuster) and a time, side by side: a click reads and writes one bucket, 32 bytes of
    memory, which matters because each new click lands in a random place of a table far larger
    than the CPU caches. A new click takes its bucket's empty, expired or older entry, so when
    clicks come faster than the table holds for a whole window, the oldest are forgotten first
    (memory wins over the window). ``max_entries`` is rounded down to an even number (at least
    two). Fingerprints are 64 bits with a per-process random hash seed, so telling two different
    clicks apart fails about once in 2**64 comparisons.
    """

    __slots__ = ("_table", "_buckets", "_window_ms", "_clock")

    def __init__(
        self,
        window_seconds: float = 600.0,
        max_entries: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._buckets = max(1, max_entries // 2)
        # per bucket: fingerprint, time (ms), fingerprint, time (ms); fingerprint 0: empty
        self._table = array("q", bytes(32 * self._buckets))
        self._window_ms = round(window_seconds * 1000)
        self._clock = clock

    def __len__(self) -> int:
        """Clicks remembered now (within the window)."""
        since = int(self._clock() * 1000) - self._window_ms
        table = self._table
        return sum(1 for i in range(0, len(table), 2) if table[i] and table[i + 1] > since)

    def check_and_remember(self, tracker_id: int, cachebuster: str | None) -> bool:
        """True if this click repeats a remembered one; otherwise remember it and return False."""
        if not cachebuster or (cachebuster[0] in "[$%" and not usable_cachebuster(cachebuster)):
            return False
        fingerprint = hash((tracker_id, cachebuster)) or 1
        i = fingerprint % self._buckets * 4
        table = self._table
        now = int(self._clock() * 1000)
        if table[i] == fingerprint:
            if now - table[i + 1] < self._window_ms:
                return True
        elif table[i + 2] == fingerprint:
            if now - table[i + 3] < self._window_ms:
                return True
            i += 2
        elif table[i + 3] < table[i + 1]:  # the empty, expired or older entry
            i += 2
        table[i] = fingerprint
        table[i + 1] = now
        return False

    def forget(self, tracker_id: int, cachebuster: str | None) -> None:
        """Undo :meth:`check_and_remember` for a click whose event could not be stored, so
        the client's retry is not mistaken for a duplicate."""
        if cachebuster:
            fingerprint = hash((tracker_id, cachebuster)) or 1
            i = fingerprint % self._buckets * 4
            table = self._table
            for entry in (i, i + 2):
                if table[entry] == fingerprint:
                    table[entry] = table[entry + 1] = 0
