"""Invalid-traffic verdicts (IAB "general invalid traffic"), kept apart from billable events.

* ``bot``: a known bot, spider or non-browser client by user agent (``crawlerdetect``), or no
  user agent at all. ``crawlerdetect`` runs a very large regular expression (about 0.3 ms per
  new user agent), so verdicts are cached per user agent in a bounded LRU.
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
from collections import OrderedDict
from collections.abc import Callable
from typing import Final

from crawlerdetect import CrawlerDetect

from adtrack.collector.records import user_agent_fragment
from adtrack.domain.events import INVALID_BOT, INVALID_DUPLICATE_CLICK, INVALID_PREFETCH

__all__ = ["BotDetector", "DuplicateClicks", "is_prefetch", "usable_cachebuster"]


MAX_USER_AGENT_CHARS: Final = 1024  # longer user agents are cut (stored and judged) here
_NO_USER_AGENT: Final = (None, True, user_agent_fragment(None))  # no user agent: not a browser


class BotDetector:
    """``is_bot(user_agent)`` with an LRU cache in front of ``crawlerdetect``."""

    __slots__ = ("_detector", "_cache", "_max", "_raw")

    def __init__(self, max_entries: int = 50_000) -> None:
        self._detector = CrawlerDetect()
        self._cache: OrderedDict[str, bool] = OrderedDict()
        self._raw: OrderedDict[bytes, tuple[str | None, bool, bytes]] = OrderedDict()
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
            cache.move_to_end(raw)
            return hit
        text = raw[:MAX_USER_AGENT_CHARS].decode("utf-8", "replace")
        result = (text, self.is_bot(text), user_agent_fragment(text))
        cache[raw] = result
        if len(cache) > self._max:
            cache.popitem(last=False)
        return result

    def is_bot(self, user_agent: str | None) -> bool:
        if not user_agent or not user_agent.strip():
            return True  # no user agent: not a browser
        cache = self._cache
        verdict = cache.get(user_agent)
        if verdict is not None:
            cache.move_to_end(user_agent)
            return verdict
        verdict = bool(self._detector.is_crawler(user_agent))
        cache[user_agent] = verdict
        if len(cache) > self._max:
            cache.popitem(last=False)
        return verdict


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

    A click repeats another if it comes less than ``window_seconds`` after it (compared exactly,
    by timestamp). The memory is a table of ``max_entries`` slots held in two flat arrays — a
    64-bit fingerprint (the hash of tracker and cachebuster) and a time per slot — so a click
    costs no Python object and the table never grows, shrinks or frees anything: no pauses,
    however fast clicks come. Each click has two candidate slots; a new one takes the empty,
    expired or older of the two. When clicks come faster than the table holds for a whole window,
    the oldest are forgotten first (memory wins over the window). Fingerprints are 64 bits with a
    per-process random hash seed, so telling two different clicks apart fails about once in
    2**64 comparisons.
    """

    __slots__ = ("_fingerprints", "_times", "_size", "_window", "_clock")

    def __init__(
        self,
        window_seconds: float = 600.0,
        max_entries: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._size = max(1, max_entries)
        self._fingerprints = array("q", bytes(8 * self._size))  # 0: an empty slot
        self._times = array("d", bytes(8 * self._size))
        self._window = window_seconds
        self._clock = clock

    def __len__(self) -> int:
        """Clicks remembered now (within the window)."""
        since = self._clock() - self._window
        times = self._times
        return sum(1 for i, f in enumerate(self._fingerprints) if f and times[i] > since)

    def _slots(self, fingerprint: int) -> tuple[int, int]:
        size = self._size
        return fingerprint % size, (fingerprint >> 24) % size

    def check_and_remember(self, tracker_id: int, cachebuster: str | None) -> bool:
        """True if this click repeats a remembered one; otherwise remember it and return False."""
        if not cachebuster or (cachebuster[0] in "[$%" and not usable_cachebuster(cachebuster)):
            return False
        fingerprint = hash((tracker_id, cachebuster)) or 1
        size = self._size
        a = fingerprint % size  # (the two slots of _slots, inlined: this runs for every click)
        b = (fingerprint >> 24) % size
        fingerprints, times = self._fingerprints, self._times
        now = self._clock()
        if fingerprints[a] == fingerprint and now - times[a] < self._window:
            return True
        if fingerprints[b] == fingerprint and now - times[b] < self._window:
            return True
        slot = b if times[b] < times[a] else a  # the empty, expired or older one
        fingerprints[slot] = fingerprint
        times[slot] = now
        return False

    def forget(self, tracker_id: int, cachebuster: str | None) -> None:
        """Undo :meth:`check_and_remember` for a click whose event could not be stored, so
        the client's retry is not mistaken for a duplicate."""
        if cachebuster:
            fingerprint = hash((tracker_id, cachebuster)) or 1
            for slot in self._slots(fingerprint):
                if self._fingerprints[slot] == fingerprint:
                    self._fingerprints[slot] = 0
                    self._times[slot] = 0.0


REASONS: Final = (INVALID_BOT, INVALID_PREFETCH, INVALID_DUPLICATE_CLICK)
