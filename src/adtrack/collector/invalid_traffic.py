"""Invalid-traffic verdicts (IAB "general invalid traffic"), kept apart from billable events.

* ``bot``: a known bot, spider or non-browser client by user agent (``crawlerdetect``), or no
  user agent at all. ``crawlerdetect`` runs a very large regular expression (about 0.3 ms per
  new user agent), so verdicts are cached per user agent in a bounded LRU.
* ``prefetch``: a prefetch/prerender/preview request (``Purpose``/``Sec-Purpose``/``X-Purpose``/
  ``X-Moz`` headers) — nobody saw the ad.
* ``duplicate_click``: a click repeating the cachebuster of an earlier valid click on the same
  tracker within a window (default 10 minutes). Memory is bounded (see :class:`DuplicateClicks`);
  clicks without a cachebuster, or with an unreplaced macro such as ``[CACHEBUSTER]``, are never
  treated as duplicates because they carry no identity.
"""

from __future__ import annotations

import time
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
    """Remembers (tracker, cachebuster) of recent valid clicks, bounded in time and memory.

    A click repeats another if it comes less than ``window_seconds`` after it (compared exactly,
    by timestamp). Memory is two plain dicts, the current and the previous generation, swapped
    every ``window_seconds`` — so every entry is kept for at least one window and at most two —
    or earlier when the current one holds ``max_entries / 2`` clicks (then memory wins over the
    window). Cheaper per click than an LRU with per-entry eviction.
    """

    __slots__ = ("_current", "_previous", "_window", "_half_max", "_clock", "_rotate_at")

    def __init__(
        self,
        window_seconds: float = 600.0,
        max_entries: int = 200_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._current: dict[tuple[int, str], float] = {}
        self._previous: dict[tuple[int, str], float] = {}
        self._window = window_seconds
        self._half_max = max(1, max_entries // 2)
        self._clock = clock
        self._rotate_at = clock() + window_seconds

    def __len__(self) -> int:
        return len(self._current) + len(self._previous)

    def _rotate(self, now: float) -> None:
        self._previous = self._current
        self._current = {}
        self._rotate_at = now + self._window

    def check_and_remember(self, tracker_id: int, cachebuster: str | None) -> bool:
        """True if this click repeats a remembered one; otherwise remember it and return False."""
        if not cachebuster or (cachebuster[0] in "[$%" and not usable_cachebuster(cachebuster)):
            return False
        now = self._clock()
        if now >= self._rotate_at:
            self._rotate(now)
        key = (tracker_id, cachebuster)
        first = self._current.get(key)
        if first is None:
            first = self._previous.get(key)
        if first is not None and now - first < self._window:
            return True
        current = self._current
        if len(current) >= self._half_max:
            self._rotate(now)
            current = self._current
        current[key] = now
        return False

    def forget(self, tracker_id: int, cachebuster: str | None) -> None:
        """Undo :meth:`check_and_remember` for a click whose event could not be stored, so
        the client's retry is not mistaken for a duplicate."""
        if cachebuster is not None:
            key = (tracker_id, cachebuster)
            self._current.pop(key, None)
            self._previous.pop(key, None)


REASONS: Final = (INVALID_BOT, INVALID_PREFETCH, INVALID_DUPLICATE_CLICK)
