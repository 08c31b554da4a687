"""The one two-way mapping between the original platform's API JSON objects (Microsoft Invest /
Xandr / AppNexus: ``advertiser``, ``line-item``, ``publisher``, ``placement``, ``payment-rule``,
``imptracker``, ``clicktracker``) and adtrack's catalogue. Pure: no I/O, no lookups; the names
of referenced objects are passed in.

``conventions``: the platform's services, ids, amounts, time zones and timestamps, shared by
both directions. ``mapped``: what a platform object becomes (``MappedObject``, ``FieldNote``).
``platform_to_adtrack``: ``from_xandr``. ``adtrack_to_platform``: ``*_to_xandr``. The import
and the compatible API import the mapping from this package.
"""

from adtrack.services.xandr.objects.adtrack_to_platform import (
    Names,
    advertiser_to_xandr,
    line_item_to_xandr,
    payment_rule_to_xandr,
    placement_to_xandr,
    publisher_to_xandr,
    tracker_to_xandr,
)
from adtrack.services.xandr.objects.conventions import (
    DEFAULT_TIMEZONE,
    OUTPUT_TIMEZONE,
    TIMESTAMP_FORMAT,
    XandrKind,
    XandrRefusal,
    format_timestamp,
    parse_timestamp,
    tracker_kind,
)
from adtrack.services.xandr.objects.mapped import (
    OTHER_FIELDS,
    REFERENCE_KINDS,
    FieldNote,
    MappedObject,
)
from adtrack.services.xandr.objects.platform_to_adtrack import from_xandr

__all__ = [
    "DEFAULT_TIMEZONE",
    "OTHER_FIELDS",
    "OUTPUT_TIMEZONE",
    "REFERENCE_KINDS",
    "TIMESTAMP_FORMAT",
    "FieldNote",
    "MappedObject",
    "Names",
    "XandrKind",
    "XandrRefusal",
    "advertiser_to_xandr",
    "format_timestamp",
    "from_xandr",
    "line_item_to_xandr",
    "parse_timestamp",
    "payment_rule_to_xandr",
    "placement_to_xandr",
    "publisher_to_xandr",
    "tracker_kind",
    "tracker_to_xandr",
]
