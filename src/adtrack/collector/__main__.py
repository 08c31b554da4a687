"""``python -m adtrack.collector --host H --port P``: run one collector process.

Configuration comes from the ``ADTRACK_*`` environment (see ``adtrack.config.Settings``).
"""

from __future__ import annotations

import argparse
import logging

from adtrack.collector.listener import CollectorOptions, run_collector
from adtrack.config import Settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m adtrack.collector", description=__doc__)
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--writer-id", default=None, help="event-log writer id (stable per worker)")
    parser.add_argument("--reuse-port", action="store_true", help="share the port (SO_REUSEPORT)")
    parser.add_argument(
        "--trust-forwarded-for",
        action="store_true",
        help="take the client IP from X-Forwarded-For (behind a trusted load balancer only; "
        "ADTRACK_TRUST_FORWARDED_FOR=1 does too)",
    )
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    run_collector(
        Settings.from_env(),
        args.host,
        args.port,
        CollectorOptions(args.writer_id, args.reuse_port, args.trust_forwarded_for),
    )


if __name__ == "__main__":
    main()
