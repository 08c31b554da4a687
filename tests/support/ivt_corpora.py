"""The invalid-traffic accuracy corpora (tests/data/ivt/, see its README.md) and how they are
measured: shared by tests/collector/test_ivt_accuracy.py and bench/ivt_accuracy.py."""

from __future__ import annotations

import gzip
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from adtrack.collector.agent_lists import AgentLists

DATA: Final = Path(__file__).resolve().parents[1] / "data" / "ivt"
TARGET_FLAGGED: Final = 0.95  # at least this share of bots and spiders flagged
TARGET_BROWSERS_FLAGGED: Final = 0.01  # at most this share of real browsers flagged


@dataclass(frozen=True)
class Corpus:
    file: str
    kind: str  # "bots" (should be flagged), "browsers" (should not), "apps" (for information)
    source: str
    own_list: str | None  # the list this corpus is the example/test data of, if any

    @property
    def name(self) -> str:
        return self.file.removesuffix(".txt.gz")

    def agents(self) -> list[str]:
        return gzip.decompress((DATA / self.file).read_bytes()).decode().splitlines()


CORPORA: Final = (
    Corpus("matomo-bots.txt.gz", "bots", "Matomo device-detector Tests/fixtures/bots.yml", None),
    Corpus(
        "crawlerdetect-crawlers.txt.gz",
        "bots",
        "Crawler-Detect tests/data/user_agent/crawlers.txt",
        "crawlerdetect",
    ),
    Corpus(
        "uap-spiders.txt.gz",
        "bots",
        "uap-core tests/test_device.yaml, family Spider",
        "ua-parser",
    ),
    Corpus(
        "matomo-libraries.txt.gz",
        "bots",
        "Matomo device-detector Tests/fixtures/*.yml, client type library",
        None,
    ),
    Corpus(
        "matomo-browsers.txt.gz",
        "browsers",
        "Matomo device-detector Tests/fixtures/*.yml, client type browser",
        None,
    ),
    Corpus(
        "uap-browsers.txt.gz",
        "browsers",
        "uap-core tests/test_ua.yaml (browser families) and firefox_user_agent_strings.yaml",
        None,
    ),
    Corpus(
        "matomo-apps.txt.gz",
        "apps",
        "Matomo device-detector Tests/fixtures/*.yml, client type mobile app",
        None,
    ),
)


@dataclass(frozen=True)
class Verdicts:
    """How many agents of a corpus got each reason (None: valid)."""

    total: int
    by_reason: dict[str | None, int]

    @property
    def flagged(self) -> float:
        return 1 - self.by_reason.get(None, 0) / self.total


def verdicts(lists: AgentLists, agents: Iterable[str]) -> Verdicts:
    counts: dict[str | None, int] = {}
    total = 0
    for agent in agents:
        reason = lists.reason(agent)
        counts[reason] = counts.get(reason, 0) + 1
        total += 1
    return Verdicts(total, counts)
