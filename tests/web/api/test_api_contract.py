"""Contract tests: schemathesis drives every operation of the OpenAPI spec against the real
app (in process, on a migrated SQLite database with a catalogue in it) with an admin token.

Checks: no server error (5xx), every answer's status is documented for its operation, and
every documented JSON body matches its schema. Bounded and repeatable: a fixed number of
examples per operation, derandomized, no shrinking, no deadline (the machine is shared).
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    response_schema_conformance,
    status_code_conformance,
)

from adtrack.adapters.sql.db import make_engine
from adtrack.bootstrap import bootstrap
from adtrack.config import Settings
from adtrack.domain.model import Role
from adtrack.web.app import create_app
from tests.support.api_fixtures import ApiTestbed, bearer, create_chain, make_testbed

# Runs alone (the serial part of `make test`): schemathesis generates its cases per operation.
pytestmark = pytest.mark.serial

EXAMPLES_PER_OPERATION = 10
ADMIN_EMAIL = "admin@example.com"  # the admin make_testbed creates
CHECKS = [not_a_server_error, status_code_conformance, response_schema_conformance]


@pytest.fixture(scope="module")
def contract_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiTestbed]:
    folder = tmp_path_factory.mktemp("contract")
    for api in make_testbed(f"sqlite:///{folder / 'adtrack.db'}", folder):
        create_chain(api.admin)  # ids 1.. exist, so reads and writes reach the service
        yield api


def _spec() -> dict[str, Any]:
    """The app's OpenAPI document (building it touches no database)."""
    with tempfile.TemporaryDirectory() as folder:
        settings = Settings.from_env(
            {"ADTRACK_DATA_DIR": folder, "ADTRACK_DATABASE_URL": "sqlite://"}
        )
        engine = make_engine("sqlite://")
        try:
            return create_app(bootstrap(settings, engine=engine)).openapi()
        finally:
            engine.dispose()


schema = schemathesis.openapi.from_dict(_spec())


@schema.parametrize()
@settings(
    max_examples=EXAMPLES_PER_OPERATION,
    derandomize=True,
    deadline=None,
    phases=[Phase.explicit, Phase.generate],
    suppress_health_check=list(HealthCheck),
)
def test_every_operation_keeps_its_contract(case: Any, contract_api: ApiTestbed) -> None:
    case.call_and_validate(
        app=contract_api.app, headers=_admin_headers(contract_api), checks=CHECKS
    )


def _admin_headers(api: ApiTestbed) -> dict[str, str]:
    """The admin's token, made valid again when an earlier generated call demoted or
    deactivated the admin or revoked the token (all legitimate calls for an admin), so every
    call is made as an admin."""
    users = api.users
    if not _is_admin(api):
        admin = users.get_user_by_email(ADMIN_EMAIL)
        users.update_user(admin.id, {"role": Role.ADMIN.value, "state": "active"})
        api.tokens[Role.ADMIN] = users.create_token(admin.id, "contract tests").secret
    return bearer(api.tokens[Role.ADMIN])


def _is_admin(api: ApiTestbed) -> bool:
    user = api.users.authenticate(api.tokens[Role.ADMIN])
    return user is not None and user.role is Role.ADMIN and user.is_active


SPEC_PATHS = {
    path: [method.upper() for method in operations]
    for path, operations in schema.raw_schema["paths"].items()
}


def test_options_on_an_advertiser_names_every_method_it_supports(
    contract_api: ApiTestbed,
) -> None:
    response = contract_api.admin.options("/api/v1/advertisers/1")
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, PATCH, DELETE"
    assert response.json()["detail"][0]["message"] == "Method Not Allowed"


@pytest.mark.parametrize("path", sorted(SPEC_PATHS))
def test_allow_lists_the_methods_the_spec_documents(contract_api: ApiTestbed, path: str) -> None:
    concrete = re.sub(r"\{[^}]+\}", "1", path)
    documented = set(SPEC_PATHS[path])
    unsupported = next(m for m in ("PUT", "PATCH", "POST", "DELETE") if m not in documented)
    response = contract_api.admin.request(unsupported, concrete)
    assert response.status_code == 405, (unsupported, concrete, response.text)
    allowed = [m.strip() for m in response.headers["Allow"].split(",")]
    assert set(allowed) == documented, (concrete, allowed)
