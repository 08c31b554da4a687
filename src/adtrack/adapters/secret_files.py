"""Secrets kept in the data directory when no setting gives one: created once (random, mode
0600), then read by every process of the deployment that shares the directory."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from adtrack.adapters.private_files import PRIVATE_FILE_MODE, make_private_dir

__all__ = ["load_or_create_secret"]


def load_or_create_secret(path: Path) -> str:
    """The secret in ``path``; a new random one written there first if there is none. Two
    processes starting at once agree: the one that creates the file wins, the other reads it."""
    try:
        secret = path.read_text().strip()
    except FileNotFoundError:
        secret = ""
    if secret:
        return secret
    make_private_dir(path.parent)
    created = secrets.token_urlsafe(48)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, PRIVATE_FILE_MODE)
    except FileExistsError:
        return _written_by_another(path)
    with os.fdopen(fd, "w") as handle:
        handle.write(created)
        handle.flush()
        os.fsync(handle.fileno())
    return created


def _written_by_another(path: Path) -> str:
    # it may be empty for a moment, between the other process's create and write
    for _ in range(100):
        secret = path.read_text().strip()
        if secret:
            return secret
        os.sched_yield()
    raise RuntimeError(f"{path} exists but holds no secret: delete it or set the secret")
