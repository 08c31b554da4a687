"""Device type, OS family and browser family of real user agents (one or more of every kind
the issue names: desktops, phones, tablets, TVs and TV devices, and the rest)."""

from __future__ import annotations

import pytest

from adtrack.collector.device_types import DEVICE_TYPES, DeviceInfo, describe_user_agent

CASES = [
    # desktops
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        ("desktop", "Windows", "Chrome"),
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0",
        ("desktop", "Windows", "Edge"),
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Safari/605.1.15",
        ("desktop", "Mac OS X", "Safari"),
    ),
    (
        "Mozilla/5.0 (X11; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
        ("desktop", "Linux", "Firefox"),
    ),
    (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        ("desktop", "Chrome OS", "Chrome"),
    ),
    (  # "Tablet PC" is a Windows desktop's token, not a tablet
        "Mozilla/5.0 (compatible; MSIE 9.0; Windows NT 6.1; Trident/5.0; SLCC2; .NET CLR "
        "2.0.50727; Media Center PC 6.0; Tablet PC 2.0)",
        ("desktop", "Windows", "IE"),
    ),
    # phones
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        ("mobile", "iOS", "Mobile Safari"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Mobile Safari/537.36",
        ("mobile", "Android", "Chrome Mobile"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SM-S918B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "SamsungBrowser/24.0 Chrome/117.0.0.0 Mobile Safari/537.36",
        ("mobile", "Android", "Samsung Internet"),
    ),
    (
        "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
        ("mobile", "Android", "Firefox Mobile"),
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
        "Gecko) Mobile/15E148 [FBAN/FBIOS;FBAV/456.0.0.39.109]",
        ("mobile", "iOS", "Facebook"),
    ),
    (
        "Mozilla/5.0 (Mobile; rv:48.0; KAIOS/2.5) Gecko/48.0 Firefox/48.0 KAIOS/2.5",
        ("mobile", "KaiOS", "Firefox Mobile"),
    ),
    (
        "Dalvik/2.1.0 (Linux; U; Android 11; SM-A125F Build/RP1A.200720.012)",
        ("mobile", "Android", "Android"),
    ),
    # tablets
    (
        "Mozilla/5.0 (iPad; CPU OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Mobile/15E148 Safari/604.1",
        ("tablet", "iOS", "Mobile Safari"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 14; SM-X710) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/124.0.0.0 Safari/537.36",
        ("tablet", "Android", "Chrome"),
    ),
    (
        "Mozilla/5.0 (Android 14; Tablet; rv:125.0) Gecko/125.0 Firefox/125.0",
        ("tablet", "Android", "Firefox Mobile"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 11; KFTRWI) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Silk/120.3.1 like Chrome/120.0.6099.230 Safari/537.36",
        ("tablet", "Android", "Amazon Silk"),
    ),
    (  # an iPad's in-app browser: a Mac's agent, but with Mobile/
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.4 Mobile/15E148 Safari/604.1",
        ("tablet", "Mac OS X", "Safari"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 12; BAH4-W09) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/114.0 Safari/537.36",
        ("tablet", "Android", "Chrome"),
    ),
    # TVs, TV devices and home consoles
    (  # Chromecast with Google TV: Android, with "Mobile"
        "Mozilla/5.0 (Linux; Android 12; Chromecast Build/STTE.230319.008; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/124.0 Mobile Safari/537.36",
        ("ctv", "Android", "Chrome"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 9; MiTV-MSSP1) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/86.0 Safari/537.36",
        ("ctv", "Android", "Chrome"),
    ),
    (
        "Mozilla/5.0 (SMART-TV; Linux; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "85.0.4183.93/6.0 TV Safari/537.36",
        ("ctv", "Tizen", "Safari"),
    ),
    (
        "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/79.0.3945.79 Safari/537.36 WebAppManager",
        ("ctv", "Web0S", "Chrome"),
    ),
    ("Roku/DVP-9.10 (519.10E04111A)", ("ctv", "Roku", "Roku")),
    (
        "AppleCoreMedia/1.0.0.20L563 (Apple TV; U; CPU OS 16_5 like Mac OS X; en_us)",
        ("ctv", "ATV OS X", "Other"),
    ),
    (  # Fire TV: Android with "Mobile" but an AFT model
        "Mozilla/5.0 (Linux; Android 9; AFTMM Build/PS7633) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Mobile Safari/537.36",
        ("ctv", "Android", "Chrome Mobile"),
    ),
    (
        "Mozilla/5.0 (X11; Linux armv7l) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/90.0.4430.225 Safari/537.36 CrKey/1.56.500000",
        ("ctv", "Chromecast Linux", "Chrome"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 12; BRAVIA 4K VH2 Build/STT2.221020.001) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/108.0.0.0 Safari/537.36",
        ("ctv", "Android", "Chrome"),
    ),
    (
        "HbbTV/1.5.1 (+DRM; Panasonic; VIERA 2018; 3.501; 0071-0003 2017; ) FVC/3.0",
        ("ctv", "Panasonic", "HbbTV"),
    ),
    (
        "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/13.0 Safari/605.1.15",
        ("ctv", "Other", "Safari"),
    ),
    (  # a Windows agent, but an Xbox
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, "
        "like Gecko) Chrome/70.0.3538.102 Safari/537.36 Edge/18.19041",
        ("ctv", "Windows", "Edge"),
    ),
    # the rest
    (
        "Mozilla/5.0 (Linux; Android 12; Quest 3) AppleWebKit/537.36 (KHTML, like Gecko) "
        "OculusBrowser/31.0 Chrome/124.0 Mobile VR Safari/537.36",
        ("other", "Android", "Oculus Browser"),
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; Galaxy Watch6) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/110.0 Mobile Safari/537.36",
        ("other", "Android", "Chrome"),
    ),
    (
        "Mozilla/5.0 (PlayStation Vita 3.74) AppleWebKit/537.73 (KHTML, like Gecko) Silk/3.2",
        ("other", "Other", "NetFront NX"),
    ),
    (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        ("other", "Other", "Googlebot"),
    ),
    ("curl/8.5.0", ("other", "Other", "curl")),
]


@pytest.mark.parametrize(("user_agent", "expected"), CASES)
def test_user_agents(user_agent: str, expected: tuple[str, str, str]) -> None:
    assert describe_user_agent(user_agent) == DeviceInfo(*expected)


def test_every_kind_is_covered() -> None:
    assert {expected[0] for _, expected in CASES} == set(DEVICE_TYPES)


@pytest.mark.parametrize("user_agent", [None, "", "   "])
def test_no_user_agent_no_device(user_agent: str | None) -> None:
    assert describe_user_agent(user_agent) == DeviceInfo(None, None, None)
