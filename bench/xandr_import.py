"""Benchmark of the Xandr catalogue import (``adtrack import xandr``): objects per second.

Builds a catalogue dump of about ``--objects`` objects following the original API's documented
shapes (``tests/support/xandr_dump.py``: advertisers with line items, publishers with
placements, base and conditional payment rules, and an impression and a click tracker per line
item and placement; paged responses of 100 objects, the services in reverse dependency order),
writes it to a temporary folder, and imports it with ``CatalogueImport`` (the code the CLI, the
API and the console run) into a fresh SQLite database and a throw-away PostgreSQL one. For each
it prints the time to read the dump, to import it, and to run it again (every object
unchanged), with objects per second, and the process's peak memory so far.

    .venv/bin/python bench/xandr_import.py                  # about 100,000 objects
    .venv/bin/python bench/xandr_import.py --objects 20000 --backends sqlite

PostgreSQL: a throw-away database on the local server (user postgres), dropped afterwards.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _support import create_database, drop_database, new_database_name

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support

from tests.support.xandr_dump import build_catalogue, write_folder  # noqa: E402

from adtrack.adapters.sql.db import make_engine, upgrade  # noqa: E402
from adtrack.bootstrap import bootstrap  # noqa: E402
from adtrack.config import Settings  # noqa: E402
from adtrack.services.xandr.dump_files import DumpLimits, read_path  # noqa: E402


@contextmanager
def database(backend: str, folder: Path) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / 'bench.db'}"
        return
    name = new_database_name()
    url = create_database(name)
    try:
        yield url
    finally:
        drop_database(name)


def shape(objects: int) -> dict[str, int]:
    """Catalogue proportions for about ``objects`` objects: 10 advertisers with 10 line items
    each, 10 publishers, two trackers of each type per line item and placement."""
    per_placement_pair = 2 * 100 * 2  # (imp + click) x line items x trackers_per_placement
    placements = max(1, round(objects / per_placement_pair))
    per_publisher = max(1, round(placements / 10))
    return {
        "advertisers": 10,
        "line_items_per_advertiser": 10,
        "publishers": 10,
        "placements_per_publisher": per_publisher,
        "trackers_per_placement": 2,
    }


def run(backend: str, dump_folder: Path, total: int, work: Path) -> None:
    with database(backend, work) as url:
        upgrade(url)
        engine = make_engine(url)
        try:
            settings = Settings.from_env(
                {"ADTRACK_DATA_DIR": str(work / "data"), "ADTRACK_DATABASE_URL": url}
            )
            services = bootstrap(settings, engine=engine)
            limits = DumpLimits(max_objects=10 * total)
            started = time.perf_counter()
            dump = read_path(dump_folder, limits)
            read = time.perf_counter() - started
            started = time.perf_counter()
            report = services.xandr_import.run(dump, dry_run=False)
            imported = time.perf_counter() - started
            assert report.applied and not report.refused(), report.refused()[:3]
            started = time.perf_counter()
            again = services.xandr_import.run(read_path(dump_folder, limits), dry_run=False)
            rerun = time.perf_counter() - started
            assert {e.action for e in again.entries} == {"unchanged"}
        finally:
            engine.dispose()
    count = len(dump.objects)
    print(
        f"{backend:10s} objects {count:7d}  read {read:6.2f} s  "
        f"import {imported:6.2f} s = {count / imported:8.0f} objects/s  "
        f"(read + import {count / (read + imported):8.0f}/s)  "
        f"re-run (unchanged) {rerun:6.2f} s = {count / rerun:8.0f} objects/s  "
        f"peak RSS so far {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MiB",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--objects", type=int, default=100_000)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args()
    catalogue = build_catalogue(**shape(args.objects))
    with tempfile.TemporaryDirectory(prefix="adtrack-bench-xandr-") as tmp:
        work = Path(tmp)
        folder = write_folder(work / "dump", catalogue)
        files = len(list(folder.iterdir()))
        print(f"dump: {catalogue.total()} objects in {files} files", flush=True)
        for backend in args.backends.split(","):
            backend_work = work / backend
            backend_work.mkdir()
            run(backend, folder, catalogue.total(), backend_work)


if __name__ == "__main__":
    main()
