"""API writes on a full disk answer 503 with the reason and ``Retry-After``, not a 500.

The real thing: the SQLite database lives on a small tmpfs; a filler file takes the rest of
its space, so SQLite's next write fails with ``SQLITE_FULL`` ("database or disk is full")
exactly as on a full production disk. Freeing the space makes writes work again.

A second test reaches the same ``SQLITE_FULL`` through ``PRAGMA max_page_count`` (the page
limit SQLite enforces with the very same error code), so the mapping is also checked where
mounting a filesystem is not permitted.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, text
from sqlalchemy.exc import OperationalError

from adtrack.adapters.sql.db import storage_unavailable
from adtrack.domain.model import Role
from adtrack.web.api.errors import STORAGE_RETRY_AFTER_SECONDS
from tests.support.api_fixtures import API, ApiTestbed, bearer, make_testbed
from tests.support.disks import tmpfs

TMPFS_SIZE = "4m"


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "small-disk", TMPFS_SIZE, mode="0700") as mount_point:
        yield mount_point


def _fill(folder: Path) -> Path:
    """Write zeros until the filesystem refuses (ENOSPC); return the filler file."""
    filler = folder / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        for size in (65536, 512, 1):  # big chunks first, then whatever still fits
            try:
                while os.write(fd, b"\0" * size) == size:
                    pass
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def _admin(api: ApiTestbed) -> TestClient:
    return TestClient(
        api.app, headers=bearer(api.tokens[Role.ADMIN]), raise_server_exceptions=False
    )


def _assert_storage_503(response: Any) -> None:
    assert response.status_code == 503, response.text
    assert response.headers["Retry-After"] == str(STORAGE_RETRY_AFTER_SECONDS)
    detail = response.json()["detail"]
    assert detail[0]["field"] is None
    assert "disk is full" in detail[0]["message"]


def test_writes_on_a_full_disk_answer_503_and_work_again_once_space_is_freed(
    small_disk: Path, tmp_path: Path
) -> None:
    url = f"sqlite:///{small_disk / 'adtrack.db'}"
    for api in make_testbed(url, tmp_path / "data"):
        admin = _admin(api)
        assert admin.post(f"{API}/advertisers", json={"name": "Before"}).status_code == 201
        filler = _fill(small_disk)
        refused = 0
        # A few writes: the first may still fit in a free page; then the disk is full.
        for number in range(20):
            body = {"name": f"Full {number}", "code": "X" * 90 + str(number)}
            response = admin.post(f"{API}/advertisers", json=body)
            if response.status_code == 503:
                _assert_storage_503(response)
                refused += 1
            else:
                assert response.status_code == 201, response.text
        assert refused > 0, "the full disk never refused a write"
        # Reads still work on a full disk.
        assert admin.get(f"{API}/advertisers").status_code == 200
        filler.unlink()
        after = admin.post(f"{API}/advertisers", json={"name": "After"})
        assert after.status_code == 201, after.text


@pytest.fixture
def page_limited_api(tmp_path: Path) -> Iterator[ApiTestbed]:
    for api in make_testbed(f"sqlite:///{tmp_path / 'adtrack.db'}", tmp_path / "data"):
        with api.engine.connect() as conn:
            pages = conn.execute(text("PRAGMA page_count")).scalar_one()
        api.engine.dispose()  # new connections get the limit below

        @event.listens_for(api.engine, "connect")
        def _limit(dbapi_conn: Any, _record: Any, limit: int = pages) -> None:
            dbapi_conn.execute(f"PRAGMA max_page_count={limit}")

        yield api


def test_the_page_limit_raises_the_same_disk_full_error(page_limited_api: ApiTestbed) -> None:
    with pytest.raises(OperationalError) as raised, page_limited_api.engine.begin() as conn:
        conn.execute(
            text("CREATE TABLE filler (blob BLOB)"),
        )
        conn.execute(text("INSERT INTO filler VALUES (zeroblob(1000000))"))
    orig = raised.value.orig
    assert isinstance(orig, sqlite3.OperationalError)
    assert orig.sqlite_errorcode == sqlite3.SQLITE_FULL
    assert str(orig) == "database or disk is full"
    assert storage_unavailable(raised.value) is not None


def test_an_api_write_beyond_the_page_limit_answers_503(page_limited_api: ApiTestbed) -> None:
    admin = _admin(page_limited_api)
    codes = []
    for number in range(200):
        response = admin.post(
            f"{API}/advertisers", json={"name": f"Advertiser {number} " + "n" * 200}
        )
        codes.append(response.status_code)
        if response.status_code == 503:
            _assert_storage_503(response)
            break
        assert response.status_code == 201, response.text
    assert codes[-1] == 503, codes


def test_other_errors_are_not_mistaken_for_a_full_disk() -> None:
    assert storage_unavailable(sqlite3.OperationalError("no such table: x")) is None
    assert storage_unavailable(ValueError("nope")) is None
    assert storage_unavailable(OSError(28, "No space left on device")) is not None
    # PostgreSQL's disk_full (SQLSTATE 53100), as psycopg raises it.
    assert storage_unavailable(psycopg.errors.DiskFull("could not extend file")) is not None
    assert storage_unavailable(psycopg.errors.UniqueViolation("duplicate key")) is None
