"""Regenerate migration 0001 from ``adtrack.adapters.sql.tables`` (pre-release only).

Until the first release the schema lives in one migration; run this after editing tables.py.
After a release, add new migrations with ``alembic revision --autogenerate`` instead.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from alembic import command

from adtrack.adapters.sql.db import MIGRATIONS_DIR, alembic_config

VERSIONS = MIGRATIONS_DIR / "versions"


def main() -> None:
    for old in VERSIONS.glob("0001_*.py"):
        old.unlink()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'empty.db'}"
        cfg = alembic_config(url)
        command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
    for new in VERSIONS.glob("0001_*.py"):
        new.rename(VERSIONS / "0001_initial_schema.py")
    target = VERSIONS / "0001_initial_schema.py"
    # Keep the generated file as clean as the rest of the tree (the test command lints it).
    subprocess.run([sys.executable, "-m", "ruff", "check", "--fix", "-q", str(target)], check=False)
    subprocess.run([sys.executable, "-m", "ruff", "format", "-q", str(target)], check=False)
    print("wrote", target)


if __name__ == "__main__":
    main()
