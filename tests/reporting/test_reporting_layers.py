"""The reporting read side and the services load no SQL library: storage is reached through
services.ports. (Which adtrack packages they may import is the import contracts' job, in
pyproject.toml; SQLAlchemy is outside them.)"""

from __future__ import annotations

import subprocess
import sys

_IMPORT_EVERY_MODULE = """
import importlib, pkgutil, sys
import adtrack.reporting, adtrack.services
for package in (adtrack.reporting, adtrack.services):
    for info in pkgutil.walk_packages(package.__path__, f"{package.__name__}."):
        importlib.import_module(info.name)
loaded = sorted(sys.modules)
print([m for m in loaded if m.startswith(("adtrack.reporting.", "adtrack.services."))])
print([m for m in loaded if m.split(".")[0] == "sqlalchemy"])
"""


def test_reporting_and_services_load_no_sql() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERY_MODULE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    modules, sql = result.stdout.splitlines()
    for module in ("request", "plan", "engine", "feeds", "feed_stream", "saved_reports"):
        assert f"'adtrack.reporting.{module}'" in modules
    assert "'adtrack.services.ports'" in modules
    assert sql == "[]"
