"""Platform -> adtrack (``from_xandr``): the values a ``KindCatalogue`` create or update accepts
(attribute names of ``entity_specs``: money in integer micros, revshare in ppm, dates as aware
UTC datetimes), the object's original id and code, the ids it references (on the platform's
side: the import translates them, the compatible API uses adtrack's ids as they are), and a
note per field that cannot map faithfully, with the reason. What makes an object unusable (no
name, no publisher on a tracker, a price that is not a number...) raises ``XandrRefusal``
naming the platform's field.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import tzinfo

from adtrack.domain.json_values import JsonObject
from adtrack.domain.model import PPM, FilterAction, PricingType, RevenueType, State
from adtrack.domain.validation import DEFAULT_PRIORITY, PRIORITY_MAX, PRIORITY_MIN
from adtrack.services.xandr.objects.conventions import (
    DEFAULT_TIMEZONE,
    ONE_SECOND,
    XandrKind,
    XandrRefusal,
    parse_timestamp,
    read_id,
    read_micros,
    read_zone,
)
from adtrack.services.xandr.objects.mapped import OTHER_FIELDS, FieldNote, MappedObject

__all__ = ["from_xandr"]


def _meaningful(value: object) -> bool:
    """Whether a field the mapping does not use carries something a note should mention."""
    return value not in (None, "", [], {}, False)


class _Reader:
    """One object being read: the fields used, the notes made."""

    def __init__(self, kind: XandrKind, obj: JsonObject, partial: bool) -> None:
        self.kind = kind
        self.obj = obj
        self.partial = partial
        self.used: set[str] = set()
        self.notes: list[FieldNote] = []
        self.values: dict[str, object] = {}
        self.references: dict[str, int | None] = {}
        self.id_sets: dict[str, frozenset[int]] = {}

    def given(self, key: str) -> bool:
        return key in self.obj

    def get(self, key: str) -> object:
        self.used.add(key)
        return self.obj.get(key)

    def wanted(self, key: str) -> bool:
        """Whether to set the attribute read from ``key``: always for a whole object, only when
        given for a partial one (an update)."""
        return not self.partial or key in self.obj

    def note(self, field: str, reason: str) -> None:
        self.notes.append(FieldNote(field, reason))

    def leftover_notes(self, quiet: frozenset[str]) -> None:
        """One note naming the fields with a value that nothing above used (budgets, billing
        addresses, auction settings...): not silently dropped, and not a note each."""
        left = [
            key
            for key, value in self.obj.items()
            if key not in self.used and key not in quiet and _meaningful(value)
        ]
        if left:
            self.note(
                OTHER_FIELDS,
                f"adtrack has no equivalent of these {self.kind.value} fields; not kept: "
                + ", ".join(left),
            )


# Read-only fields of every kind that carry nothing of the user's (derived or ours to set).
_QUIET = frozenset({"id", "member_id", "last_modified", "created_on", "last_activity"})


def from_xandr(
    kind: XandrKind | str,
    obj: object,
    *,
    partial: bool = False,
    keep_original: bool = True,
    advertiser_id: int | None = None,
    publisher_id: int | None = None,
    is_base: bool | None = None,
    timezone: str | None = None,
) -> MappedObject:
    """Map one platform object (the JSON under its key) to catalogue values.

    ``partial``: an update (the platform's PUT): only the fields given are mapped, none is
    required. ``keep_original``: record the object's ``id``/``code`` as ``original_id`` /
    ``original_code`` (an import; the compatible API's objects are adtrack's own).
    ``advertiser_id`` / ``publisher_id``: from the request's query string (``POST
    /imptracker?advertiser_id=``, ``/payment-rule?publisher_id=``), used when the object does
    not say. ``is_base``: whether a payment rule is its publisher's base rule (the platform
    says so on the publisher: ``base_payment_rule_id``). ``timezone``: the time zone of a line
    item's dates when it gives none (its advertiser's; default ``EST5EDT``).
    """
    try:
        kind = XandrKind(kind)
    except ValueError:
        raise XandrRefusal("kind", f"is not a service adtrack maps ({str(kind)[:40]})") from None
    if not isinstance(obj, Mapping):
        raise XandrRefusal(kind.value, "must be an object")
    reader = _Reader(kind, obj, partial)
    original_id = read_id(obj["id"], "id") if obj.get("id") is not None else None
    reader.used.add("id")
    original_code = _read_common(reader, keep_original=keep_original, original_id=original_id)
    last_modified = parse_timestamp(reader.get("last_modified"), "last_modified")
    base_payment_rule_id: int | None = None
    if kind is XandrKind.ADVERTISER:
        quiet = _read_advertiser(reader)
    elif kind is XandrKind.LINE_ITEM:
        quiet = _read_line_item(reader, advertiser_id, timezone)
    elif kind is XandrKind.PUBLISHER:
        quiet = _read_publisher(reader)
        raw_base = reader.get("base_payment_rule_id")
        if raw_base is not None:
            base_payment_rule_id = read_id(raw_base, "base_payment_rule_id")
    elif kind is XandrKind.PLACEMENT:
        quiet = _read_placement(reader, publisher_id)
    elif kind is XandrKind.PAYMENT_RULE:
        quiet = _read_payment_rule(reader, publisher_id, is_base)
    else:
        quiet = _read_tracker(reader, advertiser_id)
    reader.leftover_notes(_QUIET | quiet)
    return MappedObject(
        kind=kind,
        original_id=original_id,
        original_code=original_code,
        values=reader.values,
        references=reader.references,
        id_sets=reader.id_sets,
        notes=tuple(reader.notes),
        last_modified=last_modified,
        base_payment_rule_id=base_payment_rule_id,
    )


def _read_common(reader: _Reader, *, keep_original: bool, original_id: int | None) -> str | None:
    """name, code and state (and original_id / original_code); returns the code."""
    name = reader.get("name")
    if reader.wanted("name"):
        if not isinstance(name, str) or not name.strip():
            raise XandrRefusal("name", "is required: the object has no name")
        reader.values["name"] = name
    raw_code = reader.get("code")
    if raw_code is not None and not isinstance(raw_code, str):
        raise XandrRefusal("code", "must be a text")
    code = (raw_code.strip() or None) if isinstance(raw_code, str) else None
    if reader.wanted("code"):
        if code is not None and any(ch.isspace() for ch in code):
            reader.note(
                "code",
                f"adtrack codes have no spaces: {code!r} is kept as the original code only",
            )
            reader.values["code"] = None
        else:
            reader.values["code"] = code
    state = reader.get("state")
    if reader.wanted("state"):
        if state is None:
            # The platform's default: publishers start inactive, everything else active.
            state = "inactive" if reader.kind is XandrKind.PUBLISHER else "active"
        if state not in (State.ACTIVE.value, State.INACTIVE.value):
            raise XandrRefusal("state", f'must be "active" or "inactive" (got {state!r:.40})')
        reader.values["state"] = State(state)
    if keep_original and original_id is not None:
        reader.values["original_id"] = original_id
        reader.values["original_code"] = code
    return code


def _set_reference(reader: _Reader, attribute: str, value: int | None, field: str) -> None:
    if value is None and attribute in ("advertiser_id", "line_item_id", "publisher_id"):
        if reader.partial:
            raise XandrRefusal(field, "cannot be cleared")
        raise XandrRefusal(field, "is required")
    reader.references[attribute] = value


def _nested_id(reader: _Reader, key: str) -> int | None:
    """The id of a nested reference: ``{"id": N}``, ``[{"id": N}, ...]`` (the first; more are a
    note) or null."""
    value = reader.get(key)
    if value is None or value == []:
        return None
    items = value if isinstance(value, list) else [value]
    first = items[0]
    if not isinstance(first, Mapping) or first.get("id") is None:
        raise XandrRefusal(f"{key}.id", 'is required: give the object as {"id": N}')
    if len(items) > 1:
        extra = ", ".join(str(item.get("id")) for item in items[1:] if isinstance(item, Mapping))
        reader.note(key, f"adtrack keeps one {key} per tracker: the first is kept, not {extra}")
    return read_id(first["id"], f"{key}.id")


def _read_advertiser(reader: _Reader) -> frozenset[str]:
    # An advertiser's time zone is what its line items' dates are written in; the import
    # reads those dates with it and stores instants, so nothing is lost.
    reader.get("timezone")
    return frozenset()


def _read_line_item(
    reader: _Reader, advertiser_id: int | None, timezone: str | None
) -> frozenset[str]:
    if reader.given("advertiser_id") or reader.given("advertiser") or not reader.partial:
        raw = reader.get("advertiser_id")
        nested = reader.get("advertiser")
        if raw is None and isinstance(nested, Mapping):
            raw = nested.get("id")
        if raw is None:
            raw = advertiser_id
        _set_reference(
            reader,
            "advertiser_id",
            None if raw is None else read_id(raw, "advertiser_id"),
            "advertiser_id",
        )
    zone_name = reader.get("timezone") or timezone or DEFAULT_TIMEZONE
    tz = read_zone(zone_name, "timezone")
    _read_dates(reader, tz)
    if reader.wanted("revenue_type"):
        _read_revenue(reader)
    elif reader.given("revenue_value"):  # an update of the value alone
        value = reader.get("revenue_value")
        reader.values["revenue_value_micros"] = (
            0 if value is None else read_micros(value, "revenue_value")
        )
    # Read-only names of related objects, and the line item type (trackers count whatever it is).
    return frozenset({"advertiser", "line_item_type"})


def _read_revenue(reader: _Reader) -> None:
    revenue_type = reader.get("revenue_type") or RevenueType.NONE.value
    revenue_value = reader.get("revenue_value")
    if not isinstance(revenue_type, str):
        raise XandrRefusal("revenue_type", "must be a text")
    if revenue_type in (RevenueType.CPM.value, RevenueType.CPC.value):
        if revenue_value is None:
            raise XandrRefusal("revenue_value", f"is required with revenue_type {revenue_type}")
        reader.values["revenue_type"] = RevenueType(revenue_type)
        reader.values["revenue_value_micros"] = read_micros(revenue_value, "revenue_value")
        return
    reader.values["revenue_type"] = RevenueType.NONE
    reader.values["revenue_value_micros"] = 0
    if revenue_type != RevenueType.NONE.value:
        reader.used.add("flat_fee")  # its details belong to the note below
        shown = "" if revenue_value is None else f" {revenue_value}"
        reader.note(
            "revenue_type",
            f"booked revenue {revenue_type}{shown} has no equivalent in adtrack (it books "
            "revenue per thousand impressions or per click only); kept as none",
        )


def _read_dates(reader: _Reader, tz: tzinfo) -> None:
    if reader.wanted("start_date"):
        reader.values["start_date"] = parse_timestamp(reader.get("start_date"), "start_date", tz)
    if reader.wanted("end_date"):
        end = parse_timestamp(reader.get("end_date"), "end_date", tz)
        # Inclusive on the platform, exclusive in adtrack.
        reader.values["end_date"] = None if end is None else end + ONE_SECOND
    if (
        reader.values.get("start_date") is not None
        and reader.values.get("end_date") is not None
        and reader.values["end_date"] <= reader.values["start_date"]  # type: ignore[operator]
    ):
        raise XandrRefusal("end_date", "must not be before start_date")


def _read_publisher(reader: _Reader) -> frozenset[str]:
    zone = reader.get("timezone")
    if zone is not None:
        reader.note(
            "timezone",
            f"the publisher's time zone ({zone}) is not kept: adtrack reports in the time zone "
            "each report asks for",
        )
    # Its placements come from the placement service; the default site is a platform notion.
    return frozenset({"placements", "default_site_id", "base_payment_rule_id"})


def _read_owning_publisher(reader: _Reader, publisher_id: int | None) -> None:
    """A placement's or payment rule's publisher: its own ``publisher_id``, else the one the
    caller knows (the query string it was listed with)."""
    if not reader.wanted("publisher_id"):
        return
    raw = reader.get("publisher_id")
    if raw is None:
        raw = publisher_id
    given = None if raw is None else read_id(raw, "publisher_id")
    _set_reference(reader, "publisher_id", given, "publisher_id")


def _read_placement(reader: _Reader, publisher_id: int | None) -> frozenset[str]:
    _read_owning_publisher(reader, publisher_id)
    site = reader.obj.get("site_id")
    if site is not None:
        reader.used.add("site_id")
        reader.note(
            "site_id",
            f"adtrack has no sites: the placement belongs to its publisher directly (site {site})",
        )
    return frozenset({"publisher_name", "site_name"})


def _read_payment_rule(
    reader: _Reader, publisher_id: int | None, is_base: bool | None
) -> frozenset[str]:
    obj = reader.obj
    _read_owning_publisher(reader, publisher_id)
    if is_base is not None:
        reader.values["is_base"] = is_base
    if reader.wanted("description"):
        description = reader.get("description")
        if description is not None and not isinstance(description, str):
            raise XandrRefusal("description", "must be a text")
        reader.values["description"] = description or None
    zone_name = reader.get("timezone") or DEFAULT_TIMEZONE
    _read_dates(reader, read_zone(zone_name, "timezone"))
    if reader.wanted("priority"):
        priority = reader.get("priority")
        if priority is None:
            priority = DEFAULT_PRIORITY
        if isinstance(priority, bool) or not isinstance(priority, int):
            raise XandrRefusal("priority", "must be a whole number")
        if not PRIORITY_MIN <= priority <= PRIORITY_MAX:
            raise XandrRefusal(
                "priority", f"must be between {PRIORITY_MIN} and {PRIORITY_MAX} (got {priority})"
            )
        reader.values["priority"] = priority
    if reader.wanted("pricing_type"):
        _read_pricing(reader)
    else:  # an update of an amount alone
        if reader.given("revshare") and reader.obj["revshare"] is not None:
            reader.values["revshare_ppm"] = _share(reader.get("revshare"))
        if reader.given("cost_cpm") and reader.obj["cost_cpm"] is not None:
            reader.values["cost_cpm_micros"] = read_micros(reader.get("cost_cpm"), "cost_cpm")
    if reader.wanted("demand_filter_action") or any(
        reader.given(key) for key in ("filtered_advertisers", "filtered_line_items")
    ):
        _read_filters(reader)
    if obj.get("profile_id") is not None:
        reader.used.add("profile_id")
        reader.note(
            "profile_id",
            f"the rule's targeting profile ({obj['profile_id']}) is not kept: adtrack has no "
            "targeting profiles, so the rule applies without that condition",
        )
    if obj.get("buyer_type") not in (None, "both"):
        reader.used.add("buyer_type")
        reader.note(
            "buyer_type",
            f"buyer_type {obj['buyer_type']} is not kept: trackers have no buyer type",
        )
    # Used with pricing "dynamic" (said in that note); budgets and the auction's default
    # carry nothing for externally served trackers.
    return frozenset({"buyer_type", "max_revshare", "target_ecpm", "apply_cost_on_default"})


def _read_pricing(reader: _Reader) -> None:
    pricing = reader.get("pricing_type") or PricingType.REVSHARE.value
    revshare = reader.get("revshare")
    cost_cpm = reader.get("cost_cpm")
    if pricing == PricingType.CPM.value:
        if cost_cpm is None:
            raise XandrRefusal("cost_cpm", "is required with pricing_type cpm")
        reader.values["pricing_type"] = PricingType.CPM
        reader.values["cost_cpm_micros"] = read_micros(cost_cpm, "cost_cpm")
        reader.values["revshare_ppm"] = 0
        return
    if pricing not in ("revshare", "dynamic"):
        raise XandrRefusal(
            "pricing_type", f'must be "revshare", "cpm" or "dynamic" (got {pricing!r:.40})'
        )
    if revshare is None:
        raise XandrRefusal("revshare", f"is required with pricing_type {pricing}")
    ppm = _share(revshare)
    reader.values["pricing_type"] = PricingType.REVSHARE
    reader.values["revshare_ppm"] = ppm
    reader.values["cost_cpm_micros"] = 0
    if pricing == "dynamic":
        obj = reader.obj
        reader.note(
            "pricing_type",
            "dynamic pricing (revshare from {} to {} aiming at an eCPM of {}) has no equivalent "
            "in adtrack, which pays a fixed share; kept as revshare {} (the minimum)".format(
                revshare, obj.get("max_revshare"), obj.get("target_ecpm"), revshare
            ),
        )


def _share(value: object) -> int:
    ppm = read_micros(value, "revshare")  # a share 0..1 has the same 10^6 scale as micros
    if ppm > PPM:
        raise XandrRefusal("revshare", "must be between 0 and 1")
    return ppm


def _filter_ids(reader: _Reader, key: str) -> frozenset[int]:
    items = reader.get(key)
    if items is None:
        return frozenset()
    if not isinstance(items, list):
        raise XandrRefusal(key, 'must be a list of objects ({"id": N})')
    ids: set[int] = set()
    for index, item in enumerate(items):
        if not isinstance(item, Mapping) or item.get("id") is None:
            raise XandrRefusal(f"{key}[{index}].id", "is required")
        ids.add(read_id(item["id"], f"{key}[{index}].id"))
    return frozenset(ids)


def _read_filters(reader: _Reader) -> None:
    action = reader.get("demand_filter_action") or "default"
    advertisers = _filter_ids(reader, "filtered_advertisers")
    line_items = _filter_ids(reader, "filtered_line_items")
    campaigns = reader.obj.get("filtered_campaigns")
    if campaigns:
        reader.used.add("filtered_campaigns")
        reader.note(
            "filtered_campaigns",
            f"adtrack has no campaigns: the rule's campaign filter ({action}) is not kept",
        )
    if action == "default":
        if advertisers or line_items:
            reader.note(
                "demand_filter_action",
                'with "default" the filtered advertisers and line items do not filter; '
                "they are not kept",
            )
        advertisers = line_items = frozenset()
        filter_action: FilterAction | None = None
    elif action in (FilterAction.INCLUDE.value, FilterAction.EXCLUDE.value):
        filter_action = FilterAction(action)
    else:
        raise XandrRefusal(
            "demand_filter_action",
            f'must be "include", "exclude" or "default" (got {action!r:.40})',
        )
    reader.values["advertiser_filter"] = filter_action if advertisers else None
    reader.values["line_item_filter"] = filter_action if line_items else None
    reader.id_sets["advertiser_ids"] = advertisers
    reader.id_sets["line_item_ids"] = line_items


def _read_tracker(reader: _Reader, advertiser_id: int | None) -> frozenset[str]:
    kind = reader.kind
    if reader.wanted("advertiser_id"):
        raw = reader.get("advertiser_id")
        if raw is None:
            raw = advertiser_id
        # Optional in adtrack: the line item's advertiser when not given.
        reader.references["advertiser_id"] = None if raw is None else read_id(raw, "advertiser_id")
    for key, attribute in (("publisher", "publisher_id"), ("line_item", "line_item_id")):
        if reader.wanted(key):
            _set_reference(reader, attribute, _nested_id(reader, key), f"{key}.id")
    for key, attribute in (("tag", "placement_id"), ("payment_rule", "payment_rule_id")):
        if reader.wanted(key):
            reader.references[attribute] = _nested_id(reader, key)
    if kind is XandrKind.CLICKTRACKER and reader.wanted("click_url"):
        url = reader.get("click_url")
        if url is not None and not isinstance(url, str):
            raise XandrRefusal("click_url", "must be a text")
        reader.values["landing_page_url"] = url or None
    # An impression tracker's "clicktracker" is "not currently in use" on the platform.
    return frozenset({"clicktracker"})
