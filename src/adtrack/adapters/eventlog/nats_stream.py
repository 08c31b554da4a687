"""The JetStream event log's stream: its subjects and partitions, its set-up, and clear errors.

Chosen with ``ADTRACK_EVENT_LOG=nats://host:4222`` (several servers: ``nats://a:4222,nats://b:4222``);
see ``docs/deploy.md``. Collectors publish with ``nats_writer.py``, aggregators read with
``nats_reader.py``, both over a ``nats_connection.py`` connection that sets the stream up here.

Partitions: the stream captures ``<subject>.0`` .. ``<subject>.<P-1>`` (P =
``ADTRACK_NATS_PARTITIONS``, default 8) and the bare ``<subject>`` that versions before
partitions published to. Partitions let several aggregators share the work (each reads its own
partitions, see ``nats_reader.py``); explicit numbered subjects, not ``<subject>.*``, so that the
stream of another install whose subject starts with ours (``adtrack.events.<stream>``, the
derived default) never overlaps.

The stream is created if it is missing, by whichever part connects first: the subjects above
(``ADTRACK_NATS_SUBJECT`` by default derived from the stream name:
``config.default_nats_subject``), file storage, ``ADTRACK_NATS_REPLICAS`` replicas, limits
retention, a 2-minute duplicate window and a maximum age of 7 days (never longer than the
raw-event retention). Nothing acks messages away: aggregators keep their positions in SQL, so a
message stays until it is older than the maximum age, and aggregators must keep up within it
(an aggregator stopped for longer loses the events that expired unread). An existing stream is
used after checking that it captures the subject and keeps messages by limits; partition
subjects it lacks are added to it (``update_stream``). A set-up that cannot work (a subject taken
by another stream, a stream without the subject, a work-queue or interest stream, JetStream not
enabled) is reported once in the log and as the writer's ``readiness()`` reason, naming the
stream, the subject and the setting to change (:class:`StreamSetupError`).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import nats.errors
import nats.js.errors
from nats.js import api
from nats.js.client import JetStreamContext

from adtrack.config import Settings, default_nats_subject
from adtrack.services.ports import EventLogUnavailable

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "MIN_MESSAGE_BYTES",
    "StreamSetupError",
    "StreamSpec",
    "ensure_stream",
    "partition_number",
    "partition_subject",
    "subject_matches",
]

log = logging.getLogger(__name__)

DUPLICATE_WINDOW_SECONDS = 120.0
MAX_AGE_SECONDS = 7 * 86400.0
DEFAULT_PARTITIONS = 8  # ADTRACK_NATS_PARTITIONS
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20  # ADTRACK_NATS_MAX_MESSAGE_BYTES: one published batch at most
MIN_MESSAGE_BYTES = 4096  # a smaller bound (or server max_payload) would split every batch


class StreamSetupError(EventLogUnavailable):
    """The stream cannot be used as configured; the message says which setting to change."""


@dataclass(frozen=True)
class StreamSpec:
    """Where events go: the servers, the stream and the subject, and how to create the stream."""

    servers: tuple[str, ...]
    stream: str
    subject: str
    replicas: int = 1
    max_age_seconds: float = MAX_AGE_SECONDS
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES
    partitions: int = DEFAULT_PARTITIONS

    @classmethod
    def from_settings(cls, settings: Settings) -> StreamSpec:
        servers = tuple(s.strip() for s in settings.event_log_url.split(",") if s.strip())
        max_age = MAX_AGE_SECONDS
        if settings.raw_event_retention_days >= 1:
            max_age = min(max_age, settings.raw_event_retention_days * 86400.0)
        return cls(
            servers=servers,
            stream=settings.nats_stream,
            subject=settings.nats_subject,
            replicas=max(1, settings.nats_replicas),
            max_age_seconds=max_age,
            max_message_bytes=max(MIN_MESSAGE_BYTES, settings.nats_max_message_bytes),
            partitions=max(1, settings.nats_partitions),
        )

    @property
    def where(self) -> str:
        return f"stream {self.stream} at {','.join(self.servers)}"

    @property
    def partition_subjects(self) -> list[str]:
        """The subjects collectors publish to: ``<subject>.0`` .. ``<subject>.<partitions-1>``."""
        return [partition_subject(self.subject, n) for n in range(self.partitions)]

    @property
    def subjects(self) -> list[str]:
        """The subjects of a stream adtrack creates: the bare subject (what versions before
        partitions published to, still read) and the partitions."""
        return [self.subject, *self.partition_subjects]


def partition_subject(subject: str, n: int) -> str:
    return f"{subject}.{n}"


def partition_number(subject: str, candidate: str) -> int | None:
    """``n`` if ``candidate`` is partition ``n`` of ``subject`` (``<subject>.<n>``), else None."""
    prefix = subject + "."
    if candidate.startswith(prefix):
        tail = candidate[len(prefix) :]
        if tail.isdigit() and (tail == "0" or not tail.startswith("0")):
            return int(tail)
    return None


def subject_matches(pattern: str, subject: str) -> bool:
    """NATS subject matching: ``*`` is one token, a trailing ``>`` one or more."""
    want = pattern.split(".")
    have = subject.split(".")
    for i, token in enumerate(want):
        if token == ">":
            return len(have) > i
        if i >= len(have) or (token != "*" and token != have[i]):
            return False
    return len(want) == len(have)


async def ensure_stream(js: JetStreamContext, spec: StreamSpec) -> list[str]:
    """Create the stream if it is missing; check that an existing one captures the subject and
    add the partition subjects it lacks. Returns the stream's subjects.

    Raises :class:`StreamSetupError` with what to change when the set-up cannot work (a subject
    belongs to another stream, the stream does not capture the subject or does not keep its
    messages by limits, JetStream is not enabled).
    """
    try:
        info = await js.stream_info(spec.stream)
    except nats.js.errors.NotFoundError:
        config = api.StreamConfig(
            name=spec.stream,
            subjects=spec.subjects,
            storage=api.StorageType.FILE,
            num_replicas=spec.replicas,
            # Limits, not work-queue or interest: aggregators read by position and keep their
            # positions in SQL, so nothing acks messages away; they leave by age (and bytes).
            retention=api.RetentionPolicy.LIMITS,
            discard=api.DiscardPolicy.OLD,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            max_age=spec.max_age_seconds,
        )
        try:
            await js.add_stream(config)
            log.info("created JetStream %s (subjects %s)", spec.where, spec.subjects)
            return list(spec.subjects)
        except nats.js.errors.BadRequestError as refused:
            try:
                info = await js.stream_info(spec.stream)  # created by another process meanwhile
            except nats.js.errors.NotFoundError:
                raise await _refused(js, spec, spec.subjects, refused, "create") from None
    except nats.js.errors.ServiceUnavailableError as exc:
        if exc.err_code or exc.description:  # JetStream answered: e.g. no cluster leader yet
            raise
        # nobody answered the JetStream API (the client maps "no responders" to this error)
        raise StreamSetupError(
            f"JetStream is not enabled on NATS ({spec.where}): start nats-server with -js "
            "(or a jetstream block in its configuration), and enable it for the account"
        ) from None
    subjects = list(info.config.subjects or [])
    if not any(subject_matches(pattern, spec.subject) for pattern in subjects):
        raise StreamSetupError(
            f"JetStream stream {spec.stream} does not capture subject {spec.subject!r} "
            f"(its subjects: {subjects}); set ADTRACK_NATS_SUBJECT to one of them, or "
            "ADTRACK_NATS_STREAM to another stream"
        )
    retention = info.config.retention
    if retention is not None and retention != api.RetentionPolicy.LIMITS:
        # A work-queue stream deletes a message once one consumer has it, an interest stream
        # once every consumer acked it: aggregators that read by position (and re-read after a
        # failed commit) would find events gone. JetStream cannot change a stream's retention.
        raise StreamSetupError(
            f"JetStream stream {spec.stream} keeps messages by {retention} retention; adtrack "
            "reads by position and needs limits retention (messages kept until their maximum "
            "age): create the stream again with limits retention (after the aggregators have "
            "read it), or set ADTRACK_NATS_STREAM to another stream"
        )
    missing = [
        subject
        for subject in spec.partition_subjects
        if not any(subject_matches(pattern, subject) for pattern in subjects)
    ]
    if missing:
        config = info.config
        config.subjects = subjects + missing
        try:
            await js.update_stream(config)
        except nats.js.errors.BadRequestError as refused:
            raise await _refused(js, spec, missing, refused, "add subjects to") from None
        log.info("added the partition subjects %s to JetStream %s", missing, spec.where)
        subjects += missing
    return subjects


async def _refused(
    js: JetStreamContext,
    spec: StreamSpec,
    subjects: Sequence[str],
    refused: nats.js.errors.BadRequestError,
    doing: str,
) -> StreamSetupError:
    """Why JetStream refused to create (or extend) the stream, with the setting to change."""
    derived = default_nats_subject(spec.stream)
    suggestion = f" (e.g. {derived!r}, the default)" if derived != spec.subject else ""
    for subject in subjects:
        owner = None
        with contextlib.suppress(nats.errors.Error, TimeoutError):
            owner = await js.find_stream_name_by_subject(subject)
        if owner is not None and owner != spec.stream:
            return StreamSetupError(
                f"cannot {doing} JetStream stream {spec.stream}: its subject {subject!r} is "
                f"already captured by stream {owner} (another adtrack install, or another "
                f"application). Set ADTRACK_NATS_SUBJECT to a subject of its own for stream "
                f"{spec.stream}{suggestion}, or ADTRACK_NATS_STREAM={owner} to share that stream"
            )
    return StreamSetupError(
        f"JetStream refused to {doing} stream {spec.stream} with subjects {list(subjects)} "
        f"({spec.where}): {refused.description or refused!r}; check ADTRACK_NATS_STREAM, "
        "ADTRACK_NATS_SUBJECT, ADTRACK_NATS_PARTITIONS and ADTRACK_NATS_REPLICAS"
    )
