"""Sending mail over SMTP (``ADTRACK_SMTP_URL``)."""

from adtrack.adapters.smtp.config import SmtpConfig, parse_smtp_url
from adtrack.adapters.smtp.mailer import SmtpMailer, build_email

__all__ = ["SmtpConfig", "SmtpMailer", "build_email", "parse_smtp_url"]
