"""The ``adtrack`` command line: in-process with Typer's runner, and one real ``adtrack serve``."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import typer
from typer.testing import CliRunner, Result

from adtrack.adapters.sql.db import current_revision, make_engine
from adtrack.bootstrap import build_users
from adtrack.cli.main import app
from adtrack.domain.model import Role
from tests.support.api_fixtures import create_chain
from tests.support.server import AdtrackServer, adtrack_command

runner = CliRunner()


@pytest.fixture
def data_env(tmp_path: Path) -> dict[str, str]:
    """Environment for a fresh data directory (and no database URL override)."""
    return {"ADTRACK_DATA_DIR": str(tmp_path / "data"), "ADTRACK_DATABASE_URL": ""}


def database_url(env: dict[str, str]) -> str:
    return f"sqlite:///{Path(env['ADTRACK_DATA_DIR']) / 'adtrack.db'}"


def invoke(args: list[str], env: dict[str, str]) -> Result:
    return runner.invoke(app, args, env=env)


def all_commands() -> Iterator[list[str]]:
    """Every command and group path, e.g. ``[]``, ``["users"]``, ``["users", "create"]``."""

    def walk(command: Any, path: list[str]) -> Iterator[list[str]]:
        yield path
        for name, sub in getattr(command, "commands", {}).items():
            yield from walk(sub, [*path, name])

    yield from walk(typer.main.get_command(app), [])


@pytest.mark.parametrize("path", list(all_commands()), ids=lambda p: " ".join(p) or "adtrack")
def test_every_command_has_help(path: list[str]) -> None:
    result = runner.invoke(app, [*path, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output


@pytest.mark.parametrize(
    ("setting", "value", "says"),
    [
        ("ADTRACK_FSYNC_INTERVAL_MS", "abc", "must be a whole number, not 'abc'"),
        ("ADTRACK_NATS_ACK_TIMEOUT_SECONDS", "0", "must be more than 0"),
    ],
)
def test_a_bad_setting_stops_any_command_in_one_line_naming_it(
    tmp_path: Path, setting: str, value: str, says: str
) -> None:
    env = {**os.environ, "ADTRACK_DATA_DIR": str(tmp_path / "data"), setting: value}
    for command in (["serve", "--port", "0"], ["users", "list"]):
        result = subprocess.run(
            [*adtrack_command(), *command], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 2, result.stderr
        assert result.stderr == f"adtrack: {setting} {says}\n"
        assert result.stdout == ""
    assert not (tmp_path / "data").exists()  # nothing was started or created


def test_the_required_commands_exist() -> None:
    commands = {" ".join(path) for path in all_commands()}
    assert {
        "serve",
        "db upgrade",
        "users create",
        "users list",
        "tokens create",
        "advertisers list",
        "click-trackers create",
    } <= commands
    serve_help = runner.invoke(app, ["serve", "--help"]).output
    for option in ("--host", "--port", "--tracking-port", "--workers"):
        assert option in serve_help


def test_db_upgrade_creates_the_schema(data_env: dict[str, str]) -> None:
    result = invoke(["db", "upgrade"], data_env)
    assert result.exit_code == 0, result.output
    revision = current_revision(database_url(data_env))
    assert revision is not None and revision in result.output
    assert invoke(["db", "upgrade"], data_env).exit_code == 0  # idempotent


def test_users_create_generates_a_password_and_prints_the_token_last(
    data_env: dict[str, str],
) -> None:
    result = invoke(["users", "create", "--email", "Ops@Example.com", "--role", "admin"], data_env)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    password_lines = [line for line in lines if line.startswith("password: ")]
    assert len(password_lines) == 1
    password = password_lines[0].removeprefix("password: ")
    token = lines[-1]
    assert token == token.strip() and len(token) == 43 and " " not in token

    engine = make_engine(database_url(data_env))
    try:
        users = build_users(engine)
        user = users.authenticate(token)
        assert user is not None and user.email == "ops@example.com" and user.role is Role.ADMIN
        assert users.verify_password("ops@example.com", password) == user
    finally:
        engine.dispose()


def test_users_create_with_a_password_prints_no_password(data_env: dict[str, str]) -> None:
    result = invoke(
        [
            "users",
            "create",
            "--email",
            "t@example.com",
            "--role",
            "trafficker",
            "--password",
            "chosen passphrase",
        ],
        data_env,
    )
    assert result.exit_code == 0, result.output
    assert "password" not in result.output
    assert "chosen passphrase" not in result.output
    engine = make_engine(database_url(data_env))
    try:
        users = build_users(engine)
        assert users.verify_password("t@example.com", "chosen passphrase") is not None
        assert users.authenticate(result.output.splitlines()[-1]) is not None
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--email", "nope", "--role", "admin"], "email"),
        (["--email", "a@example.com", "--role", "admin", "--password", "short"], "password"),
        (["--email", "a@example.com", "--role", "admin", "--password", "password"], "too easy"),
    ],
)
def test_users_create_refusals(data_env: dict[str, str], args: list[str], message: str) -> None:
    result = invoke(["users", "create", *args], data_env)
    assert result.exit_code == 1
    assert message in result.output


def test_users_create_refuses_an_unknown_role_and_duplicates(data_env: dict[str, str]) -> None:
    bad_role = invoke(["users", "create", "--email", "a@example.com", "--role", "root"], data_env)
    assert bad_role.exit_code == 2  # a usage error, listing the choices
    first = invoke(["users", "create", "--email", "a@example.com", "--role", "reporter"], data_env)
    assert first.exit_code == 0
    again = invoke(["users", "create", "--email", "A@example.com", "--role", "admin"], data_env)
    assert again.exit_code == 1
    assert "email" in again.output and "already exists" in again.output


def test_tokens_create_and_users_list(data_env: dict[str, str]) -> None:
    invoke(["users", "create", "--email", "r@example.com", "--role", "reporter"], data_env)
    result = invoke(["tokens", "create", "--email", "R@example.com", "--name", "grafana"], data_env)
    assert result.exit_code == 0, result.output
    token = result.output.splitlines()[-1]
    engine = make_engine(database_url(data_env))
    try:
        user = build_users(engine).authenticate(token)
        assert user is not None and user.email == "r@example.com"
    finally:
        engine.dispose()
    missing = invoke(["tokens", "create", "--email", "nobody@example.com"], data_env)
    assert missing.exit_code == 1 and "nobody@example.com" in missing.output

    listed = invoke(["users", "list"], data_env)
    assert listed.exit_code == 0
    assert "r@example.com" in listed.output and "reporter" in listed.output


# Run in a fresh interpreter: what a users command imports, and nothing the tests loaded before.
_USERS_LIST_THEN_WEB_MODULES = """
import sys
from adtrack.cli.main import app
try:
    app(["users", "list"])
