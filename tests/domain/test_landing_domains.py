"""Landing domain patterns (domain) and the redirect policy's decision (collector), as units."""

from __future__ import annotations

import pytest

from adtrack.collector.redirect_policy import (
    NO_OVERRIDE,
    AdvertiserRedirects,
    check_policy,
    refusal,
    target_host,
)
from adtrack.domain.errors import ValidationError
from adtrack.domain.landing_domains import (
    LANDING_DOMAINS_MAX,
    LandingDomains,
    clean_landing_domains,
    normalise_host,
)


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("Shop.Example", "shop.example"),
        ("shop.example.", "shop.example"),
        ("bücher.example", "xn--bcher-kva.example"),
        ("BÜCHER.example", "xn--bcher-kva.example"),
        ("faß.de", "xn--fa-hia.de"),  # non-transitional, as browsers: not "fass.de"
        ("ｓｈｏｐ.example", "shop.example"),  # full-width letters map as in a browser
        ("xn--bcher-kva.example", "xn--bcher-kva.example"),
        ("192.0.2.1", "192.0.2.1"),
        ("localhost", "localhost"),
        ("", None),
        (".", None),
        ("a..example", None),
        ("-a.example", None),
        ("a-.example", None),
        ("a b.example", None),
        ("a/b.example", None),
        ("xn--zz.example", None),  # not a valid A-label
        ("a" * 64 + ".example", None),
        (".".join(["abcdefghi"] * 26), None),  # longer than 253
    ],
)
def test_hosts_are_normalised_like_browsers_do(host: str, expected: str | None) -> None:
    assert normalise_host(host) == expected


def test_patterns_are_cleaned_deduplicated_and_named_on_error() -> None:
    assert clean_landing_domains(None) == ()
    assert clean_landing_domains([" Shop.Example ", "*.Shop.example", "shop.example"]) == (
        "shop.example",
        "*.shop.example",
    )
    for bad in (
        "https://shop.example",
        "shop.example/path",
        "shop.example:443",
        "user@shop.example",
        "shop\\example",
        "shop%2Eexample",
        "*",
        "*.com",
        "**.shop.example",
        "shop.*.example",
        "[::1]",
        "",
        "  ",
        "a..b",
        5,
    ):
        with pytest.raises(ValidationError) as refused:
            clean_landing_domains(["ok.example", bad])
        assert refused.value.field == "landing_domains[1]", bad
    for bad_list in ("shop.example", {"shop.example": 1}, 5):
        with pytest.raises(ValidationError) as refused:
            clean_landing_domains(bad_list)
        assert refused.value.field == "landing_domains"
    too_many = [f"h{i}.example" for i in range(LANDING_DOMAINS_MAX + 1)]
    with pytest.raises(ValidationError) as refused:
        clean_landing_domains(too_many)
    assert refused.value.field == "landing_domains"
    assert len(clean_landing_domains(too_many[:-1])) == LANDING_DOMAINS_MAX


def test_exact_hosts_and_wildcards_match() -> None:
    domains = LandingDomains.of(["shop.example", "*.cdn.example"])
    assert domains.matches("shop.example")
    assert not domains.matches("www.shop.example")
    assert domains.matches("a.cdn.example") and domains.matches("a.b.cdn.example")
    assert not domains.matches("cdn.example")  # a wildcard is below the domain only
    assert not domains.matches("evilcdn.example")
    assert not LandingDomains.of(()).matches("shop.example")


@pytest.mark.parametrize(
    ("location", "host"),
    [
        (b"https://Shop.Example:8443/x?y", "shop.example"),
        (b"http://shop.example.#f", "shop.example"),
        (b"https://b%C3%BCcher.example/", "xn--bcher-kva.example"),
        (b"https://shop%2Eexample/", "shop.example"),
        (b"https://shop%2Fexample/", None),
        (b"https://%FF.example/", None),
        (b"https://[::1]:8443/", None),
        (b"https://192.0.2.1/", "192.0.2.1"),
    ],
)
def test_the_host_a_target_goes_to(location: bytes, host: str | None) -> None:
    assert target_host(location) == host


def test_the_policy_decision() -> None:
    allowed = AdvertiserRedirects.of("allow-list", ["shop.example"])
    target = b"https://shop.example/"
    other = b"https://other.example/"
    # trackers: only a valid tracker, any target
    assert refusal("trackers", None, NO_OVERRIDE, other) is None
    for reject in ("unknown_tracker", "missing_id", "inactive_tracker", "wrong_tracker_type"):
        assert refusal("trackers", reject, NO_OVERRIDE, target) == reject
        assert refusal("allow-list", reject, allowed, target) == reject
        assert refusal("open", reject, NO_OVERRIDE, other) is None
    # allow-list: and only to the advertiser's domains
    assert refusal("allow-list", None, allowed, target) is None
    assert refusal("allow-list", None, allowed, other) == "not_allowed_domain"
    assert refusal("allow-list", None, NO_OVERRIDE, target) == "not_allowed_domain"


def test_policy_names() -> None:
    assert check_policy(" Allow-List ") == "allow-list"
    with pytest.raises(ValueError, match="ADTRACK_REDIRECT_POLICY must be one of"):
        check_policy("allow_list")
    # a stored value the collector does not know is no override (never a crash)
    assert AdvertiserRedirects.of("bogus", None).policy is None
    assert AdvertiserRedirects.of("open", ["a.example"]).domains.matches("a.example")
