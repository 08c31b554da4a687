"""The audience dimensions in a report request: their filters' values checked and normalised,
and the combinations the audience rollups can serve (anything else a 4xx naming the field)."""

from __future__ import annotations

import pytest

from adtrack.domain.errors import ValidationError
from adtrack.reporting.request import (
    AUDIENCE_COMPANIONS,
    DIMENSIONS,
    Interval,
    ReportParameters,
    parse_report_request,
)

WINDOW = {"start": "2026-03-01", "end": "2026-03-08"}


def parse(**params: object) -> object:
    return parse_report_request({**WINDOW, **params})


def refusal(**params: object) -> ValidationError:
    with pytest.raises(ValidationError) as caught:
        parse_report_request({**WINDOW, **params})
    return caught.value


def test_the_four_audience_dimensions_are_dimensions_and_filters() -> None:
    for name in ("country", "device_type", "os", "browser"):
        assert DIMENSIONS[name].column == name
        assert DIMENSIONS[name].audience is not None
        assert name in {f.name for f in ReportParameters.__dataclass_fields__.values()}


def test_filters_are_normalised_deduplicated_and_unknown_is_the_empty_value() -> None:
    request = parse_report_request(
        {
            **WINDOW,
            "group_by": "country,line_item",
            "country": ["us, fr", "FR", "unknown"],
        }
    )
    assert request.group_by == ("country", "line_item")
    assert request.filters == {"country": ("", "FR", "US")}
    devices = parse_report_request(
        {**WINDOW, "device_type": "Mobile,CTV", "os": "iOS", "browser": "Mobile Safari,UNKNOWN"}
    )
    assert devices.filters == {
        "device_type": ("ctv", "mobile"),
        "os": ("iOS",),
        "browser": ("", "Mobile Safari"),
    }


@pytest.mark.parametrize(
    ("params", "field", "words"),
    [
        ({"country": "USA"}, "country", "two-letter"),
        ({"country": "U1"}, "country", "two-letter"),
        ({"country": "\u00df"}, "country", "two-letter"),  # upper-cases to SS
        ({"device_type": "phone"}, "device_type", "desktop, mobile, tablet, ctv, other"),
        ({"os": "x" * 65}, "os", "64"),
        ({"browser": "Chrome\x00"}, "browser", "printable"),
    ],
)
def test_bad_filter_values_are_refused_naming_the_field(
    params: dict[str, object], field: str, words: str
) -> None:
    error = refusal(**params)
    assert error.field == field
    assert words in error.message


def test_country_cannot_be_combined_with_the_device_dimensions() -> None:
    error = refusal(group_by="country,device_type")
    assert error.field == "group_by"
    assert "country" in error.message and "device_type" in error.message
    error = refusal(group_by="os", country="US")
    assert error.field == "country"


@pytest.mark.parametrize("other", ["publisher", "placement", "payment_rule", "tracker"])
def test_audience_dimensions_combine_only_with_their_companions(other: str) -> None:
    grouped = refusal(group_by=f"country,{other}")
    assert grouped.field == "group_by"
    assert other in grouped.message
    for companion in AUDIENCE_COMPANIONS:
        assert companion in grouped.message
    filtered = refusal(group_by="browser", **{DIMENSIONS[other].column: "1"})
    assert filtered.field == DIMENSIONS[other].column


def test_companions_and_every_interval_are_served() -> None:
    for interval in Interval:
        request = parse_report_request(
            {
                **WINDOW,
                "interval": interval.value,
                "timezone": "Europe/Berlin",
                "group_by": "imp_type,advertiser,line_item,device_type,os,browser",
                "line_item_id": "3",
                "country": None,
            }
        )
        assert request.interval is interval
        assert request.filters == {"line_item": (3,)}
