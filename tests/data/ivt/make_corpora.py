"""Rebuild the invalid-traffic accuracy corpora in this folder from upstream checkouts.

Usage::

    python tests/data/ivt/make_corpora.py CRAWLER_DETECT DEVICE_DETECTOR UAP_CORE

with the paths of checkouts of JayBizzle/Crawler-Detect, matomo-org/device-detector and
ua-parser/uap-core (see README.md in this folder for the commits used). Each corpus is one user
agent per line, gzip-compressed, in upstream order with duplicates (and blank lines) removed.
"""

from __future__ import annotations

import gzip
import sys
from collections.abc import Iterable
from pathlib import Path

import yaml

HERE = Path(__file__).parent

# uap-core test_ua.yaml families that are browsers or in-app browsers (web views) people use
UAP_BROWSER_FAMILIES = frozenset(
    {
        "Amazon Silk",
        "Android",
        "Avast Secure Browser",
        "Baidu Browser",
        "BlackBerry WebKit",
        "Brave",
        "Chrome",
        "Chrome Mobile",
        "Chrome Mobile iOS",
        "Chrome Mobile WebView",
        "Chromium",
        "Dolphin",
        "Edge",
        "Edge Mobile",
        "Facebook",
        "Firefox",
        "Firefox Beta",
        "Firefox Mobile",
        "Firefox iOS",
        "Google",
        "Honor Browser",
        "IE",
        "IE Mobile",
        "Instagram",
        "Mobile Safari",
        "Mobile Safari UI/WKWebView",
        "Nokia Browser",
        "Opera",
        "Opera Mini",
        "Opera Mobile",
        "Opera Touch",
        "Pale Moon",
        "Pinterest",
        "Puffin",
        "QQ Browser",
        "QQ Browser Mobile",
        "Safari",
        "Samsung Internet",
        "Seznam prohlížeč",
        "UC Browser",
        "Vivaldi",
        "WeChat Browser",
        "Weibo",
        "Whale",
        "Yandex Browser",
    }
)


def _write(name: str, agents: Iterable[str]) -> None:
    seen: dict[str, None] = {}
    for agent in agents:
        agent = agent.strip()
        if agent and "\n" not in agent:
            seen.setdefault(agent, None)
    data = ("\n".join(seen) + "\n").encode()
    (HERE / name).write_bytes(gzip.compress(data, compresslevel=9, mtime=0))
    print(f"{name}: {len(seen)} user agents")


def _yaml(path: Path) -> list[dict[str, object]]:
    return yaml.load(path.read_text(encoding="utf-8"), Loader=yaml.CSafeLoader) or []


def main(crawler_detect: Path, device_detector: Path, uap_core: Path) -> None:
    crawlers = crawler_detect / "tests/data/user_agent/crawlers.txt"
    _write("crawlerdetect-crawlers.txt.gz", crawlers.read_text(encoding="utf-8").splitlines())

    fixtures = device_detector / "Tests/fixtures"
    _write("matomo-bots.txt.gz", (str(e["user_agent"]) for e in _yaml(fixtures / "bots.yml")))
    by_type: dict[str, list[str]] = {}
    for path in sorted(fixtures.glob("*.yml")):
        if path.name == "bots.yml":
            continue
        for entry in _yaml(path):
            client = entry.get("client") or {}
            kind = client.get("type") if isinstance(client, dict) else None
            by_type.setdefault(str(kind), []).append(str(entry["user_agent"]))
    _write("matomo-browsers.txt.gz", by_type["browser"])
    _write("matomo-apps.txt.gz", by_type["mobile app"])
    _write("matomo-libraries.txt.gz", by_type["library"])

    tests = uap_core / "tests"
    devices = yaml.load((tests / "test_device.yaml").read_text(), Loader=yaml.CSafeLoader)
    _write(
        "uap-spiders.txt.gz",
        (c["user_agent_string"] for c in devices["test_cases"] if c["family"] == "Spider"),
    )
    agents = yaml.load((tests / "test_ua.yaml").read_text(), Loader=yaml.CSafeLoader)
    firefox = yaml.load(
        (uap_core / "test_resources/firefox_user_agent_strings.yaml").read_text(),
        Loader=yaml.CSafeLoader,
    )
    browsers = [c for c in agents["test_cases"] if c["family"] in UAP_BROWSER_FAMILIES]
    _write(
        "uap-browsers.txt.gz",
        [c["user_agent_string"] for c in browsers + firefox["test_cases"]],
    )


if __name__ == "__main__":
    main(*(Path(arg) for arg in sys.argv[1:4]))
