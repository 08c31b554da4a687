"""CPU time of one ``TrackingCore.handle`` for a cached hit: a known tag, client address and user
agent (a fresh cachebuster and fresh header bytes per request, as from the socket), without
HTTP or the event log. Timed with the thread's CPU clock, so that other processes on a busy
machine do not count.

Compare two revisions by running this once per revision, alternately, with the revision's
``src`` first on ``PYTHONPATH`` (``git archive REV src | tar -x -C /tmp/rev``)::

    for i in 1 2 3 4 5; do for rev in before after; do
        PYTHONPATH=/tmp/$rev/src:bench .venv/bin/python bench/core_handle.py --repeat 40
    done; done

and compare the medians. Prints the minimum and median over ``--repeat`` runs of
``--requests`` calls, in µs per call.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import timeit
from pathlib import Path

import adtrack
from _support import BROWSER_UA
from adtrack.adapters.sql import db
from adtrack.adapters.sql.tracker_catalogue import SqlTrackerCatalogue
from adtrack.collector.core import RequestView, TrackingCore
from adtrack.collector.hits import RecentHits
from adtrack.collector.tracker_cache import TrackerCache
from tracking import make_catalogue


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--requests", type=int, default=10_000)
    parser.add_argument("--client-ip", default="8.8.8.8")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'adtrack.db'}"
        db.upgrade(url)
        ids = make_catalogue(url)
        engine = db.make_engine(url)
        cache = TrackerCache(SqlTrackerCatalogue(engine))
        cache.load()
        core = TrackingCore(cache, hits=RecentHits())
        query = f"id={ids['imp']}&cachebuster=".encode()
        requests = [
            RequestView(
                "GET",
                "/imptr",
                query + str(n).encode(),
                user_agent=BROWSER_UA.encode(),  # new bytes each time, as a parsed header is
                client_ip=args.client_ip,
            )
            for n in range(args.requests)
        ]
        handle = core.handle
        for request in requests[:100]:  # the tag, address and agent are known from here on
            assert handle(request).record is not None

        def run() -> None:
            for request in requests:
                handle(request)

        runs = [
            seconds / args.requests * 1e6
            for seconds in timeit.repeat(run, repeat=args.repeat, number=1, timer=time.thread_time)
        ]
        engine.dispose()
    print(
        f"{Path(adtrack.__file__).parent}: min {min(runs):.3f} "
        f"median {statistics.median(runs):.3f} µs per call"
    )


if __name__ == "__main__":
    main()
