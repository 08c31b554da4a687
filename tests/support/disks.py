"""Small real filesystems for disk-full and read-only tests (needs root, as the tests run)."""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

__all__ = ["tmpfs"]


@contextlib.contextmanager
def tmpfs(path: Path, size: str, mode: str | None = None) -> Iterator[Path]:
    """A tmpfs of ``size`` (``"64k"``, ``"4m"``) mounted on the new folder ``path``."""
    path.mkdir()
    options = f"size={size}" + (f",mode={mode}" if mode else "")
    result = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {result.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)
