"""Deployment settings, read from ``ADTRACK_*`` environment variables."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

from adtrack.domain.conversion_retention import (
    DEFAULT_CONVERSION_DEDUP_RETENTION_DAYS,
    MIN_CONVERSION_DEDUP_RETENTION_DAYS,
)

DEFAULT_NATS_STREAM = "ADTRACK_EVENTS"
DEFAULT_NATS_SUBJECT = "adtrack.events"  # the default stream's subject (existing installs use it)


def default_nats_subject(stream: str) -> str:
    """The subject of stream ``stream`` when ``ADTRACK_NATS_SUBJECT`` is not set:
    ``adtrack.events`` for the default stream (existing installs keep theirs), else
    ``adtrack.events.<stream>``, so two installs with different streams on one NATS do not
    claim the same subject (JetStream refuses overlapping streams)."""
    if stream == DEFAULT_NATS_STREAM:
        return DEFAULT_NATS_SUBJECT
    return f"{DEFAULT_NATS_SUBJECT}.{stream}"


COMPAT_APIS = ("xandr",)


class SettingsError(ValueError):
    """A setting adtrack cannot run with; the message names its variable and what it takes."""


def _int(env: dict[str, str], name: str, default: str) -> int:
    value = env.get(name, default)
    try:
        return int(value)
    except ValueError:
        raise SettingsError(f"{name} must be a whole number, not {value!r}") from None


def _float(env: dict[str, str], name: str, default: str) -> float:
    value = env.get(name, default)
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number):  # (float() also reads "nan" and "inf")
        raise SettingsError(f"{name} must be a number, not {value!r}")
    return number


def _compat_api(value: str) -> str:
    """ADTRACK_COMPAT_API: empty or "off" (no compatible API), or one of ``COMPAT_APIS``."""
    cleaned = value.strip().lower()
    if cleaned in ("", "off", "0", "false", "no"):
        return ""
    if cleaned not in COMPAT_APIS:
        raise SettingsError(f"ADTRACK_COMPAT_API must be empty or one of {', '.join(COMPAT_APIS)}")
    return cleaned


@dataclass(frozen=True)
class Settings:
    data_dir: Path
    database_url: str
    event_log_url: str  # "local" (embedded, under data_dir) or "nats://host:port"
    nats_stream: str
    fsync: str  # "always" | "interval" | "never" (see docs/durability.md)
    fsync_interval_ms: int
    public_url: str  # the host exported tags point at
    smtp_url: str | None
    smtp_from: str
    timezone: str
    raw_event_retention_days: int
    honour_privacy_signals: bool
    session_secret: str | None
    # Console session cookies carry Secure unless turned off (plain-http localhost).
    cookie_secure: bool = True
    # NATS JetStream event log (ADTRACK_EVENT_LOG=nats://...): the subject collectors publish
    # to (the stream is created with it if missing; "" derives it from the stream name, see
    # default_nats_subject), the stream's replicas (cluster), and the number of partitions
    # (subjects "<subject>.<n>") that several aggregators share out between them.
    nats_subject: str = ""
    nats_replicas: int = 1
    nats_partitions: int = 8
    # Aggregators sharing a JetStream stream: each records that it is alive every
    # heartbeat_seconds; one not seen for member_ttl_seconds loses its partitions to the others.
    aggregator_heartbeat_seconds: float = 2.0
    aggregator_member_ttl_seconds: float = 10.0
    # Limits of every HTTP listener (tracking port and main port); see docs/limits.md.
    max_header_bytes: int = 16 * 1024  # request line + headers; over: 431 (414 for the URI)
    header_timeout_seconds: float = 10.0  # to receive a whole request head
    keepalive_timeout_seconds: float = 75.0  # an idle keep-alive connection is closed after
    max_connections: int = 0  # open connections per process; 0: derived from the fd limit
    # Where /metrics is served: "tracking" (collector metrics on the tracking port, the API
    # process's own on the main port), "main" (all on the main port) or "off".
    metrics: str = "tracking"
    # Which redir targets are followed: "trackers" (default), "allow-list" or "open".
    redirect_policy: str = "trackers"
    # Invalid traffic (docs/invalid-traffic.md): verdicts cached per user agent and per client
    # address (entries per collector process), and whether known data-centre addresses count.
    ivt_user_agent_cache: int = 50_000
    ivt_address_cache: int = 100_000
    ivt_datacentre: bool = True
    # Sign-in protection (docs/limits.md, "Sign-in"): failed sign-ins per account and per
    # client address within a window lock that subject (429 + Retry-After), doubling up to a
    # maximum; 0 turns a scope off. Password hashing runs on a few threads with a bounded queue.
    login_max_failures: int = 5
    login_max_failures_per_address: int = 20
    login_window_seconds: float = 900.0
    login_lockout_seconds: float = 900.0
    login_max_lockout_seconds: float = 86400.0
    password_hash_threads: int = 2
    password_hash_queue: int = 16
    # Tracking port (collector): answers buffered per connection for a client that does not
    # read them before the collector stops reading its requests (docs/limits.md).
    write_buffer_bytes: int = 64 * 1024
    # Main port: a connection whose client reads nothing of its answers for this long is
    # closed (see docs/limits.md, "Main port").
    send_timeout_seconds: float = 60.0
    # NATS JetStream event log: the largest message a collector publishes (one append's events,
    # split over several messages above it; never above the server's max_payload).
    nats_max_message_bytes: int = 1024 * 1024
    # How long a collector waits for JetStream's acks of an append before answering 503.
    nats_ack_timeout_seconds: float = 3.0
    # Catalogue change log: the last this many catalogue versions are kept for collectors to
    # apply incrementally; one further behind reloads every tracker (docs/limits.md).
    catalogue_changes_kept: int = 100_000
    # The raw-event archive's root (hourly Parquet files; docs/durability.md, "Raw events"):
    # "" means <data dir>/raw-events. Aggregators on several hosts must share it.
    raw_events_path: str = ""
    # What one feed's read of the archive may use: DuckDB's memory (a larger sort spills to
    # disk) and threads (docs/limits.md, "Feeds").
    raw_event_read_memory_mb: int = 512
    raw_event_read_threads: int = 2
    # The aggregator (docs/limits.md, "Aggregator"): how often it looks for new events when it
    # has caught up, and how much lower its CPU priority is than the collectors' in the
    # process of its own that `adtrack serve` runs it in (a nice increment, 0-19).
    aggregator_poll_seconds: float = 0.2
    aggregator_batch_events: int = 20_000
    raw_event_maintenance_seconds: float = 300.0
    aggregator_nice: int = 5
    # Imports from the platform adtrack replaces (docs/limits.md, "Imports"): the largest
    # report-history CSV and its most rows; the largest tag file and its most trackers.
    report_history_max_bytes: int = 100 * 1024 * 1024
    report_history_max_rows: int = 1_000_000
    tag_file_max_bytes: int = 20 * 1024 * 1024
    tag_file_max_trackers: int = 100_000
    # The most items one batch request of the API may hold (docs/limits.md, "Batches").
    batch_max_items: int = 10_000
    # A catalogue dump imported from the original platform (docs/limits.md, "Imports"): its
    # bytes in all (uploaded, or a zip's members unpacked) and its objects.
    import_max_bytes: int = 512 * 1024 * 1024
    import_max_objects: int = 250_000
    # The original platform's API under /xandr/ (docs/xandr-api.md): "" (off) or "xandr";
    # the member_id its JSON shows, how long one of its tokens lives after the last call, and
    # its page size (default and maximum of num_elements, 100 as on the platform).
    compat_api: str = ""
    xandr_member_id: int = 1
    xandr_token_idle_seconds: float = 7200.0
    xandr_max_elements: int = 100
    # Collectors (docs/tracking.md, "What is stored"): a newer MaxMind DB (.mmdb) file to take
    # countries from instead of the bundled registry data; whether the client address is the
    # last X-Forwarded-For entry (behind a trusted load balancer only; the same as the
    # collector's --trust-forwarded-for); and the entries of the per-address and per-user-agent
    # caches of what an event records about the visitor (docs/limits.md, "Tracking port").
    geoip_db: Path | None = None
    trust_forwarded_for: bool = False
    address_cache_entries: int = 32_768
    user_agent_cache_entries: int = 50_000
    # The secret click tokens (docs/conversions.md) are signed with; None: the one kept in
    # <data dir>/token_secret (created on first use). Every process of a deployment needs the
    # same one.
    token_secret: str | None = None
    # Viewability (docs/tracking.md, "Viewability"): a beacon is taken until the end of the UTC
    # day this many days after its impression's day; the aggregator remembers which
    # (impression, state) it counted for view_dedup_days days (a backlog that old still counts
    # each once; beacons of older impressions are not counted).
    view_beacon_days: int = 1
    view_dedup_days: int = 8
    # The aggregator's conversion verdicts and the order ids they counted are kept this many
    # days after their conversion (docs/conversions.md, "Retention"), and purged a batch of
    # conversion_purge_batch_rows verdicts per transaction.
    conversion_dedup_retention_days: int = DEFAULT_CONVERSION_DEDUP_RETENTION_DAYS
    conversion_purge_batch_rows: int = 5_000

    def __post_init__(self) -> None:
        # the derived subject is filled in once: dataclasses.replace() with another stream name
        # keeps it unless nats_subject="" is passed too
        if not self.nats_subject:
            object.__setattr__(self, "nats_subject", default_nats_subject(self.nats_stream))
        if self.view_beacon_days < 0:
            raise SettingsError("ADTRACK_VIEW_BEACON_DAYS must be 0 or more")
        if self.view_dedup_days <= self.view_beacon_days:
            raise SettingsError(
                "ADTRACK_VIEW_DEDUP_DAYS must be more than ADTRACK_VIEW_BEACON_DAYS "
                f"({self.view_beacon_days}): a beacon must not outlive the memory of its "
                "impression's counted states"
            )

        if self.conversion_dedup_retention_days < MIN_CONVERSION_DEDUP_RETENTION_DAYS:
            raise SettingsError(
                "ADTRACK_CONVERSION_DEDUP_RETENTION_DAYS must be at least "
                f"{MIN_CONVERSION_DEDUP_RETENTION_DAYS} (the longest post-click window, 90 days, "
                "and a day): a verdict must outlive every conversion it can decide"
            )
        if not self.nats_ack_timeout_seconds > 0:
            raise SettingsError("ADTRACK_NATS_ACK_TIMEOUT_SECONDS must be more than 0")
        if self.conversion_purge_batch_rows < 1:
            raise SettingsError("ADTRACK_CONVERSION_PURGE_BATCH_ROWS must be at least 1")

    @property
    def raw_events_dir(self) -> Path:
        """Where the raw-event archive's files are (``ADTRACK_RAW_EVENTS_DIR``)."""
        if self.raw_events_path:
            return Path(self.raw_events_path)
        return self.data_dir / "raw-events"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> Settings:
        env = dict(os.environ if environ is None else environ)
        data_dir = Path(env.get("ADTRACK_DATA_DIR", "./data")).resolve()
        database_url = env.get("ADTRACK_DATABASE_URL") or f"sqlite:///{data_dir / 'adtrack.db'}"
        return cls(
            data_dir=data_dir,
            database_url=database_url,
            event_log_url=env.get("ADTRACK_EVENT_LOG", "local"),
            nats_stream=env.get("ADTRACK_NATS_STREAM", DEFAULT_NATS_STREAM),
            fsync=env.get("ADTRACK_FSYNC", "interval"),
            fsync_interval_ms=_int(env, "ADTRACK_FSYNC_INTERVAL_MS", "200"),
            public_url=env.get("ADTRACK_PUBLIC_URL", "http://localhost:8001").rstrip("/"),
            smtp_url=env.get("ADTRACK_SMTP_URL") or None,
            smtp_from=env.get("ADTRACK_SMTP_FROM", "adtrack@localhost"),
            timezone=env.get("ADTRACK_TIMEZONE", "UTC"),
            raw_event_retention_days=_int(env, "ADTRACK_RAW_EVENT_RETENTION_DAYS", "30"),
            honour_privacy_signals=env.get("ADTRACK_HONOUR_PRIVACY_SIGNALS", "1").lower()
            not in ("0", "false", "no", "off"),
            session_secret=env.get("ADTRACK_SESSION_SECRET") or None,
            cookie_secure=env.get("ADTRACK_COOKIE_SECURE", "1").lower()
            not in ("0", "false", "no", "off"),
            nats_subject=env.get("ADTRACK_NATS_SUBJECT", ""),
            nats_replicas=_int(env, "ADTRACK_NATS_REPLICAS", "1"),
            nats_partitions=_int(env, "ADTRACK_NATS_PARTITIONS", "8"),
            aggregator_heartbeat_seconds=_float(env, "ADTRACK_AGGREGATOR_HEARTBEAT_SECONDS", "2"),
            aggregator_member_ttl_seconds=_float(
                env, "ADTRACK_AGGREGATOR_MEMBER_TTL_SECONDS", "10"
            ),
            max_header_bytes=_int(env, "ADTRACK_MAX_HEADER_BYTES", str(16 * 1024)),
            header_timeout_seconds=_float(env, "ADTRACK_HEADER_TIMEOUT_SECONDS", "10"),
            keepalive_timeout_seconds=_float(env, "ADTRACK_KEEPALIVE_TIMEOUT_SECONDS", "75"),
            max_connections=_int(env, "ADTRACK_MAX_CONNECTIONS", "0"),
            metrics=env.get("ADTRACK_METRICS", "tracking"),
            redirect_policy=env.get("ADTRACK_REDIRECT_POLICY", "trackers"),
            ivt_user_agent_cache=_int(env, "ADTRACK_IVT_USER_AGENT_CACHE", "50000"),
            ivt_address_cache=_int(env, "ADTRACK_IVT_ADDRESS_CACHE", "100000"),
            ivt_datacentre=env.get("ADTRACK_IVT_DATACENTRE", "1").lower()
            not in ("0", "false", "no", "off"),
            login_max_failures=_int(env, "ADTRACK_LOGIN_MAX_FAILURES", "5"),
            login_max_failures_per_address=_int(
                env, "ADTRACK_LOGIN_MAX_FAILURES_PER_ADDRESS", "20"
            ),
            login_window_seconds=_float(env, "ADTRACK_LOGIN_WINDOW_SECONDS", "900"),
            login_lockout_seconds=_float(env, "ADTRACK_LOGIN_LOCKOUT_SECONDS", "900"),
            login_max_lockout_seconds=_float(env, "ADTRACK_LOGIN_MAX_LOCKOUT_SECONDS", "86400"),
            password_hash_threads=_int(env, "ADTRACK_PASSWORD_HASH_THREADS", "2"),
            password_hash_queue=_int(env, "ADTRACK_PASSWORD_HASH_QUEUE", "16"),
            write_buffer_bytes=_int(env, "ADTRACK_WRITE_BUFFER_BYTES", str(64 * 1024)),
            send_timeout_seconds=_float(env, "ADTRACK_SEND_TIMEOUT_SECONDS", "60"),
            nats_max_message_bytes=_int(env, "ADTRACK_NATS_MAX_MESSAGE_BYTES", str(1024 * 1024)),
            nats_ack_timeout_seconds=_float(env, "ADTRACK_NATS_ACK_TIMEOUT_SECONDS", "3"),
            catalogue_changes_kept=_int(env, "ADTRACK_CATALOGUE_CHANGES_KEPT", "100000"),
            raw_event_read_memory_mb=_int(env, "ADTRACK_RAW_EVENT_READ_MEMORY_MB", "512"),
            raw_event_read_threads=_int(env, "ADTRACK_RAW_EVENT_READ_THREADS", "2"),
            raw_events_path=str(Path(env["ADTRACK_RAW_EVENTS_DIR"]).resolve())
            if env.get("ADTRACK_RAW_EVENTS_DIR")
            else "",
            aggregator_poll_seconds=_float(env, "ADTRACK_AGGREGATOR_POLL_SECONDS", "0.2"),
            aggregator_batch_events=_int(env, "ADTRACK_AGGREGATOR_BATCH_EVENTS", "20000"),
            raw_event_maintenance_seconds=_float(
                env, "ADTRACK_RAW_EVENT_MAINTENANCE_SECONDS", "300"
            ),
            aggregator_nice=_int(env, "ADTRACK_AGGREGATOR_NICE", "5"),
            report_history_max_bytes=_int(
                env, "ADTRACK_REPORT_HISTORY_MAX_BYTES", str(100 * 1024 * 1024)
            ),
            report_history_max_rows=_int(env, "ADTRACK_REPORT_HISTORY_MAX_ROWS", "1000000"),
            tag_file_max_bytes=_int(env, "ADTRACK_TAG_FILE_MAX_BYTES", str(20 * 1024 * 1024)),
            tag_file_max_trackers=_int(env, "ADTRACK_TAG_FILE_MAX_TRACKERS", "100000"),
            batch_max_items=_int(env, "ADTRACK_BATCH_MAX_ITEMS", "10000"),
            import_max_bytes=_int(env, "ADTRACK_IMPORT_MAX_BYTES", str(512 * 1024 * 1024)),
            import_max_objects=_int(env, "ADTRACK_IMPORT_MAX_OBJECTS", "250000"),
            compat_api=_compat_api(env.get("ADTRACK_COMPAT_API", "")),
            xandr_member_id=_int(env, "ADTRACK_XANDR_MEMBER_ID", "1"),
            xandr_token_idle_seconds=_float(env, "ADTRACK_XANDR_TOKEN_IDLE_SECONDS", "7200"),
            xandr_max_elements=_int(env, "ADTRACK_XANDR_MAX_ELEMENTS", "100"),
            geoip_db=Path(env["ADTRACK_GEOIP_DB"]).expanduser().resolve()
            if env.get("ADTRACK_GEOIP_DB")
            else None,
            trust_forwarded_for=env.get("ADTRACK_TRUST_FORWARDED_FOR", "0").strip().lower()
            in ("1", "true", "yes", "on"),
            address_cache_entries=_int(env, "ADTRACK_ADDRESS_CACHE_ENTRIES", "32768"),
            user_agent_cache_entries=_int(env, "ADTRACK_USER_AGENT_CACHE_ENTRIES", "50000"),
            token_secret=env.get("ADTRACK_TOKEN_SECRET") or None,
            view_beacon_days=_int(env, "ADTRACK_VIEW_BEACON_DAYS", "1"),
            view_dedup_days=_int(env, "ADTRACK_VIEW_DEDUP_DAYS", "8"),
            conversion_dedup_retention_days=_int(
                env,
                "ADTRACK_CONVERSION_DEDUP_RETENTION_DAYS",
                str(DEFAULT_CONVERSION_DEDUP_RETENTION_DAYS),
            ),
            conversion_purge_batch_rows=_int(env, "ADTRACK_CONVERSION_PURGE_BATCH_ROWS", "5000"),
        )

    @property
    def event_log_dir(self) -> Path:
        return self.data_dir / "eventlog"
