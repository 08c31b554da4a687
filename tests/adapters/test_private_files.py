"""The data directory is adtrack's alone: folders 0700, files 0600 (raw events hold addresses
and user agents; the database holds password hashes and tokens)."""

from __future__ import annotations

import stat
import time
from pathlib import Path

import httpx

from adtrack.adapters.private_files import make_private_dir, touch_private_file
from tests.support.api_fixtures import create_chain
from tests.support.server import AdtrackServer


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_make_private_dir_creates_every_missing_level_0700(tmp_path: Path) -> None:
    target = tmp_path / "a" / "b" / "c"
    make_private_dir(target)
    assert [mode(p) for p in (tmp_path / "a", tmp_path / "a" / "b", target)] == [0o700] * 3
    make_private_dir(target)  # again: nothing to do, no error


def test_an_existing_open_folder_is_narrowed_only_when_asked(tmp_path: Path) -> None:
    folder = tmp_path / "data"
    folder.mkdir(mode=0o755)
    folder.chmod(0o755)
    make_private_dir(folder)
    assert mode(folder) == 0o755
    make_private_dir(folder, tighten=True)
    assert mode(folder) == 0o700


def test_touch_private_file_keeps_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "f"
    touch_private_file(path)
    assert mode(path) == 0o600 and path.read_bytes() == b""
    path.write_bytes(b"kept")
    touch_private_file(path)
    assert path.read_bytes() == b"kept"


def test_a_served_data_directory_is_private(adtrack_server: AdtrackServer) -> None:
    with adtrack_server.client() as client:
        chain = create_chain(client)
    imp = chain["impression_tracker"]["id"]
    adtrack_server.wait_for_tracking()
    answer = httpx.get(f"{adtrack_server.tracking_url}/imptr?id={imp}")
    assert answer.status_code == 200
    httpx.get(f"{adtrack_server.base_url}/login")  # makes the console's session secret
    data = adtrack_server.data_dir
    deadline = time.monotonic() + 10
    while not list((data / "eventlog").glob("*.seg*")) and time.monotonic() < deadline:
        time.sleep(0.1)
    folders = [data, *(p for p in data.rglob("*") if p.is_dir())]
    files = [p for p in data.rglob("*") if p.is_file()]
    names = {p.name for p in files}
    assert {"adtrack.db", "session_secret"} <= names, names
    assert any(p.parent.name == "eventlog" for p in files), names
    assert {str(p.relative_to(data)): oct(mode(p)) for p in folders if mode(p) != 0o700} == {}
    assert {str(p.relative_to(data)): oct(mode(p)) for p in files if mode(p) != 0o600} == {}
