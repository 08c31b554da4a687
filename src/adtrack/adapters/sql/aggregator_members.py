"""The live aggregators of a group, in the ``aggregator_members`` table
(:class:`adtrack.services.aggregator_members.AggregatorMembership`).

A heartbeat reads the database's clock once, then upserts the member's ``seen_at`` with it and
selects the members seen within the TTL of it. The database's clock, because the members may run
on hosts whose clocks disagree, and a member that one host thinks alive and another dead would
leave partitions unread (or read twice) until the clocks agree. Rows of members gone for long
are deleted by the heartbeats of the others, so the table holds about one row per running
aggregator.
"""

from __future__ import annotations

from sqlalchemy import (
    ColumnElement,
    Double,
    Engine,
    Executable,
    and_,
    cast,
    delete,
    func,
    literal,
    select,
)
from sqlalchemy.dialects import postgresql, sqlite

from adtrack.adapters.sql.tables import aggregator_members

__all__ = ["SqlAggregatorMembers"]

FORGET_AFTER_TTLS = 100  # rows of members silent this many TTLs are deleted


class SqlAggregatorMembers:
    """The members of ``group`` in the database of ``engine``; alive = seen within
    ``ttl_seconds``. Blocking: aggregators call it from a thread."""

    def __init__(self, engine: Engine, *, group: str, ttl_seconds: float = 10.0) -> None:
        dialect = engine.dialect.name
        if dialect not in ("postgresql", "sqlite"):
            raise ValueError(f"unsupported database {dialect!r}: use SQLite or PostgreSQL")
        self._engine = engine
        self._postgres = dialect == "postgresql"
        self.group = group
        self.ttl_seconds = ttl_seconds

    def _now(self) -> ColumnElement[float]:
        """The database's current time in seconds since the epoch (sub-second resolution)."""
        if self._postgres:
            # clock_timestamp(), not now(): the time of the statement, not of the transaction
            return cast(func.extract("epoch", func.clock_timestamp()), Double)
        # SQLite: julianday('now') has millisecond resolution; 2440587.5 is the Unix epoch
        return (func.julianday("now") - literal(2440587.5)) * literal(86400.0)

    def heartbeat(self, member: str) -> list[str]:
        table = aggregator_members
        in_group = table.c.member_group == self.group
        with self._engine.begin() as conn:
            # One reading of the database's clock for the whole heartbeat: the member is seen
            # at that instant and the others are judged against it, so a heartbeat that stalls
            # (a busy database) between its statements never finds its own member gone.
            now = float(conn.execute(select(self._now())).scalar_one())
            values = {"member_group": self.group, "member": member, "seen_at": now}
            upsert: Executable
            if self._postgres:
                pg = postgresql.insert(table).values(values)
                upsert = pg.on_conflict_do_update(
                    index_elements=[table.c.member_group, table.c.member],
                    set_={"seen_at": pg.excluded.seen_at},
                )
            else:
                lite = sqlite.insert(table).values(values)
                upsert = lite.on_conflict_do_update(
                    index_elements=[table.c.member_group, table.c.member],
                    set_={"seen_at": lite.excluded.seen_at},
                )
            conn.execute(upsert)
            conn.execute(
                delete(table).where(
                    and_(in_group, table.c.seen_at < now - self.ttl_seconds * FORGET_AFTER_TTLS)
                )
            )
            live = conn.execute(
                select(table.c.member)
                .where(and_(in_group, table.c.seen_at >= now - self.ttl_seconds))
                .order_by(table.c.member)
            )
            return [row.member for row in live]

    def leave(self, member: str) -> None:
        table = aggregator_members
        with self._engine.begin() as conn:
            conn.execute(
                delete(table).where(
                    and_(table.c.member_group == self.group, table.c.member == member)
                )
            )

    def members(self) -> dict[str, float]:
        """Every member row of the group: member -> seconds since it was last seen."""
        table = aggregator_members
        with self._engine.connect() as conn:
            rows = conn.execute(
                select(table.c.member, self._now() - table.c.seen_at).where(
                    table.c.member_group == self.group
                )
            )
            return {member: float(age) for member, age in rows}
