"""Regenerate migration 0001 from ``adtrack.adapters.sql.tables`` (pre-release only).

Until the first release the schema lives in one migration; run this after editing tables.py.
After a release, add new migrations with ``alembic revision --autogenerate`` instead.
"""

from __future__ import annotations

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
    print("wrote", VERSIONS / "0001_initial_schema.py")


if __name__ == "__main__":
    main()
