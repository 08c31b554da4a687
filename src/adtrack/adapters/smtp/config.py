"""``ADTRACK_SMTP_URL`` parsing.

Forms:

- ``smtp://host[:port]`` — plain SMTP (port 25 by default);
- ``smtp://user:password@host:587?starttls=true`` — upgrade with STARTTLS (required: the send
  fails if the server does not offer it), then log in;
- ``smtps://user:password@host[:465]`` — TLS from the first byte (implicit TLS).

User and password are percent-decoded (write ``@`` as ``%40``). Other query options:
``timeout=<seconds>`` (default 30), ``verify=false`` to skip certificate checks (test servers
only), ``helo=<name>``.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import parse_qs, unquote, urlsplit

from adtrack.domain.errors import ValidationError

_TRUE = frozenset({"1", "true", "yes", "on"})
_FALSE = frozenset({"0", "false", "no", "off"})
_KNOWN_OPTIONS = frozenset({"starttls", "timeout", "verify", "helo"})


@dataclass(frozen=True)
class SmtpConfig:
    host: str
    port: int
    implicit_tls: bool = False
    starttls: bool = False
    username: str | None = None
    password: str | None = None
    timeout: float = 30.0
    verify_certificates: bool = True
    helo_name: str | None = None

    def describe(self) -> str:
        """Where mail goes, without the password (for logs and errors)."""
        mode = "smtps" if self.implicit_tls else ("smtp+starttls" if self.starttls else "smtp")
        who = f"{self.username}@" if self.username else ""
        return f"{mode}://{who}{self.host}:{self.port}"


def _flag(name: str, value: str) -> bool:
    v = value.strip().lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise ValidationError("ADTRACK_SMTP_URL", f"option {name}={value!r} must be true or false")


def parse_smtp_url(url: str) -> SmtpConfig:
    """``ADTRACK_SMTP_URL`` to an ``SmtpConfig``; ``ValidationError`` naming the variable."""
    field = "ADTRACK_SMTP_URL"
    try:
        parts = urlsplit(url.strip())
        port_value = parts.port
    except ValueError as exc:
        raise ValidationError(field, f"is not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in ("smtp", "smtps"):
        raise ValidationError(field, f"scheme must be smtp or smtps, got {parts.scheme!r}")
    if not parts.hostname:
        raise ValidationError(field, "needs a host, e.g. smtp://mail.example.com:587?starttls=true")
    options = {k.lower(): v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
    unknown = set(options) - _KNOWN_OPTIONS
    if unknown:
        raise ValidationError(field, f"unknown option(s): {', '.join(sorted(unknown))}")
    implicit_tls = scheme == "smtps"
    starttls = _flag("starttls", options["starttls"]) if "starttls" in options else False
    if implicit_tls and starttls:
        raise ValidationError(field, "smtps:// already uses TLS; drop starttls=true")
    timeout = 30.0
    if "timeout" in options:
        try:
            timeout = float(options["timeout"])
        except ValueError:
            timeout = -1.0
        if not 0 < timeout <= 600:
            raise ValidationError(field, "timeout must be a number of seconds in (0, 600]")
    return SmtpConfig(
        host=parts.hostname,
        port=port_value or (465 if implicit_tls else 25),
        implicit_tls=implicit_tls,
        starttls=starttls,
        username=unquote(parts.username) if parts.username else None,
        password=unquote(parts.password) if parts.password is not None else None,
        timeout=timeout,
        verify_certificates=_flag("verify", options["verify"]) if "verify" in options else True,
        helo_name=options.get("helo") or None,
    )
