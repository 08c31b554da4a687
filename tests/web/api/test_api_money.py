"""Money through the API is exact: decimals in, integer micros stored, the same decimals out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import select

from adtrack.adapters.sql import tables
from adtrack.domain.model import LineItem
from adtrack.domain.money import from_micros
from adtrack.domain.validation import MONEY_MAX_MICROS
from adtrack.services.exact_json import dumps
from adtrack.services.json_fields import from_domain, to_domain
from tests.support.api_fixtures import (
    API,
    ApiTestbed,
    create_chain,
    created,
    error_fields,
    make_testbed,
)


# Every test creates objects of its own and reads them back by id: one database per module.
@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiTestbed]:
    folder = tmp_path_factory.mktemp("money")
    yield from make_testbed(f"sqlite:///{folder / 'adtrack.db'}", folder)


@pytest.fixture(scope="module")
def parents(api: ApiTestbed) -> dict[str, int]:
    chain = create_chain(api.admin)
    return {
        "advertiser_id": chain["advertiser"]["id"],
        "publisher_id": chain["publisher"]["id"],
    }


def post_raw(api: ApiTestbed, path: str, raw_json: str) -> Any:
    """POST a JSON text exactly as written (no client-side float parsing or re-encoding)."""
    return api.admin.post(
        f"{API}/{path}", content=raw_json.encode(), headers={"Content-Type": "application/json"}
    )


def stored(api: ApiTestbed, table: Any, column: str, object_id: int) -> int:
    with api.engine.connect() as conn:
        value = conn.execute(select(table.c[column]).where(table.c.id == object_id)).scalar_one()
    return int(value)


EXACT_AMOUNTS = [
    ("2.5", 2_500_000),
    ("0.000001", 1),
    ("999999.999999", 999_999_999_999),
    ("0.1", 100_000),
    ("0.3", 300_000),
    ("123456.789012", 123_456_789_012),
    ("0", 0),
    ("7", 7_000_000),
    ("1E+2", 100_000_000),
    ("2.500000", 2_500_000),
]


@pytest.mark.parametrize(("text", "micros"), EXACT_AMOUNTS)
def test_line_item_revenue_round_trips_exactly(
    api: ApiTestbed, parents: dict[str, int], text: str, micros: int
) -> None:
    raw = (
        f'{{"name": "LI", "advertiser_id": {parents["advertiser_id"]}, '
        f'"revenue_type": "cpm", "revenue_value": {text}}}'
    )
    response = post_raw(api, "line-items", raw)
    assert response.status_code == 201, response.text
    assert stored(api, tables.line_items, "revenue_value_micros", response.json()["id"]) == micros
    # The answer carries the exact digits as a JSON number (never 1e-06 or 2.4999999).
    expected = format(from_micros(micros), "f")
    assert f'"revenue_value":{expected}' in response.text
    fetched = api.admin.get(f"{API}/line-items/{response.json()['id']}")
    assert json.loads(fetched.text, parse_float=Decimal)["revenue_value"] == Decimal(text)


@pytest.mark.parametrize("field", ["cost_cpm", "cost_cpc"])
@pytest.mark.parametrize(("text", "micros"), EXACT_AMOUNTS[:3])
def test_payment_rule_costs_round_trip_exactly(
    api: ApiTestbed, parents: dict[str, int], field: str, text: str, micros: int
) -> None:
    pricing = field.removeprefix("cost_")
    raw = (
        f'{{"name": "R", "publisher_id": {parents["publisher_id"]}, '
        f'"pricing_type": "{pricing}", "{field}": {text}}}'
    )
    response = post_raw(api, "payment-rules", raw)
    assert response.status_code == 201, response.text
    rule_id = response.json()["id"]
    assert stored(api, tables.payment_rules, f"{field}_micros", rule_id) == micros
    assert f'"{field}":{format(from_micros(micros), "f")}' in response.text
    # And through PATCH, given as a decimal string.
    patched = api.admin.patch(f"{API}/payment-rules/{rule_id}", json={field: "0.000002"})
    assert patched.status_code == 200, patched.text
    assert stored(api, tables.payment_rules, f"{field}_micros", rule_id) == 2
    assert f'"{field}":0.000002' in patched.text


@pytest.mark.parametrize(
    ("text", "ppm"), [("0.5", 500_000), ("0.000001", 1), ("1", 1_000_000), ("0.333333", 333_333)]
)
def test_revshare_round_trips_exactly(
    api: ApiTestbed, parents: dict[str, int], text: str, ppm: int
) -> None:
    raw = f'{{"name": "R", "publisher_id": {parents["publisher_id"]}, "revshare": {text}}}'
    response = post_raw(api, "payment-rules", raw)
    assert response.status_code == 201, response.text
    assert stored(api, tables.payment_rules, "revshare_ppm", response.json()["id"]) == ppm
    assert json.loads(response.text, parse_float=Decimal)["revshare"] == Decimal(text)


@pytest.mark.parametrize(
    "value",
    [
        "1.0000001",  # 7 decimals
        "0.0000001",
        "2.4999999999999999999",  # what a float would round to 2.5
        "NaN",
        "Infinity",
        "-Infinity",
        '"NaN"',
        '"abc"',
        '"2.5.1"',
        '""',
        "true",
        "[]",
        "{}",
        "null",
        "-1",
        "-0.000001",
        "1000000",
        "1e999999",
        "1e-999999",
    ],
)
@pytest.mark.parametrize("field", ["revenue_value", "cost_cpm", "cost_cpc", "revshare"])
def test_inexact_or_non_numeric_money_is_refused(
    api: ApiTestbed, parents: dict[str, int], field: str, value: str
) -> None:
    if field == "revenue_value":
        path = "line-items"
        raw = f'{{"name": "X", "advertiser_id": {parents["advertiser_id"]}, "{field}": {value}}}'
    else:
        path = "payment-rules"
        raw = f'{{"name": "X", "publisher_id": {parents["publisher_id"]}, "{field}": {value}}}'
    response = post_raw(api, path, raw)
    assert response.status_code == 422, response.text
    assert error_fields(response) == [field], response.text


def test_revshare_above_one_is_refused(api: ApiTestbed, parents: dict[str, int]) -> None:
    body = {"name": "R", "publisher_id": parents["publisher_id"], "revshare": 1.000001}
    response = api.admin.post(f"{API}/payment-rules", json=body)
    assert response.status_code == 422
    assert error_fields(response) == ["revshare"]


def test_publisher_base_rule_money_is_exact(api: ApiTestbed) -> None:
    publisher = created(
        api.admin,
        "publishers",
        {"name": "P", "base_rule": {"pricing_type": "cpm", "cost_cpm": "0.123456"}},
    )
    rules = api.admin.get(
        f"{API}/payment-rules", params={"publisher_id": publisher["id"], "is_base": "true"}
    )
    base = json.loads(rules.text, parse_float=Decimal)["items"][0]
    assert base["cost_cpm"] == Decimal("0.123456")
    assert stored(api, tables.payment_rules, "cost_cpm_micros", base["id"]) == 123_456
    refused = api.admin.post(
        f"{API}/publishers", json={"name": "Q", "base_rule": {"revshare": "0.1234567"}}
    )
    assert refused.status_code == 422
    assert error_fields(refused) == ["base_rule.revshare"]


@given(st.integers(min_value=0, max_value=MONEY_MAX_MICROS))
def test_micros_survive_the_json_edge_both_ways(micros: int) -> None:
    """Any storable amount -> API JSON -> parsed as the API parses -> the same micros."""
    shown = from_domain(LineItem(id=1, advertiser_id=1, name="x", revenue_value_micros=micros))
    text = dumps({"revenue_value": shown["revenue_value"]}).decode()
    parsed = json.loads(text, parse_float=Decimal)
    number = text.removeprefix('{"revenue_value":').removesuffix("}")
    assert number.replace(".", "").isdigit(), number  # plain digits, never an exponent
    assert to_domain(parsed) == {"revenue_value_micros": micros}
