"""The NATS JetStream event log: many collectors on many hosts, one durable stream.

Chosen with ``ADTRACK_EVENT_LOG=nats://host:4222`` (several servers: ``nats://a:4222,nats://b:4222``);
see ``docs/deploy.md``.

Partitions: the stream captures ``<subject>.0`` .. ``<subject>.<P-1>`` (P =
``ADTRACK_NATS_PARTITIONS``, default 8) and the bare ``<subject>`` that versions before
partitions published to. Partitions let several aggregators share the work (each reads its own
partitions, see ``nats_reader.py``); explicit numbered subjects, not ``<subject>.*``, so that the
stream of another install whose subject starts with ours (``adtrack.events.<stream>``, the
derived default) never overlaps.

Writer (collectors), :class:`NatsEventLogWriter`: ``append(records)`` publishes the records of
one append (one collector loop iteration) as ONE message on one partition subject, round robin
per append (several messages when they exceed ``ADTRACK_NATS_MAX_MESSAGE_BYTES`` or the server's
``max_payload``), in the framing of ``nats_format.py``, with a ``Nats-Msg-Id`` derived from the
batch (JetStream drops a second copy of the same batch within the stream's duplicate window,
whichever partition it went to), then waits until JetStream has acknowledged every message. A
JetStream ack means the message is stored by the stream (file storage; with replicas, by a
quorum of them), so the collector may answer. Anything else — not connected, a refusal, a
missing ack after ``ack_timeout``, the connection dropping while acks are outstanding — raises
:class:`EventLogUnavailable` and the collector answers 503. The connection is (re)made in the
background, forever; while it is down, appends fail at once instead of queueing behind a dead
server.

Reader (aggregators): ``nats_reader.py``, by stream sequence per partition, positions in SQL.

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

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import api
from nats.js.client import JetStreamContext

from adtrack.adapters.eventlog.nats_format import encode_messages, event_id_of
from adtrack.config import Settings, default_nats_subject
from adtrack.services.ports import EventLogUnavailable

__all__ = [
    "NatsEventLogWriter",
    "NatsWriterStats",
    "StreamSetupError",
    "StreamSpec",
    "event_id_of",
    "open_nats_writer",
    "subject_matches",
]

log = logging.getLogger(__name__)

DEFAULT_ACK_TIMEOUT = 3.0  # seconds a collector waits for JetStream before answering 503
DEFAULT_CONNECT_WAIT = 2.0  # how long the very first use waits for the first connection
DUPLICATE_WINDOW_SECONDS = 120.0
MAX_AGE_SECONDS = 7 * 86400.0
DEFAULT_PARTITIONS = 8  # ADTRACK_NATS_PARTITIONS
RECENT_FAILURE_SECONDS = 5.0  # a failed append keeps a writer "not ready" this long at most
DEFAULT_MAX_MESSAGE_BYTES = 1 << 20  # ADTRACK_NATS_MAX_MESSAGE_BYTES: one published batch at most
MIN_MESSAGE_BYTES = 4096  # a smaller bound (or server max_payload) would split every batch
HEADER_ROOM = 1024  # of the server's max_payload, left for the message headers
_MSG_ID = "Nats-Msg-Id"
_NO_RESPONDERS = "503"


def _coalesce_socket_writes() -> None:
    """Make the NATS client hand its buffered commands to the socket as ONE write.

    The client flushes its queue with ``writelines`` (three pieces per message); uvloop's
    ``writelines`` tries a ``send`` per piece, so a batch of 100 events cost 300 system calls
    (measured: most of an append's time). Joining first makes it one.
    """
    from nats.aio import transport

    def writelines(self: transport.TcpTransport, payload: list[bytes]) -> None:
        self.write(b"".join(payload))  # type: ignore[no-untyped-call]

    if hasattr(transport, "TcpTransport"):
        transport.TcpTransport.writelines = writelines  # type: ignore[method-assign]


_coalesce_socket_writes()


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


class _Connection:
    """One NATS connection, made in the background and re-made by the client forever.

    ``get(wait)`` returns the connected client, waiting at most ``wait`` seconds for it; the
    stream is ensured once per connection (and again when a publish finds no stream).
    """

    def __init__(
        self,
        spec: StreamSpec,
        *,
        name: str,
        on_disconnected: Callable[[], Awaitable[None]] | None = None,
        on_connected: Callable[[NatsClient], Awaitable[None]] | None = None,
    ) -> None:
        self.spec = spec
        self.name = name
        self.client: NatsClient | None = None
        self.stream_ready = False
        self.stream_subjects: list[str] = []  # the stream's subjects, when it was last checked
        self._on_disconnected = on_disconnected
        self._on_connected = on_connected
        self._task: asyncio.Task[NatsClient] | None = None
        self._first_wait_until = 0.0
        self._last_error = "not connected yet"
        self._last_logged = 0.0
        self._stream_retry_at = 0.0
        # why the stream could not be set up (None: it was, or was not tried yet), and the last
        # such reason logged: each distinct reason is logged once, not on every retry
        self._stream_error: EventLogUnavailable | None = None
        self._stream_error_logged = ""
        self._closed = False
        self._lock: asyncio.Lock | None = None
        self._stream_check: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        client = self.client
        return client is not None and client.is_connected

    def problem(self) -> str | None:
        """None when connected with the stream in place, else why not. Starts connecting (or
        checking the stream after a reconnect) in the background when nothing else has, so
        that readiness does not wait for an append that a load balancer will not send."""
        if self._closed:
            return "the NATS event log is closed"
        client = self.client
        if client is None or client.is_closed:
            task = self._task
            if task is None or (client is not None and client.is_closed):
                self.client = None
                self._task = asyncio.get_running_loop().create_task(self._connect())
                self._first_wait_until = time.monotonic() + DEFAULT_CONNECT_WAIT
                return f"connecting to NATS ({self.spec.where})"
            if not task.done():
                return f"cannot reach NATS ({self.spec.where}): {self._last_error}"
            if task.cancelled() or task.exception() is not None:
                self._task = None  # the next call (or append) tries again
                return f"NATS setup failed ({self.spec.where})"
            self.client = client = task.result()
        if not client.is_connected:
            return f"not connected to NATS ({self.spec.where}): {self._last_error}; reconnecting"
        if not self.stream_ready:
            checking = self._stream_check
            if checking is None or checking.done():
                self._stream_check = asyncio.get_running_loop().create_task(
                    self._check_stream_quietly(client)
                )
            if self._stream_error is not None:
                return str(self._stream_error)
            return f"checking JetStream stream {self.spec.where}"
        return None

    async def _check_stream_quietly(self, client: NatsClient) -> None:
        with contextlib.suppress(EventLogUnavailable):
            await self._ensure_stream(client)

    async def get(self, wait: float = DEFAULT_CONNECT_WAIT) -> NatsClient:
        client = self.client
        if client is not None and client.is_connected and self.stream_ready:
            return client
        if self._closed:
            raise EventLogUnavailable("the NATS event log is closed")
        if client is not None and client.is_closed:  # the client gave up (e.g. refused auth)
            self.client = client = None
            self._task = None
        if client is None:
            client = await self._wait_for_client(wait)
        if not client.is_connected:
            raise EventLogUnavailable(f"not connected to NATS ({self.spec.where}); reconnecting")
        if not self.stream_ready:
            await self._ensure_stream(client)
        return client

    async def _wait_for_client(self, wait: float) -> NatsClient:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._connect())
            self._first_wait_until = time.monotonic() + wait
        # Only the first uses wait (so a start-up race does not answer 503); during an outage
        # every append fails at once while the client keeps trying in the background.
        remaining = self._first_wait_until - time.monotonic()
        if remaining > 0 and not self._task.done():
            await asyncio.wait({self._task}, timeout=remaining)
        if not self._task.done():
            raise EventLogUnavailable(
                f"cannot reach NATS ({self.spec.where}): {self._last_error}; retrying"
            )
        exc = self._task.exception()
        if exc is not None:  # only setup after connecting can fail: try again next time
            self._task = None
            raise EventLogUnavailable(f"NATS setup failed ({self.spec.where}): {exc}")
        client = self._task.result()
        self.client = client
        return client

    async def _connect(self) -> NatsClient:
        client = NatsClient()
        await client.connect(
            servers=list(self.spec.servers),
            name=self.name,
            connect_timeout=2,
            allow_reconnect=True,
            max_reconnect_attempts=-1,  # the first connect also retries until it works
            reconnect_time_wait=0.5,  # type: ignore[arg-type]
            ping_interval=5,
            max_outstanding_pings=2,
            error_cb=self._error,
            disconnected_cb=self._disconnected,
            reconnected_cb=self._reconnected,
        )
        try:
            if self._on_connected is not None:
                await self._on_connected(client)
        except BaseException:
            await client.close()
            raise
        log.info("%s: connected to NATS (%s)", self.name, self.spec.where)
        return client

    async def _ensure_stream(self, client: NatsClient) -> None:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self.stream_ready:
                return
            failed = self._stream_error
            if failed is not None and time.monotonic() < self._stream_retry_at:
                raise failed
            try:
                self.stream_subjects = await ensure_stream(client.jetstream(timeout=2.0), self.spec)
            except EventLogUnavailable as exc:
                raise self._stream_failed(exc) from None
            except (TimeoutError, nats.errors.Error, OSError) as exc:
                raise self._stream_failed(
                    EventLogUnavailable(f"cannot set up JetStream {self.spec.where}: {exc!r}")
                ) from exc
            self.stream_ready = True
            if failed is not None:
                log.warning("%s: JetStream %s is ready now", self.name, self.spec.where)
            self._stream_error = None
            self._stream_error_logged = ""

    def _stream_failed(self, exc: EventLogUnavailable) -> EventLogUnavailable:
        self._stream_error = exc
        self._stream_retry_at = time.monotonic() + 1.0
        message = str(exc)
        if message != self._stream_error_logged:  # once per condition, not once per retry
            self._stream_error_logged = message
            log.error("%s: %s", self.name, message)
        return exc

    def _log_rarely(self, message: str) -> None:
        now = time.monotonic()
        if now - self._last_logged >= 10.0:
            self._last_logged = now
            log.warning("%s: %s", self.name, message)

    async def _error(self, exc: Exception) -> None:
        self._last_error = repr(exc)
        self._log_rarely(f"NATS error ({self.spec.where}): {exc!r}")

    async def _disconnected(self) -> None:
        if not self._closed:
            self._log_rarely(f"disconnected from NATS ({self.spec.where})")
        if self._on_disconnected is not None:
            await self._on_disconnected()

    async def _reconnected(self) -> None:
        # The stream may be gone (a new server without the old store): check again.
        self.stream_ready = False
        log.warning("%s: reconnected to NATS (%s)", self.name, self.spec.where)

    async def close(self) -> None:
        self._closed = True
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        client, self.client = self.client, None
        if client is not None and not client.is_closed:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(client.close(), 5.0)


@dataclass
class NatsWriterStats:
    appends: int = 0
    messages: int = 0  # JetStream messages published (one per append unless it was split)
    records: int = 0
    failures: int = 0
    duplicates: int = 0  # acks saying JetStream already had the message id


@dataclass
class _Append:
    """One ``append`` waiting for the acks of its messages."""

    remaining: int
    future: asyncio.Future[None]
    errors: list[str] = field(default_factory=list)


class NatsEventLogWriter:
    """:class:`EventLogWriter` on JetStream (see the module docstring). One per process."""

    def __init__(
        self,
        spec: StreamSpec,
        *,
        name: str = "adtrack-collector",
        ack_timeout: float = DEFAULT_ACK_TIMEOUT,
        connect_wait: float = DEFAULT_CONNECT_WAIT,
    ) -> None:
        self.spec = spec
        self.ack_timeout = ack_timeout
        self.connect_wait = connect_wait
        self.stats = NatsWriterStats()
        self._connection = _Connection(
            spec, name=name, on_connected=self._subscribe_acks, on_disconnected=self._fail_waiting
        )
        self._inbox = ""
        self._next_token = 0
        self._waiting: dict[int, _Append] = {}
        # Round robin over the partitions, one step per append, from a random start: every
        # partition gets an even share of every collector's events however many collectors
        # there are, so aggregators that split the partitions split the work evenly. (Choosing
        # by writer would leave partitions empty with fewer writers than partitions and load
        # aggregators by the luck of a hash.) Order across partitions does not matter: rollups
        # add up, and Nats-Msg-Id duplicates are recognised stream-wide, whatever the subject.
        self._subjects = spec.partition_subjects
        self._turn = random.randrange(len(self._subjects))
        # why the last append failed and when (cleared by one that succeeds): readiness
        self._append_failure: str | None = None
        self._append_failed_at = 0.0

    @property
    def connected(self) -> bool:
        return self._connection.connected

    def readiness(self) -> str | None:
        """None when connected with the stream in place and no append failed in the last
        ``RECENT_FAILURE_SECONDS``; else why not. (A failure is reported only that long: JetStream
        may have recovered without this writer appending anything to prove it.)"""
        problem = self._connection.problem()
        if problem is not None:
            return problem
        failure = self._append_failure
        if failure is not None:
            if time.monotonic() - self._append_failed_at < RECENT_FAILURE_SECONDS:
                return failure
            self._append_failure = None
        return None

    def _failed(self, exc: EventLogUnavailable) -> EventLogUnavailable:
        self.stats.failures += 1
        self._append_failure = str(exc)
        self._append_failed_at = time.monotonic()
        return exc

    def max_message_bytes(self, client: NatsClient) -> int:
        """The size bound of one message: the configured one, within the server's
        ``max_payload`` (less room for the headers)."""
        server_max = client.max_payload or self.spec.max_message_bytes
        return max(MIN_MESSAGE_BYTES, min(self.spec.max_message_bytes, server_max - HEADER_ROOM))

    async def append(self, records: Sequence[bytes]) -> None:
        if not records:
            return
        client = await self._connection.get(self.connect_wait)
        count = len(records)
        messages = encode_messages(records, self.max_message_bytes(client))
        pending = _Append(len(messages), asyncio.get_running_loop().create_future())
        first = self._next_token
        self._next_token += len(messages)
        waiting = self._waiting
        subjects = self._subjects
        subject = subjects[self._turn % len(subjects)]
        self._turn += 1
        inbox = self._inbox
        publish = client.publish
        try:
            for token, message in enumerate(messages, first):
                waiting[token] = pending
                await publish(
                    subject,
                    message.body,
                    reply=inbox + str(token),
                    headers={_MSG_ID: message.msg_id},
                )
            async with asyncio.timeout(self.ack_timeout):
                await pending.future
        except TimeoutError:
            raise self._failed(
                EventLogUnavailable(
                    f"JetStream acknowledged {len(messages) - pending.remaining} of "
                    f"{len(messages)} messages ({count} events) within {self.ack_timeout}s "
                    f"({self.spec.where})"
                )
            ) from None
        except EventLogUnavailable as exc:
            self._failed(exc)
            raise
        except (nats.errors.Error, OSError) as exc:
            raise self._failed(
                EventLogUnavailable(f"publishing to NATS failed ({self.spec.where}): {exc!r}")
            ) from exc
        finally:
            for token in range(first, first + len(messages)):
                waiting.pop(token, None)
            if pending.future.done() and not pending.future.cancelled():
                pending.future.exception()  # retrieved, whichever way the append ended
        self.stats.appends += 1
        self.stats.messages += len(messages)
        self.stats.records += count
        self._append_failure = None

    async def close(self) -> None:
        await self._fail_waiting()
        await self._connection.close()

    # ---- acks ----------------------------------------------------------------------------------

    async def _subscribe_acks(self, client: NatsClient) -> None:
        # One wildcard inbox for all publish acks of this connection; a token per message.
        self._inbox = client.new_inbox() + "."
        await client.subscribe(self._inbox + "*", cb=self._on_ack)

    async def _on_ack(self, msg: Msg) -> None:
        try:
            pending = self._waiting.pop(int(msg.subject[len(self._inbox) :]))
        except (KeyError, ValueError):
            return  # the append gave up already
        if pending.future.done():
            return
        data = msg.data
        headers = msg.headers
        if headers and headers.get("Status") == _NO_RESPONDERS:
            self._connection.stream_ready = False  # check (or re-create) the stream next time
            pending.future.set_exception(
                EventLogUnavailable(
                    f"no JetStream stream takes the subjects {self.spec.subject!r}.<partition>"
                )
            )
            return
        if b'"error"' in data:
            pending.future.set_exception(
                EventLogUnavailable(f"JetStream refused a batch of events: {data[:300]!r}")
            )
            return
        if b'"duplicate"' in data:
            self.stats.duplicates += 1
        pending.remaining -= 1
        if pending.remaining == 0:
            pending.future.set_result(None)

    async def _fail_waiting(self) -> None:
        """The connection dropped: acks still outstanding will not come; fail those appends now."""
        failed = {id(p): p for p in self._waiting.values()}
        self._waiting.clear()
        for pending in failed.values():
            if not pending.future.done():
                pending.future.set_exception(
                    EventLogUnavailable(f"lost the connection to NATS ({self.spec.where})")
                )


def open_nats_writer(settings: Settings, *, writer_id: str | None = None) -> NatsEventLogWriter:
    name = f"adtrack-collector-{writer_id}" if writer_id else "adtrack-collector"
    return NatsEventLogWriter(StreamSpec.from_settings(settings), name=name)
