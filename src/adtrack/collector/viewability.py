"""Viewability on the collector's side: the script a ``t=1`` impression is answered with, the
measurement script it loads, and the beacons that script sends back (docs/tracking.md,
"Viewability").

- ``/imptr?...&t=1`` (once its impression is stored) answers a small script, different for each
  impression and never cached, that hands the measurement script a signed token of the
  impression (``domain/view_tokens.py``) and the element to measure: the element whose id the
  tag's ``data-view-element`` attribute names, else the tag's parent element (the creative's
  container). It loads the measurement script from the tag's own host.
- ``/v.js?v=<version>``: the measurement script (``assets/viewability.js``), the same bytes for
  every impression, cached by browsers and proxies for a year (``immutable``): the version in
  its URL changes whenever the script does. Without that version (or with another one) it is
  cached for five minutes only.
- ``/viewtr?state=measured|viewable&token=...`` (GET or POST, as ``navigator.sendBeacon``
  sends it): a beacon. With a good token within its time window it becomes an event of the
  impression (answered 204 once stored, 503 if the event log cannot take it); anything else is
  counted in ``adtrack_collector_view_beacons_total`` and answered 204 without a record.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from importlib import resources
from typing import Final

from adtrack.domain.events import VIEW_STATES, Event
from adtrack.domain.model import ImpType
from adtrack.domain.view_tokens import ViewToken, ViewTokenSigner

__all__ = [
    "VIEW_BEACON_PATH",
    "VIEW_SCRIPT",
    "VIEW_SCRIPT_PATH",
    "VIEW_SCRIPT_VERSION",
    "Viewability",
    "beacon_record",
    "measuring_script",
    "parse_beacon_query",
    "versioned_request",
]

VIEW_SCRIPT_PATH: Final = "/v.js"
VIEW_BEACON_PATH: Final = "/viewtr"

VIEW_SCRIPT: Final = (
    resources.files("adtrack.collector").joinpath("assets/viewability.js").read_bytes()
)
VIEW_SCRIPT_VERSION: Final = hashlib.sha256(VIEW_SCRIPT).hexdigest()[:12].encode()
_VERSION_QUERY = b"v=" + VIEW_SCRIPT_VERSION

# The t=1 answer around its token. The tag's own URL (document.currentScript) says where the
# collector is, so the measurement script and the beacons go to the host (and path prefix) the
# tag was exported with.
_SCRIPT_HEAD: Final = (
    b"/* adtrack: impression recorded; viewability measured by v.js */\n"
    b"(function(w,d,s,t){if(!s||!s.src)return;"
    b'var b=s.src.replace(/\\/imptr\\?.*$/,"/");'
    b'(w.adtrackView=w.adtrackView||[]).push({t:t,e:s.getAttribute("data-view-element"),'
    b'p:s.parentElement,u:b+"viewtr"});'
    b"if(w.adtrackViewScript)return;w.adtrackViewScript=1;"
    b'var v=d.createElement("script");v.async=true;v.src=b+"v.js?'
    + _VERSION_QUERY
    + b'";(d.head||d.documentElement).appendChild(v)'
    b'})(window,document,document.currentScript,"'
)
_SCRIPT_TAIL: Final = b'");\n'


def measuring_script(token: bytes) -> bytes:
    """The ``t=1`` answer for the impression of ``token`` (base64url text: no quoting needed)."""
    return _SCRIPT_HEAD + token + _SCRIPT_TAIL


def versioned_request(query: bytes) -> bool:
    """Whether a ``/v.js`` request names the current version (then it may be cached long)."""
    return query == _VERSION_QUERY


_STATES: Final = {state.encode(): state for state in VIEW_STATES}


def parse_beacon_query(query: bytes) -> tuple[str | None, bytes | None]:
    """``state`` (one of ``VIEW_STATES``, else None) and ``token`` (raw, else None) of a beacon's
    query; the first occurrence of each wins, other parameters are ignored."""
    state: str | None = None
    token: bytes | None = None
    seen_state = seen_token = False
    for pair in query.split(b"&"):
        name, _, value = pair.partition(b"=")
        if name == b"state" and not seen_state:
            seen_state = True
            state = _STATES.get(value)
        elif name == b"token" and not seen_token:
            seen_token = True
            # base64url and "." never need percent-encoding; encodeURIComponent leaves them
            token = value or None
    return state, token


_IMPRESSION: Final = int(ImpType.EXTERNAL_IMPRESSION)


def beacon_record(event_id: str, token: ViewToken, state: str) -> bytes:
    """The event log record of a beacon: an event of its impression's rollup keys (time,
    tracker, ids, payment rule, country and device, all from the token) that counts nothing but
    its state. Nothing else about the visitor is kept: the impression's event has it."""
    return Event(
        event_id=event_id,
        ts=token.ts,
        imp_type=_IMPRESSION,
        tracker_id=token.tracker_id,
        advertiser_id=token.advertiser_id,
        line_item_id=token.line_item_id,
        publisher_id=token.publisher_id,
        placement_id=token.placement_id,
        payment_rule_id=token.payment_rule_id,
        media_cost_micros=0,
        booked_revenue_micros=0,
        revenue_type="none",
        ancost_used=False,
        cachebuster=None,
        ip=None,
        country=token.country,
        user_agent=None,
        device_type=token.device_type,
        os=token.os,
        browser=token.browser,
        referrer=None,
        invalid=False,
        invalid_reason=None,
        redirect_url=None,
        view_state=state,
        impression_event_id=token.impression_event_id,
    ).to_bytes()


@dataclass(frozen=True)
class Viewability:
    """What the collector needs for viewability: the token signer (the deployment's token
    secret, ``bootstrap.build_view_tokens``) and how many days after its impression's day a
    beacon is still taken (``ADTRACK_VIEW_BEACON_DAYS``)."""

    signer: ViewTokenSigner
    beacon_days: int = 1

    @classmethod
    def ephemeral(cls) -> Viewability:
        """A signer with a secret of this process alone (tests, a collector built by hand)."""
        return cls(ViewTokenSigner(os.urandom(32)))
