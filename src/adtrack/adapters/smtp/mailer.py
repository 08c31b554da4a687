"""An SMTP ``Mailer`` on the standard library's ``smtplib``.

One connection per message. The envelope is all-or-nothing: every recipient is offered with
RCPT TO first, and if the server refuses any of them the transaction is reset and nothing is
sent (the caller gets the server's reason), so a message never reaches only part of its list.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage
from email.policy import SMTP as SMTP_POLICY
from email.utils import formatdate, make_msgid

from adtrack.adapters.smtp.config import SmtpConfig, parse_smtp_url
from adtrack.services.ports import MailDeliveryError, MailMessage

_ACCEPTED_RCPT = (250, 251)


def build_email(message: MailMessage, sender: str) -> EmailMessage:
    email = EmailMessage()
    email["From"] = sender
    email["To"] = ", ".join(message.recipients)
    email["Subject"] = message.subject
    email["Date"] = formatdate(localtime=False, usegmt=True)
    domain = sender.rpartition("@")[2] or "localhost"
    email["Message-ID"] = make_msgid(domain=domain)
    email.set_content(message.text_body, charset="utf-8")
    for attachment in message.attachments:
        maintype, _, subtype = attachment.media_type.partition("/")
        email.add_attachment(
            attachment.data,
            maintype=maintype,
            subtype=subtype or "octet-stream",
            filename=attachment.filename,
        )
    return email


def _reply(code: int, text: bytes | str) -> str:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return f"{code} {text}".strip()


def _is_temporary(code: int) -> bool:
    return 400 <= code < 500


class SmtpMailer:
    """Sends through the server described by ``config`` (see ``adapters/smtp/config.py``)."""

    def __init__(self, config: SmtpConfig, sender: str) -> None:
        self.config = config
        self.sender = sender

    @classmethod
    def from_url(cls, url: str, sender: str) -> SmtpMailer:
        return cls(parse_smtp_url(url), sender)

    def _tls_context(self) -> ssl.SSLContext:
        context = ssl.create_default_context()
        if not self.config.verify_certificates:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        smtp: smtplib.SMTP
        if cfg.implicit_tls:
            smtp = smtplib.SMTP_SSL(
                cfg.host,
                cfg.port,
                local_hostname=cfg.helo_name,
                timeout=cfg.timeout,
                context=self._tls_context(),
            )
        else:
            smtp = smtplib.SMTP(
                cfg.host, cfg.port, local_hostname=cfg.helo_name, timeout=cfg.timeout
            )
        try:
            smtp.ehlo_or_helo_if_needed()
            if cfg.starttls:
                # Raises SMTPNotSupportedError when the server does not offer it: we never fall
                # back to sending credentials and mail in clear text.
                smtp.starttls(context=self._tls_context())
                smtp.ehlo()
            if cfg.username is not None:
                smtp.login(cfg.username, cfg.password or "")
        except BaseException:
            smtp.close()
            raise
        return smtp

    def send(self, message: MailMessage) -> None:
        if not message.recipients:
            raise MailDeliveryError("no recipients", temporary=False)
        email = build_email(message, self.sender)
        where = self.config.describe()
        try:
            smtp = self._connect()
            try:
                self._transaction(smtp, email, message.recipients)
            finally:
                try:
                    smtp.quit()
                except (smtplib.SMTPException, OSError):
                    smtp.close()
        except MailDeliveryError:
            raise
        except smtplib.SMTPNotSupportedError as exc:
            raise MailDeliveryError(f"{where}: {exc}", temporary=False) from exc
        except smtplib.SMTPResponseException as exc:
            raise MailDeliveryError(
                f"{where}: {_reply(exc.smtp_code, exc.smtp_error)}",
                temporary=_is_temporary(exc.smtp_code),
                code=exc.smtp_code,
            ) from exc
        except ssl.SSLError as exc:
            # A certificate or protocol mismatch is a set-up problem: retrying will not help.
            raise MailDeliveryError(f"{where}: TLS failed: {exc}", temporary=False) from exc
        except (smtplib.SMTPException, OSError) as exc:
            # Connection refused or reset, timeout, server hung up: try again later.
            raise MailDeliveryError(
                f"{where}: {type(exc).__name__}: {exc}", temporary=True
            ) from exc

    def _transaction(
        self, smtp: smtplib.SMTP, email: EmailMessage, recipients: tuple[str, ...]
    ) -> None:
        code, reply = smtp.mail(self.sender)
        if code != 250:
            smtp.rset()
            raise smtplib.SMTPSenderRefused(code, reply, self.sender)
        refused: list[tuple[str, int, str]] = []
        for recipient in recipients:
            code, reply = smtp.rcpt(recipient)
            if code not in _ACCEPTED_RCPT:
                refused.append((recipient, code, _reply(code, reply)))
        if refused:
            smtp.rset()
            detail = "; ".join(f"{rcpt}: {text}" for rcpt, _, text in refused)
            # Temporary only if every refusal is temporary; one permanent refusal means the
            # list itself must change.
            temporary = all(_is_temporary(code) for _, code, _ in refused)
            raise MailDeliveryError(
                f"{self.config.describe()}: recipient(s) refused, nothing sent: {detail}",
                temporary=temporary,
                code=refused[0][1],
            )
        smtp.data(email.as_bytes(policy=SMTP_POLICY))  # raises SMTPDataError unless 250
