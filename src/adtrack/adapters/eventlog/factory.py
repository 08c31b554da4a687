"""Choose the event log from ``Settings.event_log_url`` (``ADTRACK_EVENT_LOG``).

- ``local`` (the default): segment files under ``Settings.event_log_dir``, see
  ``local_writer.py`` and ``local_reader.py``.
- ``nats://host:port``: NATS JetStream, see ``nats_stream.py``, ``nats_writer.py`` and
  ``nats_reader.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from adtrack.adapters.eventlog.local_reader import LocalEventLogReader
from adtrack.adapters.eventlog.local_writer import LocalEventLogWriter
from adtrack.config import Settings
from adtrack.services.ports import AggregatorMembership, EventLogReader, EventLogWriter

__all__ = ["is_local", "open_reader", "open_writer"]


def is_local(settings: Settings) -> bool:
    return settings.event_log_url.strip().lower() in ("", "local")


def _is_nats(settings: Settings) -> bool:
    return settings.event_log_url.strip().lower().startswith(("nats://", "tls://"))


def _unknown(settings: Settings) -> ValueError:
    return ValueError(
        f"ADTRACK_EVENT_LOG={settings.event_log_url!r}: use 'local' or 'nats://host:port'"
    )


def open_writer(settings: Settings, *, writer_id: str | None = None) -> EventLogWriter:
    """A writer for this process (open one per process, after any fork).

    ``writer_id`` names this writer's segment files in the local log (default: random per
    process); an explicit id must not be used by two live processes at once.
    """
    if is_local(settings):
        return LocalEventLogWriter(
            settings.event_log_dir,
            writer_id=writer_id,
            fsync=settings.fsync,
            fsync_interval_ms=settings.fsync_interval_ms,
        )
    if _is_nats(settings):
        # JetStream (nats_writer.py): append() publishes the records to the stream
        # settings.nats_stream and returns once every publish is acknowledged (the stream's file
        # storage makes them durable); any failure -> EventLogUnavailable. Connects in the
        # background.
        from adtrack.adapters.eventlog.nats_writer import open_nats_writer

        return open_nats_writer(settings, writer_id=writer_id)
    raise _unknown(settings)


def open_reader(
    settings: Settings,
    *,
    consumer: str,
    membership: AggregatorMembership | None = None,
    committed_positions: Callable[[], Mapping[str, int]] | None = None,
) -> EventLogReader:
    """A reader for the consumer ``consumer`` (e.g. ``"aggregator"``).

    JetStream only: ``membership`` shares the stream's partitions with the other aggregators
    on the same database (without it, this reader reads them all), and
    ``committed_positions`` loads the positions committed in SQL (source -> position) for a
    partition this reader gains.
    """
    if is_local(settings):
        return LocalEventLogReader(settings.event_log_dir, consumer=consumer)
    if _is_nats(settings):
        # JetStream (nats_reader.py): the partitions by stream sequence from the restored
        # positions; read() hands out batches with starts/position per partition, which the
        # aggregator commits by compare-and-set. ack() is a no-op.
        from adtrack.adapters.eventlog.nats_reader import open_nats_reader

        return open_nats_reader(
            settings,
            consumer=consumer,
            membership=membership,
            committed_positions=committed_positions,
        )
    raise _unknown(settings)
