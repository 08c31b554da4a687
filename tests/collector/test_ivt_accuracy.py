"""Invalid traffic at the GIVT bar, measured on public corpora of real user agents (the example
and test data of open-source user-agent projects; tests/data/ivt/README.md): at least 95 % of
bots and spiders flagged, at most 1 % of real browsers.

Each corpus is judged with the same lists and parser the collector uses (uncached), so this is
what the collector decides for each agent. bench/ivt_accuracy.py prints the same figures, and
each list's own, per corpus.
"""

from __future__ import annotations

import pytest

from adtrack.collector.agent_lists import agent_lists
from tests.support.ivt_corpora import (
    CORPORA,
    TARGET_BROWSERS_FLAGGED,
    TARGET_FLAGGED,
    Corpus,
    verdicts,
)

pytestmark = pytest.mark.slow  # about 3 s of CPU: every agent judged afresh (25 s before RE2)

BOTS = [c for c in CORPORA if c.kind == "bots" and c.name != "matomo-libraries"]
BROWSERS = [c for c in CORPORA if c.kind == "browsers"]


def test_the_corpora_are_large_enough() -> None:
    sizes = {c.name: len(c.agents()) for c in CORPORA}
    assert sizes["matomo-bots"] > 1000 and sizes["crawlerdetect-crawlers"] > 3000
    assert sum(sizes[c.name] for c in BROWSERS) > 30_000  # thousands of real browsers


@pytest.mark.parametrize("corpus", BOTS, ids=lambda c: c.name)
def test_bots_and_spiders_are_flagged(corpus: Corpus) -> None:
    result = verdicts(agent_lists(), corpus.agents())
    assert result.flagged >= TARGET_FLAGGED, result


@pytest.mark.parametrize("corpus", BROWSERS, ids=lambda c: c.name)
def test_real_browsers_are_not(corpus: Corpus) -> None:
    result = verdicts(agent_lists(), corpus.agents())
    assert result.flagged <= TARGET_BROWSERS_FLAGGED, result


def test_http_libraries_are_mostly_flagged() -> None:
    # Matomo's "library" clients: the rest are Apple's media and web-view SDKs
    # (AppleCoreMedia, SafariViewService), which say which system they run on
    (corpus,) = [c for c in CORPORA if c.name == "matomo-libraries"]
    assert verdicts(agent_lists(), corpus.agents()).flagged >= 0.75
