"""Field validators: examples for each refusal, and hypothesis properties over their ranges."""

from __future__ import annotations

import string
from datetime import UTC, datetime, timedelta, timezone
from enum import StrEnum

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from adtrack.domain import parsing
from adtrack.domain.errors import ValidationError
from adtrack.domain.model import PPM, PricingType, State
from adtrack.domain.money import from_micros, to_micros
from adtrack.domain.validation import (
    CODE_MAX,
    MONEY_MAX_MICROS,
    NAME_MAX,
    URL_MAX,
    check_date_range,
    clean_code,
    clean_datetime,
    clean_enum,
    clean_id,
    clean_id_set,
    clean_landing_page_url,
    clean_money_micros,
    clean_name,
    clean_optional_enum,
    clean_ppm,
    clean_priority,
)

CONTROL = [chr(c) for c in range(0x20)] + ["\x7f", "\x85"]

# Printable text without control characters (what a user may type in a name).
label_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs")), min_size=0, max_size=300
)


# ---------------------------------------------------------------------------------------------
# Names
# ---------------------------------------------------------------------------------------------


@given(label_text)
def test_name_is_trimmed_or_refused(raw: str) -> None:
    stripped = raw.strip()
    if not stripped or len(stripped) > NAME_MAX:
        with pytest.raises(ValidationError) as info:
            clean_name(raw)
        assert info.value.field == "name"
    else:
        assert clean_name(raw) == stripped


@given(label_text.filter(lambda s: s.strip()), st.sampled_from(CONTROL), st.data())
def test_name_with_a_control_character_inside_is_refused(
    raw: str, control: str, data: st.DataObject
) -> None:
    core = raw.strip()[:200]
    assume(core)
    at = data.draw(st.integers(min_value=1, max_value=len(core)))
    with pytest.raises(ValidationError, match="control"):
        clean_name(core[:at] + control + core[at:] + "x")


@pytest.mark.parametrize("value", [None, 3, b"bytes", ["a"]])
def test_name_must_be_text(value: object) -> None:
    with pytest.raises(ValidationError, match="must be a text"):
        clean_name(value)


def test_name_limits_and_field() -> None:
    assert clean_name("x" * NAME_MAX) == "x" * NAME_MAX
    with pytest.raises(ValidationError, match="at most 255"):
        clean_name("x" * (NAME_MAX + 1))
    with pytest.raises(ValidationError) as info:
        clean_name("", "base_rule.name")
    assert info.value.field == "base_rule.name"
    assert clean_name("Émile 👩‍👩‍👧") == "Émile 👩‍👩‍👧"  # ZWJ sequences are fine


# ---------------------------------------------------------------------------------------------
# Codes
# ---------------------------------------------------------------------------------------------

code_text = st.text(
    alphabet=st.characters(blacklist_categories=("Cc", "Cs", "Cf", "Zs", "Zl", "Zp")),
    min_size=1,
    max_size=CODE_MAX,
).filter(lambda s: not any(ch.isspace() for ch in s))


@given(code_text)
def test_code_without_whitespace_is_kept(code: str) -> None:
    assert clean_code(code) == code
    assert clean_code(f"  {code}\t") == code


@given(code_text, st.sampled_from([" ", "\t", "\n", "\u00a0", "\u2003", "\u200b"]), st.data())
def test_code_with_inner_space_is_refused(code: str, space: str, data: st.DataObject) -> None:
    code = code[: CODE_MAX - 2]  # stays within the length limit: refused for the space only
    at = data.draw(st.integers(min_value=1, max_value=len(code)))
    with pytest.raises(ValidationError) as info:
        clean_code(code[:at] + space + code[at:] + "z")
    assert info.value.field == "code"
    assert "spaces" in info.value.message


@given(st.integers(min_value=CODE_MAX + 1, max_value=400))
def test_code_length_is_bounded(length: int) -> None:
    with pytest.raises(ValidationError, match="at most 100"):
        clean_code("c" * length)


