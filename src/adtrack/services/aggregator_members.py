"""Aggregators sharing the partitions of an event log: who is alive, and who reads what.

Several aggregators on one database read one JetStream stream. Correctness never depends on
who reads which partition (a batch commits only if the stored position still equals its
start), but work does: two aggregators reading the same partition each read every message and
one of them throws its batches away. So each aggregator records that it is alive
(``AggregatorMembership.heartbeat``, a port), and partition ``i`` of the sorted partition list
goes to member ``i % n`` of the sorted live members (:func:`assigned_partitions`). Every member
computes the same answer from the same list, without talking to the others.

The adapter is ``adapters/sql/aggregator_members.py`` (a table in the aggregators' database,
with the database's clock deciding who is alive, so hosts' clocks need not agree).
"""

from __future__ import annotations

from collections.abc import Sequence

__all__ = ["assigned_partitions"]


def assigned_partitions(
    partitions: Sequence[str], members: Sequence[str], member: str
) -> list[str]:
    """The partitions ``member`` reads: partition ``i`` (in the given order) goes to the
    ``i % n``-th of the ``n`` sorted ``members``; none if ``member`` is not among them."""
    live = sorted(set(members))
    if member not in live:
        return []
    mine = live.index(member)
    return [p for i, p in enumerate(partitions) if i % len(live) == mine]
