"""One DuckDB connection for reading archive files: in memory, UTC, bounded.

DuckDB spills a sort that does not fit in ``memory_limit`` to temporary files; they go to a
folder of this user's own under the system's temporary directory (DuckDB's default would be
the working directory).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import duckdb

from adtrack.adapters.private_files import make_private_dir

__all__ = ["open_duckdb"]


def open_duckdb(memory_limit: str, threads: int) -> duckdb.DuckDBPyConnection:
    spill = Path(tempfile.gettempdir()) / f"adtrack-duckdb-{os.geteuid()}"
    make_private_dir(spill)
    conn = duckdb.connect(
        config={
            "threads": threads,
            "memory_limit": memory_limit,
            "temp_directory": str(spill),
        }
    )
    conn.execute("SET TimeZone = 'UTC'")
    return conn
