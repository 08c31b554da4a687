"""Aggregators sharing partitions: the assignment rule, and the membership table on SQLite and
PostgreSQL (the database's clock decides who is alive)."""

from __future__ import annotations

import time

import pytest
from sqlalchemy import Engine

from adtrack.adapters.sql.aggregator_members import SqlAggregatorMembers
from adtrack.services.aggregator_members import assigned_partitions

PARTITIONS = [f"p{n}" for n in range(8)] + ["legacy"]


@pytest.mark.parametrize("members", [["a"], ["a", "b"], ["a", "b", "c"], list("abcdefghijkl")])
def test_every_partition_goes_to_exactly_one_live_member(members: list[str]) -> None:
    shares = {m: assigned_partitions(PARTITIONS, list(reversed(members)), m) for m in members}
    taken = [p for share in shares.values() for p in share]
    assert sorted(taken) == sorted(PARTITIONS)
    sizes = [len(share) for share in shares.values()]
    assert max(sizes) - min(sizes) <= 1  # as even as the counts allow


def test_partition_i_goes_to_member_i_mod_n_of_the_sorted_members() -> None:
    assert assigned_partitions(PARTITIONS, ["b", "a"], "a") == ["p0", "p2", "p4", "p6", "legacy"]
    assert assigned_partitions(PARTITIONS, ["b", "a"], "b") == ["p1", "p3", "p5", "p7"]
    assert assigned_partitions(PARTITIONS, ["a", "b"], "c") == []  # not live: nothing


def test_heartbeats_make_members_live_until_the_ttl_passes(engine: Engine) -> None:
    members = SqlAggregatorMembers(engine, group="nats:S", ttl_seconds=1.0)
    other_group = SqlAggregatorMembers(engine, group="nats:T", ttl_seconds=1.0)
    assert members.heartbeat("b") == ["b"]
    assert members.heartbeat("a") == ["a", "b"]
    assert other_group.heartbeat("z") == ["z"]  # groups do not see each other
    time.sleep(0.6)
    assert members.heartbeat("a") == ["a", "b"]
    time.sleep(0.6)  # b last seen 1.2 s ago, a 0.6 s ago
    assert members.heartbeat("a") == ["a"]
    assert members.heartbeat("b") == ["a", "b"]  # back as soon as it beats again
    ages = members.members()
    assert set(ages) == {"a", "b"} and all(0 <= age < 1.0 for age in ages.values())


def test_a_member_that_leaves_is_gone_at_once(engine: Engine) -> None:
    members = SqlAggregatorMembers(engine, group="nats:S", ttl_seconds=10.0)
    members.heartbeat("a")
    members.heartbeat("b")
    members.leave("b")
    assert members.heartbeat("a") == ["a"]
