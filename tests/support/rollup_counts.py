"""What the aggregator counted: events as the rollups see them (raw events are not in SQL)."""

from __future__ import annotations

from sqlalchemy import Engine, func, select

from adtrack.adapters.sql import tables as t

__all__ = ["counted_events"]


def counted_events(engine: Engine) -> int:
    """Every event rolled up: valid and invalid impressions and clicks, over all hours."""
    r = t.rollup_hourly.c
    total = func.coalesce(func.sum(r.imps + r.clicks + r.invalid_imps + r.invalid_clicks), 0)
    with engine.connect() as conn:
        return int(conn.execute(select(total)).scalar_one())
