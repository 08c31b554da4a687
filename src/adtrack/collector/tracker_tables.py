"""The collector's in-memory trackers: what the hot path reads, by id and by code.

A :class:`TrackerTables` is one consistent generation of the lookup tables. The tracker cache
builds a new one for a full load and swaps it in with one assignment, so the hot path never
sees a half-built table and never takes a lock; incremental changes replace single trackers.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from adtrack.collector.redirect_policy import NO_OVERRIDE, AdvertiserRedirects
from adtrack.domain.model import ConversionPixel, ConversionTrigger, State
from adtrack.domain.pricing import PricingPlan

__all__ = ["CachedPixel", "CachedTracker", "LookupKey", "TrackerTables"]


@dataclass(slots=True, eq=False)
class CachedTracker:
    """What the hot path needs to know about one tracker.

    Treat it as read-only: only the cache sets ``retired``, when a newer copy replaced it.
    """

    id: int
    imp_type: int  # 9 impression tracker, 10 click tracker
    code: str | None
    active: bool
    advertiser_id: int
    line_item_id: int
    publisher_id: int
    placement_id: int | None
    landing_page: bytes | None  # a safe Location value (click trackers), or None
    plan: PricingPlan
    record_fragment: bytes  # this tracker's ids, pre-encoded for the event record
    # its advertiser's redirect policy override and landing domains
    redirects: AdvertiserRedirects = NO_OVERRIDE
    # click trackers: the query parameter its redirects get the click token in (ASCII), or None
    token_param: bytes | None = None
    # the Set-Cookie line of the conversion cookie its valid hits set, cut where the token goes
    # (``conversion_cookies.cookie_parts``), or None: its advertiser sets none
    cookie_parts: tuple[bytes, bytes] | None = None
    # set once a newer copy replaced this one in the cache: anything derived from it is stale
    retired: bool = False


@dataclass(frozen=True, slots=True)
class CachedPixel:
    """What a conversion (``/sspx``, ``/px``) needs to know about its conversion pixel."""

    id: int
    code: str | None
    active: bool
    advertiser_id: int
    takes_post_click: bool  # its trigger type is click or hybrid
    post_click_window_micros: int
    post_click_revenue_micros: int
    takes_post_view: bool  # its trigger type is view or hybrid
    post_view_window_micros: int
    post_view_revenue_micros: int
    reads_cookies: bool  # its advertiser sets conversion cookies: /px attributes from them

    @classmethod
    def of(cls, pixel: ConversionPixel, reads_cookies: bool = False) -> CachedPixel:
        return cls(
            pixel.id,
            pixel.code,
            pixel.state is State.ACTIVE,
            pixel.advertiser_id,
            pixel.trigger_type is not ConversionTrigger.VIEW,
            pixel.post_click_window_minutes * 60_000_000,
            pixel.post_click_revenue_micros,
            pixel.trigger_type is not ConversionTrigger.CLICK,
            pixel.post_view_window_minutes * 60_000_000,
            pixel.post_view_revenue_micros,
            reads_cookies,
        )


# Lookup keys: ("id", 123) or (imp_type, "code").
LookupKey = tuple[str, int] | tuple[int, str]


class TrackerTables:
    """One consistent generation of the lookup tables (swapped as a whole)."""

    __slots__ = ("by_id", "by_code", "pixels_by_id", "pixels_by_code")

    def __init__(
        self, trackers: Iterable[CachedTracker] = (), pixels: Iterable[CachedPixel] = ()
    ) -> None:
        self.by_id: dict[int, CachedTracker] = {}
        self.by_code: dict[tuple[int, str], CachedTracker] = {}
        self.pixels_by_id: dict[int, CachedPixel] = {}
        self.pixels_by_code: dict[str, CachedPixel] = {}
        for tracker in trackers:
            self.add(tracker)
        for pixel in pixels:
            self.add_pixel(pixel)

    def add_pixel(self, pixel: CachedPixel) -> None:
        """Add or replace ``pixel``."""
        self.remove_pixel(pixel.id)
        self.pixels_by_id[pixel.id] = pixel
        if pixel.code:
            self.pixels_by_code[pixel.code] = pixel

    def remove_pixel(self, pixel_id: int) -> None:
        old = self.pixels_by_id.pop(pixel_id, None)
        if old is not None and old.code and self.pixels_by_code.get(old.code) is old:
            del self.pixels_by_code[old.code]

    def add(self, tracker: CachedTracker) -> None:
        """Add or replace ``tracker``; the copy it replaces is retired."""
        old = self.by_id.get(tracker.id)
        self.by_id[tracker.id] = tracker
        if old is not None and old is not tracker:
            self._drop_code(old)
            old.retired = True
        if tracker.code:
            self.by_code[(tracker.imp_type, tracker.code)] = tracker

    def remove(self, tracker_id: int) -> None:
        old = self.by_id.pop(tracker_id, None)
        if old is not None:
            self._drop_code(old)
            old.retired = True

    def _drop_code(self, old: CachedTracker) -> None:
        if old.code and self.by_code.get((old.imp_type, old.code)) is old:
            del self.by_code[(old.imp_type, old.code)]