@pytest.mark.parametrize("empty", [None, "", "   "])
def test_empty_code_means_none(empty: str | None) -> None:
    assert clean_code(empty) is None


# ---------------------------------------------------------------------------------------------
# Landing-page URLs
# ---------------------------------------------------------------------------------------------

hosts = st.from_regex(r"[a-z0-9]([a-z0-9-]{0,20}[a-z0-9])?(\.[a-z]{2,6}){1,2}", fullmatch=True)
paths = st.text(
    alphabet=string.ascii_letters + string.digits + "/-._~%!$&'()*+,;=:@?#", max_size=200
)


@given(st.sampled_from(["http", "https", "HTTPS"]), hosts, paths)
def test_http_urls_are_accepted(scheme: str, host: str, path: str) -> None:
    url = f"{scheme}://{host}/{path}"
    assert clean_landing_page_url(url) == url
    assert clean_landing_page_url(f"  {url} ") == url


@given(
    st.sampled_from(["javascript", "data", "file", "ftp", "vbscript", "mailto", "blob", "ws"]),
    paths,
)
def test_other_schemes_are_refused(scheme: str, rest: str) -> None:
    with pytest.raises(ValidationError) as info:
        clean_landing_page_url(f"{scheme}:{rest}")
    assert info.value.field == "landing_page_url"


@given(hosts, st.sampled_from([" ", "\r", "\n", "\r\n", "\t", "\x00", "\u200b"]), paths)
def test_urls_with_whitespace_or_controls_are_refused(host: str, bad: str, path: str) -> None:
    with pytest.raises(ValidationError):
        clean_landing_page_url(f"https://{host}/{bad}{path}x")


@pytest.mark.parametrize(
    "url",
    [
        "javascript:alert(1)",
        " JAVASCRIPT:alert(1)",
        "data:text/html;base64,PHNjcmlwdD4=",
        "https://",
        "https:///path",
        "http:/example.com",
        "example.com/path",
        "//example.com",
        "https://example.com:99999/",
        "https://exa\\mple.com/",
        "https://example.com/" + "a" * URL_MAX,
    ],
)
def test_bad_urls(url: str) -> None:
    with pytest.raises(ValidationError):
        clean_landing_page_url(url)


def test_empty_url_means_none() -> None:
    assert clean_landing_page_url(None) is None
    assert clean_landing_page_url("  ") is None


# ---------------------------------------------------------------------------------------------
# Money, revshare, priority, ids
# ---------------------------------------------------------------------------------------------


@given(st.integers())
def test_money_range(micros: int) -> None:
    if 0 <= micros <= MONEY_MAX_MICROS:
        assert clean_money_micros(micros, "cost_cpm") == micros
    else:
        with pytest.raises(ValidationError) as info:
            clean_money_micros(micros, "cost_cpm")
        assert info.value.field == "cost_cpm"


@given(st.decimals(min_value=0, max_value="999999.999999", places=6))
def test_every_api_amount_up_to_the_maximum_fits(amount: object) -> None:
    micros = to_micros(amount)  # type: ignore[arg-type]
    assert clean_money_micros(micros, "revenue_value") == micros
    assert from_micros(micros) == amount


@pytest.mark.parametrize("value", [True, False, 1.5, "10", None])
def test_money_must_be_integer_micros(value: object) -> None:
    with pytest.raises(ValidationError, match="integer"):
        clean_money_micros(value, "cost_cpc")


@given(st.integers())
def test_revshare_range(ppm: int) -> None:
    if 0 <= ppm <= PPM:
        assert clean_ppm(ppm) == ppm
    else:
        with pytest.raises(ValidationError) as info:
            clean_ppm(ppm)
        assert (info.value.field, info.value.message) == ("revshare", "must be between 0 and 1")


@given(st.integers(min_value=-100, max_value=100))
def test_priority_range(priority: int) -> None:
    if 1 <= priority <= 10:
        assert clean_priority(priority) == priority
    else:
        with pytest.raises(ValidationError, match="between 1 and 10"):
            clean_priority(priority)


