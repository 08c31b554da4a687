"""Who is alive among the aggregators sharing an event log's partitions (see
``services/aggregator_members.py`` for how the partitions are shared out).

Adapter: ``adapters/sql/aggregator_members.py``.
"""

from __future__ import annotations

from typing import Protocol

__all__ = ["AggregatorMembership"]


class AggregatorMembership(Protocol):
    """The live members of one group of aggregators (blocking calls: run them in a thread)."""

    def heartbeat(self, member: str) -> list[str]:
        """Record that ``member`` is alive now; the group's live members, sorted (``member``
        among them)."""
        ...

    def leave(self, member: str) -> None:
        """``member`` stops: its partitions go to the others at their next heartbeat."""
        ...
