"""Secrets kept in the data directory, and the token secret chosen from the settings."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from adtrack.adapters.secret_files import load_or_create_secret
from adtrack.bootstrap import TOKEN_SECRET_FILE, token_secret
from adtrack.config import Settings


def test_created_once_private_and_kept(tmp_path: Path) -> None:
    path = tmp_path / "data" / "token_secret"
    first = load_or_create_secret(path)
    assert len(first) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert load_or_create_secret(path) == first


def test_processes_starting_at_once_agree(tmp_path: Path) -> None:
    path = tmp_path / "token_secret"
    with ThreadPoolExecutor(8) as pool:
        secrets = set(pool.map(lambda _: load_or_create_secret(path), range(16)))
    assert secrets == {path.read_text()}


def test_the_setting_wins_and_a_short_one_is_refused(tmp_path: Path) -> None:
    base = {"ADTRACK_DATA_DIR": str(tmp_path)}
    kept = token_secret(Settings.from_env(base))
    assert kept == (tmp_path / TOKEN_SECRET_FILE).read_bytes()
    configured = "x" * 32
    assert token_secret(Settings.from_env({**base, "ADTRACK_TOKEN_SECRET": configured})) == (
        configured.encode()
    )
    with pytest.raises(ValueError, match="ADTRACK_TOKEN_SECRET"):
        token_secret(Settings.from_env({**base, "ADTRACK_TOKEN_SECRET": "x" * 31}))
