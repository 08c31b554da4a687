"""The bot lists matched with RE2 give each list's own verdict (``CrawlerDetect.is_crawler`` and
``crawleruseragents.is_crawler``): on the invalid-traffic corpora's real user agents, and on
agents made of the lists' own words, in any case, with any characters."""

from __future__ import annotations

import logging
import re

import crawleruseragents
import pytest
import re2
from crawlerdetect import CrawlerDetect
from crawlerdetect.providers.crawlers import data as crawlerdetect_patterns
from hypothesis import given, settings
from hypothesis import strategies as st

from adtrack.collector import regex_alternation
from adtrack.collector.agent_lists import AgentLists, agent_lists
from tests.support.ivt_corpora import CORPORA, Corpus

CRAWLER_DETECT = CrawlerDetect()
CRAWLER_USER_AGENT_PATTERNS = [e["pattern"] for e in crawleruseragents.CRAWLER_USER_AGENTS_DATA]


def own_verdicts(user_agent: str) -> tuple[bool, bool]:
    return (
        bool(CRAWLER_DETECT.is_crawler(user_agent)),
        bool(crawleruseragents.is_crawler(user_agent)),
    )


def verdicts(lists: AgentLists, user_agent: str) -> tuple[bool, bool]:
    return lists.crawlerdetect(user_agent), lists.crawler_user_agents(user_agent)


def test_no_expression_of_either_list_matches_an_empty_text() -> None:
    # (Crawler-Detect calls a match of no characters no bot, where a search finds one.)
    for pattern in [*crawlerdetect_patterns, *CRAWLER_USER_AGENT_PATTERNS]:
        assert re.fullmatch(pattern, "", re.IGNORECASE) is None, pattern


@pytest.mark.parametrize("corpus", CORPORA, ids=lambda c: c.name)
def test_each_list_gives_its_own_verdict_on_real_user_agents(corpus: Corpus) -> None:
    agents = corpus.agents()
    if corpus.name == "matomo-browsers":
        agents = agents[::10]  # 3,425 of them: each costs the lists' own code 0.6 ms
    lists = agent_lists()
    differ = [a for a in agents if verdicts(lists, a) != own_verdicts(a)]
    assert differ == []


# Words of the lists' expressions, so that made-up agents match some of them.
WORDS = sorted(
    {
        w
        for p in [*crawlerdetect_patterns, *CRAWLER_USER_AGENT_PATTERNS]
        for w in re.findall(r"[A-Za-z]{3,}", p)
    }
)
BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
PIECES = st.one_of(
    st.sampled_from(WORDS).flatmap(lambda w: st.sampled_from([w, w.lower(), w.upper()])),
    st.sampled_from([BROWSER, " ", "/", "; ", "(", ")", "Search", "bot", "-", "_", "1.0"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=4),
    # what makes an agent leave RE2 for the lists' own code: other characters
    st.sampled_from(["é", "\u0661", "\u212a", "\u017f", "\t", "\x0b", "\x1c", "\x7f"]),
)


@settings(max_examples=400, deadline=None)
@given(st.lists(PIECES, min_size=1, max_size=8).map("".join))
def test_each_list_gives_its_own_verdict_on_made_up_agents(user_agent: str) -> None:
    assert verdicts(agent_lists(), user_agent) == own_verdicts(user_agent)


@pytest.mark.parametrize(
    "user_agent",
    [
        "Mozilla/5.0 (compatible; YandexBot/3.0)",  # Crawler-Detect's look-ahead: Yandex(?!Search)
        "Mozilla/5.0 (Linux; Android 10) YandexSearch/8.10",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; caf\u00e9)",  # not ASCII: the lists' own code
        "  ",
    ],
)
def test_known_agents(user_agent: str) -> None:
    assert verdicts(agent_lists(), user_agent) == own_verdicts(user_agent)


def test_lists_that_re2_refuses_are_matched_by_their_own_code(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # RE2 refuses an expression that needs more than its memory, as it would a list grown
    # past it: the lists' own code then gives the verdicts, and the log says so.
    monkeypatch.setattr(regex_alternation, "RE2_MEMORY", 64 << 10)
    with pytest.raises(re2.error):
        regex_alternation.Alternation(CRAWLER_USER_AGENT_PATTERNS)
    with caplog.at_level(logging.WARNING, logger="adtrack.collector.agent_lists"):
        lists = AgentLists()
    assert "bot lists matched with their own code" in caplog.text
    agents = [
        "Mozilla/5.0 (compatible; YandexBot/3.0)",
        "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
        "curl/8.5.0",
        f"{BROWSER} Chrome/120.0.0.0 Safari/537.36",
    ]
    assert [verdicts(lists, a) for a in agents] == [own_verdicts(a) for a in agents]
    assert verdicts(lists, agents[1]) == (True, True)
    assert lists.reason(agents[1]) == "bot"
    assert lists.reason(agents[3]) is None
