"""Shared fixtures. Everything here is real: files, PostgreSQL, NATS JetStream, an SMTP server,
a running ``adtrack serve``. ``make test`` starts the services first (scripts/ensure_services.sh).

Markers (registered below): by the fixtures a test uses, ``postgres`` (PostgreSQL) and ``nats``
(NATS JetStream); by the folder a test lives in, one per top folder (``domain``, ``services``,
``reporting``, ``collector``, ..., ``e2e``, ``browser``: Playwright + chromium); by hand: ``slow``,
``serial``. Select with e.g. ``make test PYTEST_ARGS="-m 'not slow'"`` or ``-m domain``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path

import pytest
from sqlalchemy import Engine

from adtrack.adapters.sql import db
from tests.support import migrated_templates, postgres
from tests.support import nats as nats_support
from tests.support.server import AdtrackServer, start_adtrack_server, stop_all_servers
from tests.support.smtp import PERMANENT_REFUSAL, SmtpServer

# The top folders of tests/, each mirroring a part of src/adtrack (or a kind of test): every test
# in one carries the folder's name as a marker, so `-m domain` or `-m "not e2e"` picks a layer.
FOLDER_MARKERS = {
    "domain": "tests of adtrack.domain (the rules)",
    "services": "tests of adtrack.services (the use cases) on real stores",
    "reporting": "tests of adtrack.reporting (reports, feeds, saved reports) on real stores",
    "collector": "tests of adtrack.collector (the tracking port)",
    "aggregator": "tests of adtrack.aggregator (event log to rollups)",
    "adapters": "tests of adtrack.adapters (SQL, event logs, raw-event archive, files)",
    "web": "tests of adtrack.web (management API and console) through its ASGI app",
    "cli": "tests of adtrack.cli (the `adtrack` commands)",
    "e2e": "start a real `adtrack serve` (or several processes) and cross every layer",
    "browser": "drives Debian's chromium with Playwright",
}
MARKERS = {
    "postgres": "needs the local PostgreSQL server (127.0.0.1:5432)",
    "nats": "needs the local NATS JetStream server (127.0.0.1:4222)",
    "slow": "takes more than a few seconds",
    "serial": "measures timing or load, or drives a browser: `make test` runs these alone, "
    "after the rest has run on two workers",
    **FOLDER_MARKERS,
}
TESTS_DIR = Path(__file__).parent
# Fixtures whose use marks a test, so `-m "not postgres"` etc. select the right tests.
FIXTURE_MARKERS = {
    "pg_url": "postgres",
    "nats_url": "nats",
    "nats_stream_name": "nats",
}


def pytest_configure(config: pytest.Config) -> None:
    migrated_templates.install()  # a migrated database is a copy after the first (see there)
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    # The test SMTP server with credentials deliberately speaks AUTH without TLS.
    config.addinivalue_line(
        "filterwarnings", "ignore:Requiring AUTH while not requiring TLS:UserWarning"
    )


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.is_relative_to(TESTS_DIR):
            folder = item.path.relative_to(TESTS_DIR).parts[0]
            if folder in FOLDER_MARKERS:
                item.add_marker(folder)
        used = set(getattr(item, "fixturenames", ()))
        for fixture_name, marker in FIXTURE_MARKERS.items():
            if fixture_name in used:
                item.add_marker(marker)
        if item.get_closest_marker("browser"):
            item.add_marker("serial")  # chromium's own timeouts do not suit a busy machine


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stop_all_servers()  # safety net: no server outlives the run
    migrated_templates.uninstall()


# --- databases -----------------------------------------------------------------------------------


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    """URL of a new (not yet created) SQLite database file in the test's ``tmp_path``."""
    return f"sqlite:///{tmp_path / 'adtrack.db'}"


@pytest.fixture
def pg_url() -> Iterator[str]:
    """URL of a new empty PostgreSQL database ``adtrack_t_<pid>_<random>`` on 127.0.0.1:5432
    (``postgresql+psycopg://postgres@127.0.0.1:5432/<name>``); dropped WITH (FORCE) afterwards."""
    with postgres.temporary_database() as url:
        yield url


