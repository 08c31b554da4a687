"""Invalid-traffic verdicts (IAB "general invalid traffic"), kept apart from billable events.

* ``bot``: a known bot, spider or non-browser client by user agent (``crawlerdetect``), or no
  user agent at all. ``crawlerdetect`` runs a very large regular expression (about 0.3 ms per
  new user agent), so verdicts are cached per user agent (bounded; see :class:`BotDetector`).
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

from crawlerdetect import CrawlerDetect

from adtrack.collector.records import user_agent_fragment
from adtrack.domain.events import INVALID_BOT, INVALID_DUPLICATE_CLICK, INVALID_PREFETCH

__all__ = ["BotDetector", "DuplicateClicks", "is_prefetch", "usable_cachebuster"]


MAX_USER_AGENT_CHARS: Final = 1024  # longer user agents are cut (stored and judged) here
_NO_USER_AGENT: Final = (None, True, user_agent_fragment(None))  # no user agent: not a browser
_K = TypeVar("_K")
_V = TypeVar("_V")


class BotDetector:
    """``is_bot(user_agent)`` with a cache in front of ``crawlerdetect``.

    The caches forget their oldest entries first when full (first in, first out): a hit is a
    plain dict lookup, with no reordering on the hot path. A busy user agent that is forgotten
    is judged again once, then cached again.
    """

    __slots__ = ("_detector", "_cache", "_max", "_raw")

    def __init__(self, max_entries: int = 50_000) -> None:
        self._detector = CrawlerDetect()
        self._cache: dict[str, bool] = {}
        self._raw: dict[bytes, tuple[str | None, bool, bytes]] = {}
        self._max = max_entries
        self._detector.is_crawler("warm-up")  # compiles the big regular expression now

    def classify(self, raw: bytes | None) -> tuple[str | None, bool, bytes]:
        """The header value as text (cut to 1024 characters), whether it is a bot, and the
        text pre-encoded for the event record.

        Cached by the raw header bytes, so a known user agent costs one dict lookup.
        """
        if not raw:
            return _NO_USER_AGENT
        cache = self._raw
        hit = cache.get(raw)
        if hit is not None:
            return hit
        text = raw[:MAX_USER_AGENT_CHARS].decode("utf-8", "replace")
        result = (text, self.is_bot(text), user_agent_fragment(text))
        self._remember(cache, raw, result)
        return result

    def is_bot(self, user_agent: str | None) -> bool:
        if not user_agent or not user_agent.strip():
            return True  # no user agent: not a browser
        cache = self._cache
        verdict = cache.get(user_agent)
        if verdict is not None:
            return verdict
        verdict = bool(self._detector.is_crawler(user_agent))
        self._remember(cache, user_agent, verdict)
        return verdict

    def _remember(self, cache: dict[_K, _V], key: _K, value: _V) -> None:
        """Cache ``value``, dropping the oldest entry first when full (only on a miss)."""
        if len(cache) >= self._max:
            del cache[next(iter(cache))]
        cache[key] = value


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


REASONS: Final = (INVALID_BOT, INVALID_PREFETCH, INVALID_DUPLICATE_CLICK)
