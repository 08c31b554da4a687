"""Regenerate migration 0001 from ``adtrack.adapters.sql.tables`` (pre-release only).

Until the first release the tables live in one migration; run this after editing tables.py.
Later migrations hold what autogenerate cannot see (0002: PostgreSQL's ``sum_bigint``
aggregate) and stay on top of the regenerated 0001. After a release, add new migrations with
``alembic revision --autogenerate`` instead.
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
        # The later migrations step aside while 0001 is generated (they name it as their base).
        later = [(path, Path(tmp) / path.name) for path in VERSIONS.glob("0[0-9][0-9][0-9]_*.py")]
        for path, aside in later:
            path.rename(aside)
        try:
            url = f"sqlite:///{Path(tmp) / 'empty.db'}"
            cfg = alembic_config(url)
            command.revision(cfg, message="initial schema", autogenerate=True, rev_id="0001")
        finally:
            for path, aside in later:
                aside.rename(path)
    for new in VERSIONS.glob("0001_*.py"):
        new.rename(VERSIONS / "0001_initial_schema.py")
    target = VERSIONS / "0001_initial_schema.py"
    # Keep the generated file as clean as the rest of the tree (the test command lints it).
    subprocess.run([sys.executable, "-m", "ruff", "check", "--fix", "-q", str(target)], check=False)
    subprocess.run([sys.executable, "-m", "ruff", "format", "-q", str(target)], check=False)
    print("wrote", target)


if __name__ == "__main__":
    main()
