"""The relational schema (SQLAlchemy Core). Alembic migrations mirror these tables.

Conventions:
- money columns end in ``_micros`` (BigInteger micro-units); revshare in ``_ppm``;
- timestamps are stored as timezone-aware UTC (``DateTime(timezone=True)``);
- catalogue rows are soft-deleted (``deleted_at``) so reports keep their names, while the
  API treats a deleted row as gone.
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    false,
)

from adtrack.domain.rollup_counters import CONVERSION_PIXEL_SUMS, Counters

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}
metadata = MetaData(naming_convention=NAMING)


def _audit() -> list[Column[object]]:
    return [
        Column("created_at", DateTime(timezone=True), nullable=False),
        Column("last_modified", DateTime(timezone=True), nullable=False),
        Column("deleted_at", DateTime(timezone=True), nullable=True),
    ]


def _origin() -> list[Column[object]]:
    """Where an imported row came from: its id and code on the platform it was exported from
    (Microsoft Invest/Xandr), so a re-import finds it again and users can search by them."""
    return [
        Column("original_id", BigInteger, nullable=True, index=True),
        Column("original_code", String(100), nullable=True),
    ]


def _no_domains() -> list[str]:
    return []


advertisers = Table(
    "advertisers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("code", String(100), nullable=True),
    Column("state", String(16), nullable=False, default="active"),
    # host patterns a redir may go to under the allow-list redirect policy: a JSON list of
    # normalised patterns ("shop.example", "*.shop.example")
    Column("landing_domains", JSON, nullable=False, default=_no_domains),
    # "trackers" | "allow-list" | "open", or NULL: the server's ADTRACK_REDIRECT_POLICY
    Column("redirect_policy", String(16), nullable=True),
    # conversion cookies on its clicks and impressions (docs/conversions.md, "Cookies")
    Column("conversion_cookies", Boolean, nullable=False, default=False, server_default=false()),
    *_origin(),
    *_audit(),
)

line_items = Table(
    "line_items",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("advertiser_id", Integer, ForeignKey("advertisers.id"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("code", String(100), nullable=True),
    Column("state", String(16), nullable=False, default="active"),
    Column("revenue_type", String(8), nullable=False, default="none"),
    Column("revenue_value_micros", BigInteger, nullable=False, default=0),
    Column("start_date", DateTime(timezone=True), nullable=True),
    Column("end_date", DateTime(timezone=True), nullable=True),
    *_origin(),
    *_audit(),
)

publishers = Table(
    "publishers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("code", String(100), nullable=True),
    Column("state", String(16), nullable=False, default="active"),
    *_origin(),
    *_audit(),
)

placements = Table(
    "placements",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("publisher_id", Integer, ForeignKey("publishers.id"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("code", String(100), nullable=True),
    Column("state", String(16), nullable=False, default="active"),
    *_origin(),
    *_audit(),
)

payment_rules = Table(
    "payment_rules",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("publisher_id", Integer, ForeignKey("publishers.id"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("code", String(100), nullable=True),
    Column("description", Text, nullable=True),
    Column("state", String(16), nullable=False, default="active"),
    Column("is_base", Boolean, nullable=False, default=False),
    Column("pricing_type", String(16), nullable=False, default="revshare"),
    Column("revshare_ppm", Integer, nullable=False, default=0),
    Column("cost_cpm_micros", BigInteger, nullable=False, default=0),
    Column("cost_cpc_micros", BigInteger, nullable=False, default=0),
    Column("priority", SmallInteger, nullable=False, default=5),
    Column("start_date", DateTime(timezone=True), nullable=True),
    Column("end_date", DateTime(timezone=True), nullable=True),
    Column("advertiser_filter", String(8), nullable=True),  # include | exclude | NULL
    Column("line_item_filter", String(8), nullable=True),
    *_origin(),
    *_audit(),
)

# Filter members of a payment rule: kind is "advertiser" or "line_item".
payment_rule_filters = Table(
    "payment_rule_filters",
    metadata,
    Column(
        "payment_rule_id",
        Integer,
        ForeignKey("payment_rules.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("kind", String(16), primary_key=True),
    Column("object_id", Integer, primary_key=True),
)

trackers = Table(
    "trackers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("tracker_type", String(16), nullable=False),  # impression | click
    Column("name", String(255), nullable=False),
    Column("code", String(100), nullable=True),
    Column("state", String(16), nullable=False, default="active"),
    Column("advertiser_id", Integer, ForeignKey("advertisers.id"), nullable=False, index=True),
    Column("line_item_id", Integer, ForeignKey("line_items.id"), nullable=False, index=True),
    Column("publisher_id", Integer, ForeignKey("publishers.id"), nullable=False, index=True),
    Column("placement_id", Integer, ForeignKey("placements.id"), nullable=True, index=True),
    Column("payment_rule_id", Integer, ForeignKey("payment_rules.id"), nullable=True, index=True),
    Column("landing_page_url", Text, nullable=True),
    # click trackers: the query parameter their redirect target gets the click token in
    Column("ssp_data_param", String(64), nullable=True),
    *_origin(),
    *_audit(),
)
# A code is unique among live trackers of one type; enforced by the domain service (soft
# deletes make a plain unique constraint wrong) and backed by this index for lookups.
Index("ix_trackers_type_code", trackers.c.tracker_type, trackers.c.code)

# What an advertiser counts as a conversion (docs/conversions.md). A code is unique among live
# pixels (checked by the service, like trackers' codes).
conversion_pixels = Table(
    "conversion_pixels",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("advertiser_id", Integer, ForeignKey("advertisers.id"), nullable=False, index=True),
    Column("name", String(255), nullable=False),
    Column("code", String(100), nullable=True, index=True),
    Column("state", String(16), nullable=False, default="active"),
    Column("trigger_type", String(8), nullable=False, default="click"),  # view | click | hybrid
    Column("post_click_window_minutes", Integer, nullable=False),
    Column("post_view_window_minutes", Integer, nullable=False),
    Column("min_minutes_per_conversion", SmallInteger, nullable=True),  # NULL: one per click
    Column("post_click_revenue_micros", BigInteger, nullable=False, default=0),
    Column("post_view_revenue_micros", BigInteger, nullable=False, default=0),
    Column("event_type", String(16), nullable=False, default="other"),
    *_origin(),
    *_audit(),
)

# Bumped by every catalogue write, so collectors can poll one row to know when to reload.
catalogue_version = Table(
    "catalogue_version",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("version", BigInteger, nullable=False),
    Column("changed_at", DateTime(timezone=True), nullable=False),
    # catalogue_changes rows up to this version were trimmed: a collector that applied less
    # than this cannot catch up from the log and reloads everything
    Column("trimmed_through", BigInteger, nullable=False, default=0, server_default="0"),
)

# What each catalogue write changed: one row per (version, table, row id), written in the
# write's transaction under the version row lock, so versions commit in order. Collectors
# apply the rows after the version they hold instead of reloading the catalogue; every
# committed version has at least one row (a version without rows means an unrecorded write,
# and collectors reload everything). Old rows are trimmed (``trimmed_through``).
catalogue_changes = Table(
    "catalogue_changes",
    metadata,
    Column("version", BigInteger, primary_key=True),
    Column("kind", String(32), primary_key=True),  # the table name: trackers, line_items, ...
    Column("entity_id", Integer, primary_key=True),
)

users = Table(
    "users",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("email", String(320), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("state", String(16), nullable=False, default="active"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_modified", DateTime(timezone=True), nullable=False),
)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),  # sha256 hex of the token
    Column("name", String(100), nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_used_at", DateTime(timezone=True), nullable=True),
    Column("revoked_at", DateTime(timezone=True), nullable=True),
)

# Console sessions: one row per signed-in browser, keyed by the SHA-256 of the secret in its
# cookie. Deleting the row (sign-out, "revoke sessions", deactivation) ends the session.
console_sessions = Table(
    "console_sessions",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column(
        "user_id", Integer, ForeignKey("users.id", ondelete="CASCADE"), nullable=False, index=True
    ),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

# Failed sign-ins per account (normalised email, also for unknown ones) and per client
# address: the sign-in throttle's memory (services/sign_in_throttle.py), shared by every
# process. A row means nothing after ``expires_at`` and is deleted then.
sign_in_failures = Table(
    "sign_in_failures",
    metadata,
    Column("scope", String(16), primary_key=True),  # account | address
    Column("subject", String(320), primary_key=True),
    Column("failures", Integer, nullable=False),
    Column("window_start", DateTime(timezone=True), nullable=False),
    Column("locked_until", DateTime(timezone=True), nullable=True),
    Column("lockouts", Integer, nullable=False, default=0),
    Column("expires_at", DateTime(timezone=True), nullable=False, index=True),
)

# ---------------------------------------------------------------------------------------------
# Events and reporting (written by the aggregator, read by reports and feeds)
# ---------------------------------------------------------------------------------------------

events = Table(
    "events",
    metadata,
    Column("event_id", String(40), primary_key=True),
    Column("ts", DateTime(timezone=True), nullable=False),
    Column("imp_type", SmallInteger, nullable=False),  # 9 impression, 10 click
    Column("tracker_id", Integer, nullable=False),
    Column("advertiser_id", Integer, nullable=False),
    Column("line_item_id", Integer, nullable=False),
    Column("publisher_id", Integer, nullable=False),
    Column("placement_id", Integer, nullable=True),
    Column("payment_rule_id", Integer, nullable=True),
    Column("media_cost_micros", BigInteger, nullable=False),
    Column("booked_revenue_micros", BigInteger, nullable=False),
    Column("revenue_type", String(8), nullable=False),
    Column("ancost_used", Boolean, nullable=False),
    Column("cachebuster", String(255), nullable=True),
    Column("ip", String(64), nullable=True),
    Column("user_agent", Text, nullable=True),
    Column("referrer", Text, nullable=True),
    Column("invalid", Boolean, nullable=False),
    Column("invalid_reason", String(32), nullable=True),
    Column("redirect_url", Text, nullable=True),
)
Index("ix_events_type_ts", events.c.imp_type, events.c.ts)
Index("ix_events_tracker_ts", events.c.tracker_id, events.c.ts)

# The rollups' dimensions (after the time bucket) and sums. Nullable dimensions are stored as 0
# so the key can be a primary key.
ROLLUP_DIMENSIONS = (
    "imp_type",
    "tracker_id",
    "advertiser_id",
    "line_item_id",
    "publisher_id",
    "placement_id",
    "payment_rule_id",
)
ROLLUP_SUMS = Counters._fields


def _rollup_columns() -> list[Column[int]]:
    dimensions: list[Column[int]] = [
        Column(name, SmallInteger if name == "imp_type" else Integer, primary_key=True)
        for name in ROLLUP_DIMENSIONS
    ]
    sums: list[Column[int]] = [
        Column(name, BigInteger, nullable=False, default=0) for name in ROLLUP_SUMS
    ]
    return [*dimensions, *sums]


# Hourly rollups.
rollup_hourly = Table(
    "rollup_hourly",
    metadata,
    Column("hour", DateTime(timezone=True), primary_key=True),
    *_rollup_columns(),
)

# Invalid traffic by reason, hourly (reports break invalid counts down by reason).
rollup_invalid_hourly = Table(
    "rollup_invalid_hourly",
    metadata,
    Column("hour", DateTime(timezone=True), primary_key=True),
    Column("imp_type", SmallInteger, primary_key=True),
    Column("tracker_id", Integer, primary_key=True),
    Column("reason", String(32), primary_key=True),
    Column("count", BigInteger, nullable=False, default=0),
)

# Daily rollups: the same key and sums as ``rollup_hourly`` with ``day`` = the hour truncated to
# UTC midnight. The aggregator adds every hourly increment here too, in the same transaction.
# Reports read whole UTC days from here and only the few edge hours of local days from the
# hourly table (see reporting/plan.py), which keeps 90-day reports fast.
rollup_daily = Table(
    "rollup_daily",
    metadata,
    Column("day", DateTime(timezone=True), primary_key=True),
    *_rollup_columns(),
    # SQLite: rows clustered by the key, so a range of days is read sequentially.
    sqlite_with_rowid=False,
)
# Line items are what reports group by most: with the sums in this covering index, the database
# adds up a range of days per line item in index order, without sorting (half the time).
Index(
    "ix_rollup_daily_day_line_item",
    rollup_daily.c.day,
    rollup_daily.c.line_item_id,
    *(rollup_daily.c[name] for name in ROLLUP_SUMS),
)

# Viewability beacons counted so far: each (impression, state) adds to the rollups once, however
# often its beacon comes (rollup_sink.py inserts here in the same transaction as the rollups it
# adds to). ``impression_day`` (days since the epoch, UTC) is what the purge of rows older than
# ADTRACK_VIEW_DEDUP_DAYS reads.
view_beacons_seen = Table(
    "view_beacons_seen",
    metadata,
    Column("impression_event_id", String(40), primary_key=True),
    Column("view_state", String(16), primary_key=True),
    Column("impression_day", Integer, nullable=False, index=True),
)

# Audience rollups: who saw the ads. Two families, geography (country) and devices (device
# type, OS and browser), each hourly and daily (line items also monthly) like the rollups
# above and written by the aggregator in the same transaction, at two levels: the network (imp
# type and the audience columns: a report by country of everything reads a few hundred rows a
# day) and line items (imp type, advertiser, line item and the audience columns). A tracker,
# publisher or placement in the key would multiply the rows a 90-day report reads
# (docs/benchmarks.md). Unknown values are stored as "" (the key cannot hold null).
AUDIENCE_BASE = ("imp_type", "advertiser_id", "line_item_id")
GEO_DIMENSIONS = ("country",)
DEVICE_DIMENSIONS = ("device_type", "os", "browser")
# The width of each text column (the event record's widths, domain/events.py).
AUDIENCE_WIDTHS = {"country": 2, "device_type": 16, "os": 64, "browser": 64}


def _audience_table(name: str, time_column: str, key: tuple[str, ...]) -> Table:
    columns: list[Column[object]] = [Column(time_column, DateTime(timezone=True), primary_key=True)]
    for column in key:
        if column in AUDIENCE_WIDTHS:
            columns.append(Column(column, String(AUDIENCE_WIDTHS[column]), primary_key=True))
        else:
            kind = SmallInteger if column == "imp_type" else Integer
            columns.append(Column(column, kind, primary_key=True))
    columns += [Column(total, BigInteger, nullable=False, default=0) for total in ROLLUP_SUMS]
    # SQLite: rows clustered by the key, so a range of days is read sequentially.
    return Table(name, metadata, *columns, sqlite_with_rowid=False)


GEO_KEY = ("imp_type", *GEO_DIMENSIONS)
GEO_LINE_ITEM_KEY = (*AUDIENCE_BASE, *GEO_DIMENSIONS)
DEVICE_KEY = ("imp_type", *DEVICE_DIMENSIONS)
DEVICE_LINE_ITEM_KEY = (*AUDIENCE_BASE, *DEVICE_DIMENSIONS)
rollup_geo_hourly = _audience_table("rollup_geo_hourly", "hour", GEO_KEY)
rollup_geo_daily = _audience_table("rollup_geo_daily", "day", GEO_KEY)
rollup_geo_line_item_hourly = _audience_table(
    "rollup_geo_line_item_hourly", "hour", GEO_LINE_ITEM_KEY
)
rollup_geo_line_item_daily = _audience_table("rollup_geo_line_item_daily", "day", GEO_LINE_ITEM_KEY)
rollup_device_hourly = _audience_table("rollup_device_hourly", "hour", DEVICE_KEY)
rollup_device_daily = _audience_table("rollup_device_daily", "day", DEVICE_KEY)
rollup_device_line_item_hourly = _audience_table(
    "rollup_device_line_item_hourly", "hour", DEVICE_LINE_ITEM_KEY
)
rollup_device_line_item_daily = _audience_table(
    "rollup_device_line_item_daily", "day", DEVICE_LINE_ITEM_KEY
)
# The line-item levels also by UTC month (``month``: the first of the month, 00:00 UTC): a
# report over months of every line item reads one row per key and month, not thirty.
rollup_geo_line_item_monthly = _audience_table(
    "rollup_geo_line_item_monthly", "month", GEO_LINE_ITEM_KEY
)
rollup_device_line_item_monthly = _audience_table(
    "rollup_device_line_item_monthly", "month", DEVICE_LINE_ITEM_KEY
)
# A report of one line item over 90 days reads its rows only.
Index(
    "ix_rollup_geo_line_item_daily_line_item_day",
    rollup_geo_line_item_daily.c.line_item_id,
    rollup_geo_line_item_daily.c.day,
)
Index(
    "ix_rollup_device_line_item_daily_line_item_day",
    rollup_device_line_item_daily.c.line_item_id,
    rollup_device_line_item_daily.c.day,
)

# Conversion pixel rollups (migration 0010): the conversions the aggregator counts (the same
# ones, with the same counters, as the rollups above), by the pixel that recorded them and the
# ids of what they are attributed to, hourly and daily, written in the same transaction. Only
# the conversion counters: impressions and clicks have no pixel. No monthly level: conversions
# are few rows a day, and a report's months are read as their days (reporting/plan.py).
CONVERSION_PIXEL_DIMENSIONS = (
    "conversion_pixel_id",
    "tracker_id",
    "advertiser_id",
    "line_item_id",
    "publisher_id",
    "placement_id",
    "payment_rule_id",
)


def _conversion_pixel_table(name: str, time_column: str) -> Table:
    return Table(
        name,
        metadata,
        Column(time_column, DateTime(timezone=True), primary_key=True),
        *(Column(column, Integer, primary_key=True) for column in CONVERSION_PIXEL_DIMENSIONS),
        *(Column(total, BigInteger, nullable=False, default=0) for total in CONVERSION_PIXEL_SUMS),
        # SQLite: rows clustered by the key, so a range of days is read sequentially.
        sqlite_with_rowid=False,
    )


rollup_conversion_pixel_hourly = _conversion_pixel_table("rollup_conversion_pixel_hourly", "hour")
rollup_conversion_pixel_daily = _conversion_pixel_table("rollup_conversion_pixel_daily", "day")

# What the aggregator decided of each conversion the collector attributed (see
# aggregator/conversion_verdicts.py): counted (``reason`` NULL) or not (``duplicate_order``,
# ``too_soon``). Read back for the batch's conversions, so a batch read again gets the verdicts
# it got the first time; and for the counted conversions of a click
# (``min_minutes_per_conversion``).
conversion_verdicts = Table(
    "conversion_verdicts",
    metadata,
    Column("event_id", String(40), primary_key=True),
    Column("conversion_pixel_id", Integer, nullable=False),
    Column("source_event_id", String(40), nullable=True),
    Column("ts", BigInteger, nullable=False),  # epoch microseconds
    Column("reason", String(32), nullable=True),
)
Index(
    "ix_conversion_verdicts_pixel_click",
    conversion_verdicts.c.conversion_pixel_id,
    conversion_verdicts.c.source_event_id,
)
# The retention purge takes the oldest verdicts a batch at a time (migration 0012).
Index("ix_conversion_verdicts_ts", conversion_verdicts.c.ts)
# The order ids each pixel counted, and the conversion that counted it: the primary key is what
# stops two aggregators counting one order in batches committed at the same time.
conversion_orders = Table(
    "conversion_orders",
    metadata,
    Column("conversion_pixel_id", Integer, primary_key=True),
    Column("order_id", String(100), primary_key=True),
    Column("event_id", String(40), nullable=False),
)
# The retention purge deletes a purged verdict's order ids by its event id (migration 0012).
Index("ix_conversion_orders_event_id", conversion_orders.c.event_id)

# The raw-event archive's manifest: the columnar (Parquet) files that hold raw events, one row
# per file, registered in the same transaction as the rollups of the same events. A file that is
# not listed here (written by a batch that never committed) is invisible to readers and is
# deleted later. ``hour`` is the UTC hour every event in the file falls in; ``path`` is relative
# to the archive's root.
raw_event_files = Table(
    "raw_event_files",
    metadata,
    Column("path", String(512), primary_key=True),
    Column("hour", DateTime(timezone=True), nullable=False, index=True),
    Column("rows", Integer, nullable=False),
    Column("clicks", Integer, nullable=False),
    Column("bytes", BigInteger, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# How far the reporting tables hold each event-log source (a local segment, a JetStream
# partition): the position after the last committed batch, moved by compare-and-set in the same
# transaction as the rollups (see rollup_sink.py). Shared by every aggregator writing to
# this database, which is what keeps two of them from counting an event twice.
eventlog_checkpoints = Table(
    "eventlog_checkpoints",
    metadata,
    Column("source", String(255), primary_key=True),
    Column("position", BigInteger, nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Aggregators sharing a partitioned event log (JetStream): each member's last heartbeat. A member
# seen within the TTL is alive and gets its share of the partitions (services/aggregator_members).
# ``seen_at`` is in seconds since the epoch by the DATABASE's clock, not the aggregators', so
# hosts whose clocks disagree still agree on who is alive.
aggregator_members = Table(
    "aggregator_members",
    metadata,
    Column("member_group", String(255), primary_key=True),
    Column("member", String(255), primary_key=True),
    Column("seen_at", Double, nullable=False),
)

# Tag exports delivered by email, with their status.
exports = Table(
    "exports",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("created_by", Integer, ForeignKey("users.id"), nullable=True),
    Column("status", String(16), nullable=False),  # queued | sending | sent | failed
    Column("recipients", Text, nullable=False),  # JSON list
    Column("request", Text, nullable=False),  # JSON of the export request
    Column("attempts", Integer, nullable=False, default=0),
    Column("error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
)

# Saved report definitions, optionally delivered by email on a schedule.
saved_reports = Table(
    "saved_reports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(255), nullable=False),
    Column("owner_id", Integer, ForeignKey("users.id", ondelete="SET NULL"), nullable=True),
    Column("definition", Text, nullable=False),  # JSON of the report parameters
    Column("schedule", String(8), nullable=False, default="none"),  # none | daily | weekly
    Column("weekday", SmallInteger, nullable=True),  # 0 Monday .. 6 Sunday (weekly only)
    Column("hour", SmallInteger, nullable=False, default=6),  # local hour of delivery
    Column("timezone", String(64), nullable=False, default="UTC"),
    Column("recipients", Text, nullable=False, default="[]"),  # JSON list of addresses
    Column("attachment_format", String(8), nullable=False, default="csv"),  # csv | xlsx
    Column("last_sent_at", DateTime(timezone=True), nullable=True),
    Column("last_status", String(16), nullable=True),  # sent | failed
    Column("last_error", Text, nullable=True),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("last_modified", DateTime(timezone=True), nullable=False),
)

# Report history imported from the platform adtrack replaces (its network analytics report):
# one row per import, so an import can be listed and undone and the same file (same SHA-256) is
# never counted twice. The imported counts themselves go into ``rollup_hourly`` and
# ``rollup_daily`` with ``tracker_id`` 0 ("imported history, no tracker"; live events always
# carry their tracker), where every report, the summary and the charts read them.
report_history_imports = Table(
    "report_history_imports",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("file_name", String(255), nullable=False),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("timezone", String(64), nullable=False),
    Column("granularity", String(8), nullable=False),  # "hour" | "day"
    Column("lines", Integer, nullable=False),  # the file's rows that were imported
    Column("first_hour", DateTime(timezone=True), nullable=True),
    Column("last_hour", DateTime(timezone=True), nullable=True),
    *(Column(name, BigInteger, nullable=False, default=0) for name in ROLLUP_SUMS),
    Column("imported_by", String(255), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
)

# What one import added to the rollups, by rollup key (tracker_id is always 0 there): undoing
# the import subtracts exactly these rows. ``hour`` is where the counts were put; the counts
# cover ``[hour, covers_until)`` (a whole local day for a daily report), which is how a later
# import of the same days is refused instead of being counted twice.
report_history_rows = Table(
    "report_history_rows",
    metadata,
    Column(
        "import_id",
        Integer,
        ForeignKey("report_history_imports.id", ondelete="CASCADE"),
        primary_key=True,
    ),
    Column("hour", DateTime(timezone=True), primary_key=True),
    *(
        Column(name, SmallInteger if name == "imp_type" else Integer, primary_key=True)
        for name in ROLLUP_DIMENSIONS
        if name != "tracker_id"
    ),
    Column("covers_until", DateTime(timezone=True), nullable=False),
    *(Column(name, BigInteger, nullable=False, default=0) for name in ROLLUP_SUMS),
)
Index(
    "ix_report_history_rows_line_item_hour",
    report_history_rows.c.line_item_id,
    report_history_rows.c.hour,
)
