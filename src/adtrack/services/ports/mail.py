"""Sending mail: the message the services build and the interface an adapter implements.

The SMTP adapter (``adapters/smtp``) is the implementation; exports and scheduled reports use it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol


@dataclass(frozen=True)
class Attachment:
    filename: str
    media_type: str  # "text/csv", "application/vnd.openxmlformats-officedocument..."
    data: bytes


@dataclass(frozen=True)
class MailMessage:
    recipients: tuple[str, ...]
    subject: str
    text_body: str
    attachments: tuple[Attachment, ...] = field(default_factory=tuple)


class MailDeliveryError(Exception):
    """The mail was not sent to anyone.

    ``temporary`` says whether trying again later may work (SMTP 4xx, connection refused or
    dropped, timeout); a permanent failure (SMTP 5xx, bad credentials, TLS refused) will not fix
    itself. ``reason`` is the server's answer (code and text) or the network error.
    """

    def __init__(self, reason: str, *, temporary: bool, code: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.temporary = temporary
        self.code = code


class Mailer(Protocol):
    def send(self, message: MailMessage) -> None:
        """Send ``message`` to all its recipients or to none (raise ``MailDeliveryError``).

        Blocking: callers on an event loop run it in a worker thread.
        """
        ...
