"""``Alternation.found_in`` answers as ``re.search`` of the alternation does, whichever engine
runs: RE2 for printable ASCII, ``re`` for look-arounds and for any other text. Checked on the
device-type expressions with the invalid-traffic corpora's real user agents and made-up ones
(the bot lists against their own code: test_agent_lists.py)."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adtrack.collector import device_types
from adtrack.collector.regex_alternation import Alternation
from tests.support.ivt_corpora import CORPORA

DEVICE_EXPRESSIONS = {
    name: getattr(device_types, name) for name in ("_CTV", "_OTHER", "_TABLET", "_MOBILE")
}


def re_says(alternation: Alternation, text: str, flags: int = 0) -> bool:
    return re.search("|".join(alternation.patterns), text, flags) is not None


@pytest.mark.parametrize("name", sorted(DEVICE_EXPRESSIONS))
def test_device_expressions_answer_as_re_on_real_user_agents(name: str) -> None:
    alternation = DEVICE_EXPRESSIONS[name]
    agents = [agent.lower() for corpus in CORPORA for agent in corpus.agents()]
    differ = [a for a in agents if alternation.found_in(a) != re_says(alternation, a)]
    assert differ == []
    assert any(alternation.found_in(a) for a in agents)  # (each finds something)


WORDS = sorted(
    {
        w
        for alternation in DEVICE_EXPRESSIONS.values()
        for p in alternation.patterns
        for w in re.findall(r"[a-z]{2,}", p)
    }
)
PIECES = st.one_of(
    st.sampled_from(WORDS),
    st.sampled_from([" ", "/", "-", "; ", "(", ")", "4", "tablet pc", "sm-t5", "aftm"]),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=3),
    st.sampled_from(["\u0661", "é", "\u212a", "\t", "\x0b", "\x1c"]),  # for re alone
)


@settings(max_examples=500, deadline=None)
@given(st.lists(PIECES, min_size=1, max_size=8).map("".join))
def test_device_expressions_answer_as_re_on_made_up_agents(text: str) -> None:
    for alternation in DEVICE_EXPRESSIONS.values():
        assert alternation.found_in(text) == re_says(alternation, text)


@pytest.mark.parametrize(
    ("text", "found"),
    [
        ("watch1", True),
        ("watch\u0661", True),  # an Arabic-Indic digit: \d to re, not to RE2 (so re answers)
        ("tablet", True),
        ("tablet pc", False),  # the look-ahead, matched with re
        ("mytablet pcs tablet", True),
        ("nothing here", False),
    ],
)
def test_either_engine_answers_as_re(text: str, found: bool) -> None:
    alternation = Alternation([r"\bwatch\d", r"tablet(?! pc)"])
    assert alternation.found_in(text) is found
    assert re_says(alternation, text) is found


def test_ignoring_case() -> None:
    alternation = Alternation(["googlebot", r"yandex(?!search)"], ignore_case=True)
    assert alternation.found_in("Mozilla/5.0 (compatible; GoogleBot/2.1)")
    assert alternation.found_in("YANDEX/1.0") and not alternation.found_in("YandexSearch/1.0")
    assert alternation.found_in("\u212aoogle Googlebot")  # (not ASCII: re answers)