@given(st.integers())
def test_ids_are_positive_32_bit(value: int) -> None:
    if 1 <= value <= 2**31 - 1:
        assert clean_id(value, "line_item_id") == value
    else:
        with pytest.raises(ValidationError):
            clean_id(value, "line_item_id")


def test_id_sets() -> None:
    assert clean_id_set([3, 1, 3], "advertiser_ids") == frozenset({1, 3})
    assert clean_id_set(None, "advertiser_ids") == frozenset()
    for bad in ("1,2", [0], [True], 5):
        with pytest.raises(ValidationError) as info:
            clean_id_set(bad, "advertiser_ids")
        assert info.value.field == "advertiser_ids"


# ---------------------------------------------------------------------------------------------
# Enums and dates
# ---------------------------------------------------------------------------------------------


def test_enums_from_members_or_values() -> None:
    assert clean_enum(State, "inactive", "state") is State.INACTIVE
    assert clean_enum(State, " Active ", "state") is State.ACTIVE
    assert clean_enum(PricingType, PricingType.CPC, "pricing_type") is PricingType.CPC
    with pytest.raises(ValidationError) as info:
        clean_enum(PricingType, "dynamic", "pricing_type")
    assert info.value.message == "must be one of 'revshare', 'cpm', 'cpc' (got 'dynamic')"
    assert clean_optional_enum(State, None, "state") is None


@given(st.text(max_size=20))
def test_enum_accepts_exactly_its_values(text: str) -> None:
    class Colour(StrEnum):
        RED = "red"

    if text.strip().lower() == "red":
        assert clean_enum(Colour, text, "colour") is Colour.RED
    else:
        with pytest.raises(ValidationError):
            clean_enum(Colour, text, "colour")


@given(
    st.datetimes(
        min_value=parsing.INSTANT_MIN,
        max_value=parsing.INSTANT_MAX,
        timezones=st.just(timezone(timedelta(hours=5, minutes=30))),
    ),
)
def test_aware_datetimes_become_utc(value: datetime) -> None:
    cleaned = clean_datetime(value, "start_date")
    assert cleaned == value and cleaned is not None and cleaned.tzinfo is UTC


def test_naive_and_bad_datetimes_are_refused() -> None:
    with pytest.raises(ValidationError, match="time zone"):
        clean_datetime(datetime(2024, 1, 1), "start_date")
    with pytest.raises(ValidationError, match="time zone"):
        clean_datetime("2024-01-01T00:00:00", "end_date")
    with pytest.raises(ValidationError, match="ISO 8601"):
        clean_datetime("next tuesday", "end_date")
    with pytest.raises(ValidationError):
        clean_datetime(20240101, "end_date")
    assert clean_datetime("2024-01-01T01:00:00+01:00", "x") == datetime(2024, 1, 1, tzinfo=UTC)


def test_date_range() -> None:
    day = datetime(2024, 1, 1, tzinfo=UTC)
    check_date_range(day, day + timedelta(microseconds=1))
    check_date_range(None, day)
    check_date_range(day, None)
    for end in (day, day - timedelta(days=1)):
        with pytest.raises(ValidationError) as info:
            check_date_range(day, end)
        assert info.value.field == "end_date"


@pytest.mark.parametrize(
    "url",
    [
        "https://user@shop.example/",
        "https://good.example@evil.example/",
        "https://user:pw@shop.example:8443/x",
        "https://good.example%40evil.example/",
        "https://good.example%5C@evil.example/",
    ],
)
def test_landing_page_with_a_user_name_is_refused(url: str) -> None:
    with pytest.raises(ValidationError, match="user name") as info:
        clean_landing_page_url(url)
    assert info.value.field == "landing_page_url"


def test_an_at_sign_after_the_host_is_fine_in_a_landing_page() -> None:
    url = "https://shop.example/p/@deal?ref=a@b#x@y"
    assert clean_landing_page_url(url) == url


# --- total parsers (domain/parsing.py) -------------------------------------------------------


