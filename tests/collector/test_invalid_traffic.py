"""Invalid-traffic judges without a server: user agents by the bot lists and the parser, known
data-centre addresses, their caches and settings."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from adtrack.collector.agent_lists import agent_lists
from adtrack.collector.datacentre import DatacentreAddresses, DatacentreRanges, datacentre_ranges
from adtrack.collector.invalid_traffic import BotDetector, judges_for
from adtrack.config import Settings
from adtrack.domain.events import INVALID_REASONS

IPHONE_SAFARI = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1"
)
ANDROID_WEB_VIEW = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8 Build/AP1A.240305.019; wv) AppleWebKit/537.36 "
    "(KHTML, like Gecko) Version/4.0 Chrome/122.0.6261.119 Mobile Safari/537.36"
)


def test_the_reasons_are_the_contracts_names() -> None:
    assert INVALID_REASONS == ("bot", "non_browser", "datacentre", "prefetch", "duplicate_click")


@pytest.mark.parametrize(
    ("user_agent", "reason"),
    [
        ("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)", "bot"),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", "bot"),
        ("python-requests/2.31.0", "bot"),  # HTTP libraries are on the bot lists too
        ("Mozilla/5.0", "non_browser"),
        ("Deno/1.40.0", "non_browser"),
        ("adtrack-load-test", "non_browser"),
        ("   ", "non_browser"),
        ("", "non_browser"),
        (None, "non_browser"),
        # browsers, app web views and SDKs that say which system they run on
        (IPHONE_SAFARI, None),
        (ANDROID_WEB_VIEW, None),
        ("Dalvik/2.1.0 (Linux; U; Android 13; SM-S911B Build/TP1A.220624.014)", None),
        ("Roku/DVP-12.5 (12.5.0.4178-C7)", None),
        ("AppleCoreMedia/1.0.0.21E236 (iPhone; U; CPU OS 17_4 like Mac OS X; en_us)", None),
    ],
)
def test_user_agent_reasons(user_agent: str | None, reason: str | None) -> None:
    assert agent_lists().reason(user_agent) == reason
    assert BotDetector(10).reason(user_agent) == reason


def test_each_list_is_consulted() -> None:
    lists = agent_lists()
    # uap-core's Spider family alone, crawlerdetect alone, crawler-user-agents alone
    assert lists.listed_by("Mozilla/5.0 (compatible; Qwantify/1.0)")["ua-parser"]
    assert lists.listed_by("Mozilla/5.0 (compatible; AhrefsBot/7.0)")["crawlerdetect"]
    assert lists.listed_by("Mozilla/5.0 (compatible; AhrefsBot/7.0)")["crawler-user-agents"]
    assert not any(lists.listed_by(IPHONE_SAFARI).values())


def _ranges() -> DatacentreRanges:
    # 10.0.0.0/24 and 10.0.1.0/24 (adjacent: merged), 10.0.0.128/25 (inside), 2001:db8::/32
    return DatacentreRanges.from_ranges(
        [(0x0A000000, 0x0A0000FF), (0x0A000100, 0x0A0001FF), (0x0A000080, 0x0A0000FF)],
        [(0x20010DB8 << 96, (0x20010DB8 << 96) | ((1 << 96) - 1))],
    )


@pytest.mark.parametrize(
    ("address", "inside"),
    [
        ("10.0.0.0", True),
        ("10.0.1.255", True),
        ("10.0.2.0", False),
        ("9.255.255.255", False),
        ("::ffff:10.0.0.7", True),  # IPv4 written as IPv6
        ("2001:db8::1", True),
        ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", True),
        ("2001:db9::", False),
        ("fe80::1%eth0", False),
        ("not-an-address", False),
        ("", False),
        ("10.0.0.1.5", False),
    ],
)
def test_ranges_are_searched_by_address(address: str, inside: bool) -> None:
    ranges = _ranges()
    assert len(ranges) == 2  # the overlapping and adjacent IPv4 ranges merged into one
    assert ranges.contains(address) is inside


def test_merged_ranges_kept_in_the_cache_are_read_back_as_they_were(tmp_path: Path) -> None:
    """The first process merges the bundled database and keeps the intervals in the data
    directory's cache; the next ones read them. A damaged file is merged again and replaced; a
    cache that cannot be written changes nothing but the time."""
    cache = tmp_path / "cache"
    merged = DatacentreRanges.from_bundled_database(cache)
    (kept,) = cache.iterdir()
    read = DatacentreRanges.from_bundled_database(cache)
    assert read._v4 == merged._v4 and read._v6 == merged._v6 and len(read) == len(merged)
    assert (read.version, read.providers) == (merged.version, merged.providers)
    for address in ("52.94.76.1", "2600:1f14::1", "::ffff:52.94.76.1", "192.0.2.1", "2001:db8::1"):
        assert read.contains(address) == merged.contains(address)
    kept.write_bytes(kept.read_bytes()[:100])  # cut short
    again = DatacentreRanges.from_bundled_database(cache)
    assert again._v4 == merged._v4 and again._v6 == merged._v6
    assert DatacentreRanges._read_cache(kept) is not None  # written whole again
    (tmp_path / "file").write_text("not a folder")
    unwritable = DatacentreRanges.from_bundled_database(tmp_path / "file" / "cache")
    assert unwritable._v4 == merged._v4 and unwritable._v6 == merged._v6


def test_a_collector_process_keeps_the_ranges_in_its_data_directory(tmp_path: Path) -> None:
    # (a process of its own: this one has built its ranges already)
    run = [
        sys.executable,
        "-c",
        "from adtrack.collector.invalid_traffic import judges_for; "
        "from adtrack.config import Settings; judges_for(Settings.from_env())",
    ]
    subprocess.run(run, env={**os.environ, "ADTRACK_DATA_DIR": str(tmp_path)}, check=True)
    kept = [path.name for path in (tmp_path / "cache").iterdir()]
    assert len(kept) == 1 and kept[0].startswith("datacentre-ranges-"), kept


def test_the_bundled_cloud_ranges() -> None:
    ranges = datacentre_ranges()
    assert ranges is datacentre_ranges()  # built once per process
    assert len(ranges) > 1000 and ranges.version >= "2026-"
    assert set(ranges.providers) == {"aws", "gcp", "azure", "digitalocean", "oracle"}
    assert ranges.contains("52.94.76.1")  # AWS us-west-2
    assert ranges.contains("2600:1f18::1")  # AWS, IPv6
    for address in ("8.8.8.8", "1.1.1.1", "104.28.0.1", "127.0.0.1", "10.1.2.3", "::1"):
        assert not ranges.contains(address), address  # Google DNS, Cloudflare (WARP), private


def test_address_verdicts_are_cached_within_bounds() -> None:
    addresses = DatacentreAddresses(_ranges(), max_entries=2)
    assert addresses.is_datacentre("10.0.0.9")
    assert not addresses.is_datacentre("192.0.2.1")
    assert addresses.is_datacentre("2001:db8::5")
    assert list(addresses._cache) == ["192.0.2.1", "2001:db8::5"]  # the oldest went first
    assert not DatacentreAddresses(None).is_datacentre("10.0.0.9")  # the check turned off


def test_judges_follow_the_settings(tmp_path: Path) -> None:
    base = {"ADTRACK_DATA_DIR": str(tmp_path)}
    bots, addresses = judges_for(Settings.from_env(base))
    assert bots._max == 50_000 and addresses._max == 100_000
    assert addresses.is_datacentre("52.94.76.1")
    settings = Settings.from_env(
        {
            **base,
            "ADTRACK_IVT_USER_AGENT_CACHE": "7",
            "ADTRACK_IVT_ADDRESS_CACHE": "9",
            "ADTRACK_IVT_DATACENTRE": "0",
        }
    )
    bots, addresses = judges_for(settings)
    assert bots._max == 7 and addresses._max == 9
    assert not addresses.is_datacentre("52.94.76.1")
