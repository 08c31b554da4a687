"""Shared by the report-history import tests: a small catalogue with the ids the reports below
refer to, and a network analytics report in the API's column names."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from adtrack.adapters.sql import tables as t

NOW = datetime(2026, 1, 1, tzinfo=UTC)

# The API's column names, daily, as the report service writes them (money in currency units).
API_DAILY = """\
day,imp_type_id,advertiser_id,line_item_id,publisher_id,placement_id,imps,clicks,media_cost,\
booked_revenue
2026-02-27,9,1,2,3,4,1000,0,1.250000,2.500000
2026-02-27,10,1,2,3,4,0,7,0.000000,0.000000
2026-02-28,9,1,2,3,0,500,0,0.625000,1.250000
"""


def seed_catalogue(engine: Engine) -> None:
    audit = {"created_at": NOW, "last_modified": NOW}
    with engine.begin() as conn:
        conn.execute(t.advertisers.insert(), [{"id": 1, "name": "Acme", **audit}])
        conn.execute(
            t.line_items.insert(), [{"id": 2, "advertiser_id": 1, "name": "Spring", **audit}]
        )
        conn.execute(
            t.publishers.insert(),
            [{"id": 3, "name": "Daily News", **audit}, {"id": 30, "name": "Other", **audit}],
        )
        conn.execute(
            t.placements.insert(),
            [
                {"id": 4, "publisher_id": 3, "name": "Top banner", **audit},
                {"id": 40, "publisher_id": 30, "name": "Elsewhere", **audit},
            ],
        )
        chain = {"advertiser_id": 1, "line_item_id": 2, "publisher_id": 3, "placement_id": 4}
        conn.execute(
            t.trackers.insert(),
            [
                {"id": 6, "tracker_type": "impression", "name": "Imps", **chain, **audit},
                {"id": 7, "tracker_type": "click", "name": "Clicks", **chain, **audit},
            ],
        )
