"""A real SMTP server (aiosmtpd) running in the test process, on a free loopback port.

It either accepts and keeps every message (``.messages``) or refuses every recipient and every
message with a fixed reply (``refuse_with="550 ..."`` for a permanent failure, ``"451 ..."`` for a
temporary one), and counts the attempts so retry behaviour can be checked.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage
from email.parser import BytesParser
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from .net import LOOPBACK, free_port

PERMANENT_REFUSAL = "550 5.7.1 Mailbox unavailable: refused by test server"


@dataclass(frozen=True)
class Envelope:
    """What the client said around one message: MAIL FROM and RCPT TO."""

    mail_from: str
    rcpt_tos: tuple[str, ...]


class _Handler:
    def __init__(self, owner: SmtpServer) -> None:
        self._owner = owner

    async def handle_RCPT(
        self, server: Any, session: Any, envelope: Any, address: str, rcpt_options: list[str]
    ) -> str:
        self._owner._note_attempt()
        if self._owner.refuse_with is not None:
            return self._owner.refuse_with
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self._owner.refuse_with is not None:
            return self._owner.refuse_with
        raw = envelope.original_content or envelope.content
        if isinstance(raw, str):
            raw = raw.encode("utf-8")
        message = BytesParser(policy=policy.default).parsebytes(raw)
        assert isinstance(message, EmailMessage)
        self._owner._store(
            message, Envelope(str(envelope.mail_from), tuple(str(r) for r in envelope.rcpt_tos))
        )
        return "250 Message accepted for delivery"


class SmtpServer:
    """An in-process SMTP server on ``host:port``; use :meth:`start` / :meth:`stop` or ``with``.

    ``credentials=(user, password)`` makes AUTH (PLAIN/LOGIN, no TLS needed) mandatory and
    checks it. ``refuse_with`` is the reply to every RCPT and DATA (None: accept everything).
    """

    def __init__(
        self,
        *,
        refuse_with: str | None = None,
        credentials: tuple[str, str] | None = None,
        host: str = LOOPBACK,
    ) -> None:
        self.host = host
        self.port = 0
        self.refuse_with = refuse_with
        self.credentials = credentials
        self.messages: list[EmailMessage] = []
        self.envelopes: list[Envelope] = []
        self.attempts = 0  # RCPT commands seen, accepted or not
        self._changed = threading.Condition()
        self._controller: Controller | None = None

    @property
    def url(self) -> str:
        """``smtp://[user:password@]host:port``, the form ``ADTRACK_SMTP_URL`` takes."""
        auth = f"{self.credentials[0]}:{self.credentials[1]}@" if self.credentials else ""
        return f"smtp://{auth}{self.host}:{self.port}"

    def start(self) -> SmtpServer:
        kwargs: dict[str, Any] = {}
        if self.credentials is not None:
            kwargs.update(
                auth_required=True, auth_require_tls=False, authenticator=self._authenticate
            )
        last_error: Exception | None = None
        for _ in range(5):  # the free port may be taken by someone else before we bind it
            port = free_port(self.host)
            controller = Controller(
                _Handler(self), hostname=self.host, port=port, ready_timeout=10, **kwargs
            )
            try:
                controller.start()
            except Exception as exc:  # retried on a new port, re-raised below
                last_error = exc
                continue
            self.port = port
            self._controller = controller
            return self
        raise RuntimeError(f"could not start the test SMTP server: {last_error}")

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SmtpServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def wait_for_messages(self, count: int = 1, timeout: float = 10.0) -> list[EmailMessage]:
        """Wait until at least ``count`` messages arrived; fail the test after ``timeout`` s."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while len(self.messages) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} message(s) at {self.url} within {timeout}s, "
                        f"got {len(self.messages)}"
                    )
                self._changed.wait(remaining)
            return list(self.messages)

    def wait_for_attempts(self, count: int = 1, timeout: float = 10.0) -> int:
        """Wait until at least ``count`` RCPT attempts were made (useful with ``refuse_with``)."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while self.attempts < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"expected {count} delivery attempt(s) at {self.url} within {timeout}s, "
                        f"got {self.attempts}"
                    )
                self._changed.wait(remaining)
            return self.attempts

    def _store(self, message: EmailMessage, envelope: Envelope) -> None:
        with self._changed:
            self.messages.append(message)
            self.envelopes.append(envelope)
            self._changed.notify_all()

    def _note_attempt(self) -> None:
        with self._changed:
            self.attempts += 1
            self._changed.notify_all()

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> AuthResult:
        if self.credentials is None or not isinstance(auth_data, LoginPassword):
            return AuthResult(success=False, handled=False)
        user, password = self.credentials
        ok = auth_data.login == user.encode() and auth_data.password == password.encode()
        return AuthResult(success=ok, handled=False)