@pytest.fixture(
    params=[
        pytest.param("sqlite", id="sqlite"),
        pytest.param("postgresql", id="postgresql", marks=pytest.mark.postgres),
    ]
)
def db_url(request: pytest.FixtureRequest) -> str:
    """An empty database, once on SQLite and once on PostgreSQL (test ids ``[sqlite]`` and
    ``[postgresql]``)."""
    fixture = "sqlite_url" if request.param == "sqlite" else "pg_url"
    url: str = request.getfixturevalue(fixture)
    return url


@pytest.fixture
def migrated_db_url(db_url: str) -> str:
    """Like ``db_url`` (both backends), with every migration applied (``db.upgrade``)."""
    db.upgrade(db_url)
    return db_url


@pytest.fixture
def engine(migrated_db_url: str) -> Iterator[Engine]:
    """A SQLAlchemy engine (``db.make_engine``) on ``migrated_db_url``; disposed afterwards."""
    eng = db.make_engine(migrated_db_url)
    try:
        yield eng
    finally:
        eng.dispose()


# --- mail ----------------------------------------------------------------------------------------


@pytest.fixture
def smtp_server() -> Iterator[SmtpServer]:
    """An SMTP server (aiosmtpd) on a free loopback port that accepts everything.

    ``.host``, ``.port``, ``.url`` (``smtp://127.0.0.1:PORT``, for ``ADTRACK_SMTP_URL``),
    ``.messages`` (``email.message.EmailMessage`` list), ``.envelopes``, and
    ``.wait_for_messages(count, timeout)`` for mail sent in the background.
    """
    with SmtpServer() as server:
        yield server


@pytest.fixture
def refusing_smtp_server() -> Iterator[SmtpServer]:
    """An SMTP server that answers ``550`` to every RCPT and DATA (a permanent failure);
    ``.attempts`` counts the tries, ``.wait_for_attempts(count, timeout)`` waits for them."""
    with SmtpServer(refuse_with=PERMANENT_REFUSAL) as server:
        yield server


# --- NATS JetStream ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def nats_url() -> str:
    """``nats://127.0.0.1:4222``, checked once per session to answer with JetStream enabled."""
    nats_support.check_jetstream(nats_support.NATS_URL)
    return nats_support.NATS_URL


@pytest.fixture
def nats_stream_name(nats_url: str) -> Iterator[str]:
    """A JetStream stream name unique to this test (``ADTRACK_T_<pid>_<RANDOM>``); the stream,
    if the test created one, is deleted afterwards."""
    name = nats_support.unique_stream_name()
    try:
        yield name
    finally:
        nats_support.delete_stream(name, nats_url)


# --- a running server ----------------------------------------------------------------------------

ServerFactory = Callable[..., AdtrackServer]


@pytest.fixture
def adtrack_server_factory(tmp_path: Path) -> Iterator[ServerFactory]:
    """``factory(env=None, extra_args=(), **options) -> AdtrackServer``: start more servers
    (see ``tests.support.server.start_adtrack_server``); all are stopped after the test."""
    started: list[AdtrackServer] = []

    def factory(
        env: Mapping[str, str] | None = None,
        extra_args: Sequence[str] = (),
        **options: object,
    ) -> AdtrackServer:
        server = start_adtrack_server(tmp_path, env, extra_args, **options)  # type: ignore[arg-type]
        started.append(server)
        return server

    try:
        yield factory
    finally:
        for server in started:
            server.stop()


@pytest.fixture
def adtrack_server(adtrack_server_factory: ServerFactory) -> AdtrackServer:
    """``adtrack serve`` on free ports with an empty data dir (embedded SQLite + local event log).

    ``.base_url``, ``.api_url``, ``.tracking_url``, ``.token`` (first-run admin token),
    ``.auth_headers``, ``.client()`` (httpx, authenticated), ``.data_dir``, ``.process``,
    ``.output()``, ``.kill9()``, ``.stop()``, ``.restart()``. Stopped after the test.
    """
    return adtrack_server_factory()
