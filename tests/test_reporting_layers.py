"""The reporting read side and the services import no SQL, adapters, settings or entry points:
storage is reached through services.ports, settings come in as plain values (bootstrap)."""

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
ours = [m.split(".")[1] for m in loaded if m.startswith("adtrack.")]
print(sorted({m for m in ours if m in ("adapters", "config", "bootstrap")}))
print(sorted({m for m in ours if m in ("web", "cli", "runtime")}))
"""


def test_reporting_and_services_import_no_sql_adapters_or_settings() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _IMPORT_EVERY_MODULE],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    modules, sql, storage_or_settings, entry_points = result.stdout.splitlines()
    for module in ("request", "plan", "engine", "feeds", "feed_stream", "saved_reports"):
        assert f"'adtrack.reporting.{module}'" in modules
    assert "'adtrack.services.ports'" in modules
    assert (sql, storage_or_settings, entry_points) == ("[]", "[]", "[]")
