"""The NATS JetStream event log: many collectors on many hosts, one durable stream.

Chosen with ``ADTRACK_EVENT_LOG=nats://host:4222`` (several servers: ``nats://a:4222,nats://b:4222``);
see ``docs/deploy.md``.

Writer (collectors), :class:`NatsEventLogWriter`: ``append(records)`` publishes the records of
one append (one collector loop iteration) as ONE message on the subject ``ADTRACK_NATS_SUBJECT``
(several when they exceed ``ADTRACK_NATS_MAX_MESSAGE_BYTES`` or the server's ``max_payload``),
in the framing of ``nats_format.py``, with a ``Nats-Msg-Id`` derived from the batch (JetStream
drops a second copy of the same batch within the stream's duplicate window), then waits until
JetStream has acknowledged every message. A JetStream ack means the message is stored by the
stream (file storage; with replicas, by a quorum of them), so the collector may answer. Anything
else — not connected, a refusal, a missing ack after ``ack_timeout``, the connection dropping
while acks are outstanding — raises :class:`EventLogUnavailable` and the collector answers 503.
The connection is (re)made in the background, forever; while it is down, appends fail at once
instead of queueing behind a dead server.

Reader (aggregators), :class:`NatsEventLogReader`: a durable pull consumer named after
``consumer`` with explicit acks, unlimited redeliveries and ``ADTRACK_NATS_ACK_WAIT_SECONDS``
(default 30 s) before an unacked message is delivered again. It unpacks batch messages (and
reads the one-event messages of earlier versions) into records; a message is acked, whole,
after the aggregator committed all its events, and a redelivered one is recognised event by
event (the aggregator is idempotent by ``event_id``). Several aggregators may share the consumer
(JetStream hands each message to one of them); a message whose aggregator died before acking
goes to another one, or to the restarted one, after the ack wait. ``Batch.position`` is
``{stream name: highest stream sequence in the batch}``, committed by the aggregator with the
rows for visibility; the consumer itself (kept by JetStream) decides what is delivered, so the
reader has no ``restore``.

The stream is created if it is missing, by whichever part connects first: subjects
``[ADTRACK_NATS_SUBJECT]`` (by default derived from the stream name:
``config.default_nats_subject``), file storage, ``ADTRACK_NATS_REPLICAS`` replicas, a 2-minute
duplicate window and a maximum age of 7 days (never longer than the raw-event retention, because the
aggregator recognises a replayed event by the raw row it stored). An existing stream is used as
it is, after checking that it captures the subject. A set-up that cannot work (the subject taken
by another stream, a stream without the subject, JetStream not enabled) is reported once in the
log and as the writer's ``readiness()`` reason, naming the stream, the subject and the setting
to change (:class:`StreamSetupError`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import nats
import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js import api
from nats.js.client import JetStreamContext

from adtrack.adapters.eventlog.nats_format import (
    FutureFormat,
    MalformedMessage,
    decode_message,
    encode_messages,
    event_id_of,
)
from adtrack.config import Settings, default_nats_subject
from adtrack.services.event_log import Batch, EventLogUnavailable

__all__ = [
    "NatsEventLogReader",
    "NatsEventLogWriter",
    "NatsReaderStats",
    "NatsWriterStats",
    "StreamSetupError",
    "StreamSpec",
    "event_id_of",
    "open_nats_reader",
    "open_nats_writer",
    "subject_matches",
]

log = logging.getLogger(__name__)

DEFAULT_ACK_TIMEOUT = 3.0  # seconds a collector waits for JetStream before answering 503
DEFAULT_CONNECT_WAIT = 2.0  # how long the very first use waits for the first connection
DUPLICATE_WINDOW_SECONDS = 120.0
MAX_AGE_SECONDS = 7 * 86400.0
MAX_ACK_PENDING = 50_000  # per consumer, over all aggregators sharing it
FETCH_WAIT_SECONDS = 0.5  # an idle read waits this long for new messages
INITIAL_RECORDS_PER_MESSAGE = 1000  # a reader's first guess of the events in one message
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
    ack_wait_seconds: float = 30.0
    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES

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
            ack_wait_seconds=max(0.5, settings.nats_ack_wait_seconds),
            max_message_bytes=max(MIN_MESSAGE_BYTES, settings.nats_max_message_bytes),
        )

    @property
    def where(self) -> str:
        return f"stream {self.stream} at {','.join(self.servers)}"


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


async def ensure_stream(js: JetStreamContext, spec: StreamSpec) -> None:
    """Create the stream if it is missing; check that an existing one captures the subject.

    Raises :class:`StreamSetupError` with what to change when the set-up cannot work (the
    subject belongs to another stream, the stream does not capture the subject, JetStream is
    not enabled).
    """
    try:
        info = await js.stream_info(spec.stream)
    except nats.js.errors.NotFoundError:
        config = api.StreamConfig(
            name=spec.stream,
            subjects=[spec.subject],
            storage=api.StorageType.FILE,
            num_replicas=spec.replicas,
            retention=api.RetentionPolicy.LIMITS,
            discard=api.DiscardPolicy.OLD,
            duplicate_window=DUPLICATE_WINDOW_SECONDS,
            max_age=spec.max_age_seconds,
        )
        try:
            await js.add_stream(config)
            log.info("created JetStream %s (subject %s)", spec.where, spec.subject)
            return
        except nats.js.errors.BadRequestError as refused:
            try:
                info = await js.stream_info(spec.stream)  # created by another process meanwhile
            except nats.js.errors.NotFoundError:
                raise await _creation_refused(js, spec, refused) from None
    except nats.js.errors.ServiceUnavailableError as exc:
        if exc.err_code or exc.description:  # JetStream answered: e.g. no cluster leader yet
            raise
        # nobody answered the JetStream API (the client maps "no responders" to this error)
        raise StreamSetupError(
            f"JetStream is not enabled on NATS ({spec.where}): start nats-server with -js "
            "(or a jetstream block in its configuration), and enable it for the account"
        ) from None
    subjects = info.config.subjects or []
    if not any(subject_matches(pattern, spec.subject) for pattern in subjects):
        raise StreamSetupError(
            f"JetStream stream {spec.stream} does not capture subject {spec.subject!r} "
            f"(its subjects: {subjects}); set ADTRACK_NATS_SUBJECT to one of them, or "
            "ADTRACK_NATS_STREAM to another stream"
        )


async def _creation_refused(
    js: JetStreamContext, spec: StreamSpec, refused: nats.js.errors.BadRequestError
) -> StreamSetupError:
    """Why JetStream refused to create the stream, with the setting to change."""
    derived = default_nats_subject(spec.stream)
    suggestion = f" (e.g. {derived!r}, the default)" if derived != spec.subject else ""
    with contextlib.suppress(nats.errors.Error, TimeoutError):
        owner = await js.find_stream_name_by_subject(spec.subject)
        return StreamSetupError(
            f"cannot create JetStream stream {spec.stream}: its subject {spec.subject!r} is "
            f"already captured by stream {owner} (another adtrack install, or another "
            f"application). Set ADTRACK_NATS_SUBJECT to a subject of its own for stream "
            f"{spec.stream}{suggestion}, or ADTRACK_NATS_STREAM={owner} to share that stream"
        )
    return StreamSetupError(
        f"JetStream refused to create stream {spec.stream} with subject {spec.subject!r} "
        f"({spec.where}): {refused.description or refused!r}; check ADTRACK_NATS_STREAM, "
        "ADTRACK_NATS_SUBJECT and ADTRACK_NATS_REPLICAS"
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
                await ensure_stream(client.jetstream(timeout=2.0), self.spec)
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
class NatsReaderStats:
    messages: int = 0
    records: int = 0
    malformed: int = 0  # batch messages whose frame did not check out (handed on as one record)
    future_format: int = 0  # messages of a later format, left unacked


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
        subject = self.spec.subject
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
                EventLogUnavailable(f"no JetStream stream takes subject {self.spec.subject!r}")
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


class NatsEventLogReader:
    """:class:`EventLogReader` on a durable JetStream pull consumer named ``consumer``.

    ``read`` asks for what is available at once (a ``no_wait`` pull of up to ``max_records``);
    when nothing is, it waits up to ``fetch_wait`` for one message and then takes the rest that
    is available. Deliveries arrive on this reader's own inbox and queue up in order, so a
    message delivered after a read gave up is handed out by the next read.
    """

    def __init__(
        self,
        spec: StreamSpec,
        *,
        consumer: str,
        fetch_wait: float = FETCH_WAIT_SECONDS,
        connect_wait: float = 5.0,
    ) -> None:
        self.spec = spec
        self.consumer = consumer
        self.fetch_wait = fetch_wait
        self.connect_wait = connect_wait
        self._connection = _Connection(
            spec, name=f"adtrack-aggregator-{consumer}", on_connected=self._subscribe_inbox
        )
        self._deliver = ""
        self._next_subject = f"$JS.API.CONSUMER.MSG.NEXT.{spec.stream}.{consumer}"
        self._consumer_ready = False
        self._queue: deque[Msg] = deque()  # deliveries and status messages, in arrival order
        self._arrived: asyncio.Event | None = None
        # events per message, as seen in the last pulls: how many messages to ask for. It errs
        # on the high side (a pull of too few messages costs one more round trip, one of too
        # many an oversized batch), so it starts high and falls by halves.
        self._records_per_message = INITIAL_RECORDS_PER_MESSAGE
        self.stats = NatsReaderStats()
        self._logged: set[str] = set()

    async def read(self, max_records: int) -> Batch:
        """About ``max_records`` records: whole messages, unpacked. Messages are asked for by
        the number of events per message seen so far, so a batch exceeds ``max_records`` when
        messages hold more events than the ones before (by at most one pull's worth)."""
        client = await self._connection.get(self.connect_wait)
        if not self._consumer_ready:
            await self._ensure_consumer(client)
        wanted = max(1, max_records)
        messages: list[Msg] = []
        records: list[bytes] = []
        try:
            while len(records) < wanted:
                # as many messages as should hold the records still wanted, by the sizes seen
                ask = max(1, -(-(wanted - len(records)) // self._records_per_message))
                pulled = await self._pull(client, ask, no_wait=True)
                if not pulled and not messages:  # nothing there: wait a little for one
                    ask = 1
                    pulled = await self._pull(client, 1, no_wait=False)
                if not pulled:
                    break
                count = self._unpack(pulled, messages, records)
                # more events per message than thought: believe it at once (so the next pull
                # does not overshoot); fewer: halve the guess at most per pull
                self._records_per_message = max(
                    1, round(count / len(pulled)), self._records_per_message // 2
                )
                if len(pulled) < ask:  # the stream had no more just now
                    break
        except (nats.errors.Error, OSError) as exc:
            raise EventLogUnavailable(f"reading {self.spec.where} failed: {exc!r}") from exc
        if not messages:
            return Batch(records=[], position=None, source=self.spec.stream)
        last = max(_stream_sequence(message.reply) for message in messages)
        return Batch(
            records=records,
            position={self.spec.stream: last} if last else None,
            source=self.spec.stream,
            meta={"messages": messages},
        )

    def _unpack(self, pulled: list[Msg], messages: list[Msg], records: list[bytes]) -> int:
        """Add the records of ``pulled`` to ``records`` and the messages to ack to
        ``messages``; returns the number of records added."""
        added = 0
        for message in pulled:
            try:
                unpacked = decode_message(message.data)
            except FutureFormat as exc:
                # Written by a later adtrack: left unacked, JetStream hands it to an aggregator
                # that can read it (or to this one again after the ack wait).
                self.stats.future_format += 1
                self._log_once("future", f"left a message unacked on {self.spec.where}: {exc}")
                continue
            except MalformedMessage as exc:
                # Counting it is impossible and redelivering it would not help: the aggregator
                # skips and logs it like any record that is not an event.
                self.stats.malformed += 1
                log.error("malformed batch message on %s: %s", self.spec.where, exc)
                unpacked = [message.data]
            messages.append(message)
            records += unpacked
            added += len(unpacked)
        self.stats.messages += len(pulled)
        self.stats.records += added
        return added

    def _log_once(self, condition: str, message: str) -> None:
        if condition not in self._logged:
            self._logged.add(condition)
            log.error("%s", message)

    async def ack(self, batch: Batch) -> None:
        messages: list[Msg] = batch.meta.get("messages", [])  # type: ignore[assignment]
        client = self._connection.client
        if not messages or client is None:
            return
        try:
            publish = client.publish
            for message in messages:
                await publish(message.reply)
            await client.flush(timeout=5)
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            # Harmless: JetStream delivers them again after the ack wait, and the aggregator
            # recognises events it already stored.
            log.warning("could not ack %d messages on %s: %r", len(messages), self.spec.where, exc)

    async def close(self) -> None:
        await self._connection.close()

    # ---- pulling -------------------------------------------------------------------------------

    async def _pull(self, client: NatsClient, batch: int, *, no_wait: bool) -> list[Msg]:
        """One pull request; returns when ``batch`` messages came, the server said there are
        no more (404/408), or the wait is over."""
        messages: list[Msg] = []
        queue = self._queue
        while queue and len(messages) < batch:  # left over from an earlier request
            message = queue.popleft()
            if _status(message) is None:
                messages.append(message)
        if len(messages) >= batch:
            return messages
        request: dict[str, object] = {"batch": batch - len(messages)}
        if no_wait and not messages:
            request["no_wait"] = True
        elif no_wait:
            return messages
        wait = self.fetch_wait
        if not no_wait:
            request["expires"] = int(wait * 1e9)
        await client.publish(self._next_subject, json.dumps(request).encode(), reply=self._deliver)
        deadline = time.monotonic() + wait + 1.0
        answered = False
        while len(messages) < batch:
            if not queue:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    if not answered:
                        # JetStream always answers a pull (events, 404 or 408) unless the
                        # consumer is gone: check it (and create it again) next time
                        self._consumer_ready = False
                    break
                arrived = self._arrived = asyncio.Event()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(remaining):
                        await arrived.wait()
                continue
            message = queue.popleft()
            answered = True
            status = _status(message)
            if status is None:
                messages.append(message)
                continue
            if status in ("404", "408"):  # no (more) messages for this request
                break
            if status in ("409", _NO_RESPONDERS):
                # e.g. "Consumer Deleted", or no stream at all: set them up again next time
                log.warning("pull from %s: %s %s", self.spec.where, status, message.header)
                self._consumer_ready = False
                self._connection.stream_ready = False
                break
            # 100: heartbeat or flow control, nothing to hand out
        return messages

    async def _on_delivery(self, message: Msg) -> None:
        self._queue.append(message)
        arrived = self._arrived
        if arrived is not None:
            arrived.set()

    async def _subscribe_inbox(self, client: NatsClient) -> None:
        self._deliver = client.new_inbox()
        await client.subscribe(self._deliver, cb=self._on_delivery)

    async def _ensure_consumer(self, client: NatsClient) -> None:
        js = client.jetstream()
        try:
            try:
                await js.consumer_info(self.spec.stream, self.consumer)
            except nats.js.errors.NotFoundError:
                await js.add_consumer(self.spec.stream, config=self._consumer_config())
        except (nats.errors.Error, OSError, TimeoutError) as exc:
            raise EventLogUnavailable(
                f"cannot set up consumer {self.consumer} on {self.spec.where}: {exc!r}"
            ) from exc
        self._consumer_ready = True

    def _consumer_config(self) -> api.ConsumerConfig:
        return api.ConsumerConfig(
            name=self.consumer,
            durable_name=self.consumer,
            deliver_policy=api.DeliverPolicy.ALL,
            ack_policy=api.AckPolicy.EXPLICIT,
            ack_wait=self.spec.ack_wait_seconds,
            max_deliver=-1,  # never give up on an event while the database is down
            max_ack_pending=MAX_ACK_PENDING,
            replay_policy=api.ReplayPolicy.INSTANT,
        )


def _status(message: Msg) -> str | None:
    """The status code of a JetStream status message (None: an event)."""
    headers = message.headers
    return headers.get("Status") if headers else None


def _stream_sequence(reply: str) -> int:
    """The stream sequence in a JetStream delivery's ack subject (0 if it is not one):
    ``$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>...`` (9 tokens), or with a domain and
    an account hash after ``$JS.ACK`` (12 tokens or more)."""
    tokens = reply.split(".")
    index = 5 if len(tokens) == 9 else 7 if len(tokens) >= 12 else -1
    try:
        return int(tokens[index]) if index > 0 else 0
    except ValueError:
        return 0


def open_nats_writer(settings: Settings, *, writer_id: str | None = None) -> NatsEventLogWriter:
    name = f"adtrack-collector-{writer_id}" if writer_id else "adtrack-collector"
    return NatsEventLogWriter(StreamSpec.from_settings(settings), name=name)


def open_nats_reader(settings: Settings, *, consumer: str) -> NatsEventLogReader:
    return NatsEventLogReader(StreamSpec.from_settings(settings), consumer=consumer)