except SystemExit as exit:
    assert exit.code == 0, exit.code
print(sorted(m for m in sys.modules if m.split(".")[0] in ("fastapi", "starlette", "uvicorn")))
print(sorted(m for m in sys.modules if m.startswith("adtrack.web")))
"""


def test_a_users_command_does_not_import_the_web_stack(data_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-c", _USERS_LIST_THEN_WEB_MODULES],
        env={**os.environ, **data_env},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["id", "email", "role", "state", "created_at"]
    assert lines[-2:] == ["[]", "[]"]


def test_catalogue_commands(data_env: dict[str, str]) -> None:
    made = invoke(["advertisers", "create", '{"name": "Acme", "code": "AC"}'], data_env)
    assert made.exit_code == 0, made.output
    advertiser = json.loads(made.output)
    item = invoke(
        [
            "line-items",
            "create",
            json.dumps({"name": "LI", "advertiser_id": advertiser["id"], "revenue_type": "cpc"})[
                :-1
            ]
            + ', "revenue_value": 0.000001}',
        ],
        data_env,
    )
    assert item.exit_code == 0, item.output
    assert json.loads(item.output, parse_float=Decimal)["revenue_value"] == Decimal("0.000001")

    refused = invoke(
        ["line-items", "create", json.dumps({"name": "X", "advertiser_id": 999})], data_env
    )
    assert refused.exit_code == 1 and "advertiser_id" in refused.output
    inexact = invoke(
        [
            "line-items",
            "create",
            '{"name": "X", "advertiser_id": 1, "revenue_value": 0.0000001}',
        ],
        data_env,
    )
    assert inexact.exit_code == 1 and "revenue_value" in inexact.output
    assert invoke(["advertisers", "create", "{not json"], data_env).exit_code == 1

    listed = invoke(["advertisers", "list", "--q", "acm"], data_env)
    assert listed.exit_code == 0
    assert "Acme" in listed.output and "AC" in listed.output
    as_json = invoke(["line-items", "list", "--json"], data_env)
    assert [json.loads(line)["name"] for line in as_json.output.splitlines()] == ["LI"]


# --- a real server ---------------------------------------------------------------------------

FIRST_RUN_PREFIXES = (
    "adtrack: first run - created admin user ",
    "adtrack: admin password: ",
    "adtrack: admin token: ",
)


@pytest.mark.slow
def test_serve_first_run_then_restart(adtrack_server: AdtrackServer) -> None:
    """``adtrack serve`` on free ports with an empty data dir: the first run prints the admin
    lines once, the token drives the whole chain over HTTP, and a restart stays quiet."""
    server = adtrack_server
    output = server.output().splitlines()
    first_run = [i for i, line in enumerate(output) if line.startswith(FIRST_RUN_PREFIXES)]
    assert len(first_run) == 3
    assert [output[i].split(":")[1].strip().split(" ")[0] for i in first_run] == [
        "first",
        "admin",
        "admin",
    ]
    assert first_run == list(range(first_run[0], first_run[0] + 3))  # three lines in a row
    assert output[first_run[0]] == "adtrack: first run - created admin user admin@example.com"
    listening = (
        f"adtrack: listening on http://{server.host}:{server.port} "
        f"(tracking on http://{server.host}:{server.tracking_port})"
    )
    assert listening in output
    assert output.index(listening) > first_run[-1]

    with server.client() as client:
        assert client.get("/healthz").json() == {"status": "ok"}
        chain = create_chain(client)
        assert chain["click_tracker"]["landing_page_url"].startswith("https://")
        assert httpx.get(f"{server.api_url}/advertisers").status_code == 401

    token = server.token
    server.restart()
    output_after = server.output()
    assert sum(line.startswith(FIRST_RUN_PREFIXES) for line in output_after.splitlines()) == 3
    assert output_after.count(listening) == 2
    with server.client(token=token) as client:
        trackers = client.get("/api/v1/impression-trackers").json()
        assert [t["id"] for t in trackers["items"]] == [chain["impression_tracker"]["id"]]


def test_serve_on_a_busy_port_fails_before_the_first_run_lines(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ADTRACK_")}
    env["ADTRACK_DATA_DIR"] = str(tmp_path / "data")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        result = subprocess.run(
            [*adtrack_command(), "serve", "--port", str(port)],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert result.returncode == 1
    assert f"adtrack: cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "address already in use" in result.stderr.lower()
    # The admin secrets were not spent on a start nobody could use.
    assert "adtrack: admin token:" not in result.stdout
    engine = make_engine(f"sqlite:///{tmp_path / 'data' / 'adtrack.db'}")
    try:
        assert build_users(engine).list_users() == []
    finally:
        engine.dispose()


def test_users_revoke_sessions_and_unlock(data_env: dict[str, str]) -> None:
    from datetime import timedelta
    from functools import partial

    from adtrack.adapters.sql.users import SqlUserUnitOfWork
    from adtrack.services.sign_in_throttle import SignInThrottle, sign_in

    created = invoke(
        [
            "users",
            "create",
            "--email",
            "s@example.com",
            "--role",
            "reporter",
            "--password",
            "chosen passphrase",
        ],
        data_env,
    )
    assert created.exit_code == 0, created.output
    engine = make_engine(database_url(data_env))
    try:
        users = build_users(engine)
        user = users.get_user_by_email("s@example.com")
        users.open_session(user.id, "laptop-secret", timedelta(hours=1))
        users.open_session(user.id, "phone-secret", timedelta(hours=1))
        revoked = invoke(["users", "revoke-sessions", "--email", "S@example.com"], data_env)
        assert revoked.exit_code == 0, revoked.output
        assert "ended 2 console sessions of s@example.com" in revoked.output
        assert users.session_user(user.id, "laptop-secret") is None

        throttle = SignInThrottle(partial(SqlUserUnitOfWork, engine))
        for attempt in range(5):
            sign_in(users, throttle, "s@example.com", f"wrong {attempt}", None)
        assert throttle.refusal("s@example.com", None) is not None
        unlocked = invoke(["users", "unlock", "--email", "s@example.com"], data_env)
        assert unlocked.exit_code == 0 and "unlocked s@example.com" in unlocked.output
        assert throttle.refusal("s@example.com", None) is None
        assert sign_in(users, throttle, "s@example.com", "chosen passphrase", None).user == user
    finally:
        engine.dispose()
    missing = invoke(["users", "revoke-sessions", "--email", "nobody@example.com"], data_env)
    assert missing.exit_code == 1 and "no user" in missing.output
