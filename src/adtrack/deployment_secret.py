"""The deployment's secret: ``ADTRACK_SESSION_SECRET``, else one generated on first use and kept
in ``<data dir>/session_secret`` (mode 0600), so it survives restarts and every process sharing
the data directory reads the same one.

It signs the console's session cookies (``web/console/auth.py``) and, under a key derived from
it, the viewability tokens of the JavaScript tag (``domain/view_tokens.py``). Collectors on
several hosts that do not share a data directory need the same ``ADTRACK_SESSION_SECRET``.
"""

from __future__ import annotations

import logging
import os
import secrets
from pathlib import Path

from adtrack.config import Settings

__all__ = ["SECRET_FILE", "load_deployment_secret"]

log = logging.getLogger(__name__)

SECRET_FILE = "session_secret"
_MIN_SECRET_LENGTH = 16


def load_deployment_secret(settings: Settings) -> str:
    """The configured secret, else the one kept in the data directory (created on first use)."""
    if settings.session_secret:
        if len(settings.session_secret) < _MIN_SECRET_LENGTH:
            log.warning("ADTRACK_SESSION_SECRET is short; use at least 32 random characters")
        return settings.session_secret
    path = Path(settings.data_dir) / SECRET_FILE
    try:
        return path.read_text().strip() or _create_secret(path)
    except FileNotFoundError:
        return _create_secret(path)
    except OSError as exc:
        log.warning(
            "cannot read %s (%s): console sessions and viewability tokens end at restart",
            path,
            exc,
        )
        return secrets.token_urlsafe(48)


def _create_secret(path: Path) -> str:
    secret = secrets.token_urlsafe(48)
    try:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()  # another process won the race: use its secret
    except OSError as exc:
        log.warning(
            "cannot write %s (%s): console sessions and viewability tokens end at restart",
            path,
            exc,
        )
        return secret
    with os.fdopen(fd, "w") as handle:
        handle.write(secret)
    return secret