@given(st.text(max_size=40))
def test_every_parser_is_total_over_any_text(text: str) -> None:
    """Any text either parses or is refused with a ValidationError naming the field."""
    zone = timezone(timedelta(hours=-12))
    parsers = (
        lambda: parsing.parse_id(text, "f"),
        lambda: parsing.parse_id_list(text, "f"),
        lambda: parsing.parse_int(text, "f", low=-(2**63), high=2**63 - 1),
        lambda: parsing.parse_decimal(text, "f"),
        lambda: parsing.parse_date(text, "f"),
        lambda: parsing.parse_local_datetime(text, "f", tz=zone),
    )
    for parse in parsers:
        try:
            parse()
        except ValidationError as exc:
            assert exc.field == "f"


@given(st.integers(min_value=1, max_value=parsing.ID_MAX))
def test_ids_in_range_round_trip(number: int) -> None:
    assert parsing.parse_id(str(number), "id") == number
    assert parsing.parse_id_list(f"{number},{number}", "ids") == (number,)


@pytest.mark.parametrize(
    "text",
    ["\u00b2", "\u0663", "1_000", "+1", "-1", "0", "1.0", "0x10", str(2**31), "9" * 20, "9" * 5000],
)
def test_ids_are_ascii_digits_within_the_id_columns(text: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parsing.parse_id(text, "advertiser_id")
    assert refused.value.field == "advertiser_id"


def test_report_filters_may_name_id_zero() -> None:
    assert parsing.parse_id_list(["0,2", "1"], "placement_id", low=0) == (0, 1, 2)


@pytest.mark.parametrize(
    "text", ["1e3", "NaN", "Infinity", "\u0661.5", "1.2.3", ".", "-", "1" * 16]
)
def test_decimals_are_plain_ascii_and_bounded(text: str) -> None:
    with pytest.raises(ValidationError):
        parsing.parse_decimal(text, "cost_cpm")


def test_decimals_keep_their_exact_value() -> None:
    assert str(parsing.parse_decimal(" 2.500000 ", "x")) == "2.500000"
    assert str(parsing.parse_decimal("-0.000001", "x")) == "-0.000001"
    with pytest.raises(ValidationError, match="decimal places"):
        parsing.parse_decimal("0.0000001", "x")


@pytest.mark.parametrize(
    "text",
    ["0001-01-01", "9999-12-31", "1999-12-31", "2100-01-02", "2026-02-30", "2026-1-1"],
)
def test_dates_outside_the_supported_calendar_are_refused(text: str) -> None:
    with pytest.raises(ValidationError):
        parsing.parse_date(text, "start")


@pytest.mark.parametrize(
    "text",
    [
        "9999-12-31T23:59:59Z",
        "0001-01-01T00:00:00+05:00",
        "2100-01-01T00:00:01",
        "1999-12-31T23:59:59+14:00",
        "2026-01-01T25:00",
        "2026-01-01T12",
        "\u0662\u0660\u0662\u0666-01-01",
    ],
)
def test_date_times_outside_the_supported_calendar_are_refused(text: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parsing.parse_local_datetime(text, "end", tz=UTC)
    assert refused.value.field == "end"


@given(
    st.datetimes(min_value=parsing.INSTANT_MIN, max_value=parsing.INSTANT_MAX),
    st.integers(min_value=-14 * 60, max_value=14 * 60),
)
def test_supported_instants_survive_any_offset_and_a_day_added(
    wall: datetime, offset_minutes: int
) -> None:
    zone = timezone(timedelta(minutes=offset_minutes))
    parsed = parsing.parse_local_datetime(wall.isoformat(timespec="seconds"), "start", tz=zone)
    assert parsed.astimezone(UTC) + timedelta(days=1) > parsed.astimezone(UTC)


def test_catalogue_dates_share_the_supported_calendar() -> None:
    with pytest.raises(ValidationError):
        clean_datetime("9999-12-31T23:59:59-05:00", "end_date")
    assert clean_datetime("2099-12-31T23:59:59Z", "end_date") is not None
