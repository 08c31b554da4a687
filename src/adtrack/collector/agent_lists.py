"""What a user agent is, by three maintained bot lists and a user-agent parser (no caching).

* ``bot``: named by any of three independently maintained lists: ``crawlerdetect`` (the Python
  port of Crawler-Detect), ``ua-parser``'s ``Spider`` device family (uap-core), and the
  ``crawler-user-agents`` patterns.
* ``non_browser``: not a recognisable browser, app web view or known SDK. ``ua-parser`` finds
  neither an operating system nor a device in it, and it names no client at all or only an
  HTTP library (``curl``, ``okhttp``...). Apps and SDKs that say which system they run on
  (``Dalvik/2.1.0 (Linux; U; Android 13; ...)``, ``CFNetwork ... Darwin``, ``AppleCoreMedia``,
  ``Roku/DVP``) are not non-browsers. An empty or missing user agent is one.

The two bot lists are alternations of about 1,500 expressions each. Python's ``re`` tries them one
by one at each position of the agent (0.1 ms each list per browser here), so for a user agent of
printable ASCII (nearly all of them) both are matched with RE2 instead, which runs such an
alternation as one automaton in a single pass (2 us each), with the same verdicts: on printable
ASCII, the constructs these lists use mean the same in both engines, and the few expressions
RE2 does not take (look-arounds) are matched with ``re`` beside it. Any other user agent (and
every one, should a list's new version hold an expression RE2 refuses) goes through the lists'
own code. A new user agent then costs about 0.1 ms, most of it ``ua-parser``; callers still
cache the verdict per user agent (see ``invalid_traffic.py``).
"""

from __future__ import annotations

import functools
import logging
import re
from typing import Final

import crawleruseragents
import re2
import ua_parser
from crawlerdetect import CrawlerDetect
from crawlerdetect.providers.crawlers import data as crawlerdetect_patterns
from crawlerdetect.providers.exclusions import data as crawlerdetect_exclusions

from adtrack.domain.events import INVALID_BOT, INVALID_NON_BROWSER

__all__ = ["LISTS", "NON_BROWSER_RULE", "AgentLists", "agent_lists"]

log = logging.getLogger(__name__)

LISTS: Final = ("crawlerdetect", "ua-parser", "crawler-user-agents")
NON_BROWSER_RULE: Final = "non-browser"  # the rule of this module, beside the lists

# ua-parser families of HTTP client libraries and tools (uap-core's regexes.yaml names them)
_LIBRARY_FAMILIES: Final = frozenset(
    {
        "curl", "Wget", "Python Requests", "Python-urllib", "Java", "okhttp", "Go-http-client",
        "Apache-HttpClient", "Google-HTTP-Java-Client", "PostmanRuntime", "scalaj-http",
        "reqwest", "axios", "aihttp", "libwww-perl", "HTTPie", "Boto", "Boto3", "JetS3t",
        "s3fs", "WinHTTP", "Other",
    }
)  # fmt: skip


class AgentLists:
    """The lists, loaded once."""

    __slots__ = ("_crawlerdetect", "_fast")

    def __init__(self) -> None:
        self._crawlerdetect = CrawlerDetect()
        self._fast = _fast_lists()
        # the lists' own expressions (for other agents) compiled now, not on a request
        self._crawlerdetect.is_crawler("warm-up")
        crawleruseragents.is_crawler("warm-up")

    def reason(self, user_agent: str | None) -> str | None:
        """``bot``, ``non_browser`` or None (a browser, app web view or known SDK)."""
        if not user_agent or not user_agent.strip():
            return INVALID_NON_BROWSER
        # the lists first: with RE2 they are the cheaper part (ua-parser about 0.07 ms)
        if self.crawlerdetect_lists(user_agent) or self.crawler_user_agents_lists(user_agent):
            return INVALID_BOT
        parsed = ua_parser.parse(user_agent)
        if _is_spider(parsed):
            return INVALID_BOT
        return INVALID_NON_BROWSER if _is_non_browser(parsed) else None

    def crawlerdetect_lists(self, user_agent: str) -> bool:
        """Whether Crawler-Detect names ``user_agent`` a bot (``CrawlerDetect.is_crawler``)."""
        if self._fast is not None and _printable_ascii(user_agent):
            return self._fast.crawlerdetect(user_agent)
        return bool(self._crawlerdetect.is_crawler(user_agent))

    def crawler_user_agents_lists(self, user_agent: str) -> bool:
        """Whether crawler-user-agents names ``user_agent`` a bot (its ``is_crawler``)."""
        if self._fast is not None and _printable_ascii(user_agent):
            return self._fast.crawler_user_agents(user_agent)
        return bool(crawleruseragents.is_crawler(user_agent))

    def listed_by(self, user_agent: str) -> dict[str, bool]:
        """Which list names ``user_agent`` a bot, and whether it is a non-browser (for
        measuring each on its own)."""
        parsed = ua_parser.parse(user_agent)
        return {
            "crawlerdetect": self.crawlerdetect_lists(user_agent),
            "ua-parser": _is_spider(parsed),
            "crawler-user-agents": self.crawler_user_agents_lists(user_agent),
            NON_BROWSER_RULE: _is_non_browser(parsed),
        }


def _printable_ascii(text: str) -> bool:
    return text.isascii() and text.isprintable()


# What RE2 does not take: look-arounds and back-references (an escaped "(" or backslash that
# only looks like one sends its expression to ``re`` too, which is merely slower).
_PYTHON_ONLY: Final = re.compile(r"\(\?(?:[=!]|<[=!])|\\[1-9]")


class _Alternation:
    """Whether any of ``patterns`` is found in a printable-ASCII text: RE2 for those it takes,
    ``re`` for the rest."""

    __slots__ = ("_re2", "_python")

    def __init__(self, patterns: list[str], *, ignore_case: bool) -> None:
        options = re2.Options()
        options.case_sensitive = not ignore_case
        options.max_mem = _RE2_MEMORY
        python_only = [p for p in patterns if _PYTHON_ONLY.search(p)]
        self._re2 = re2.compile("|".join(p for p in patterns if p not in python_only), options)
        flags = re.IGNORECASE if ignore_case else 0
        self._python = re.compile("|".join(python_only), flags) if python_only else None

    def found_in(self, text: str) -> bool:
        if self._re2.search(text) is not None:
            return True
        return self._python is not None and self._python.search(text) is not None


_RE2_MEMORY: Final = 64 << 20  # per expression: room for the automaton of 1,500 alternatives


class _FastLists:
    """The two bot lists' expressions compiled for a printable-ASCII user agent (see the module
    docstring): each list's verdict as its own code gives it."""

    __slots__ = ("_exclusions", "_crawlers", "_crawler_user_agents")

    def __init__(self) -> None:
        # Crawler-Detect's own exclusions expression: small, and quicker in ``re`` (whose
        # ``sub`` is native) than through RE2's Python wrapper.
        self._exclusions = re.compile(f"({'|'.join(crawlerdetect_exclusions)})", re.IGNORECASE)
        self._crawlers = _Alternation(list(crawlerdetect_patterns), ignore_case=True)
        self._crawler_user_agents = _Alternation(
            [entry["pattern"] for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA],
            ignore_case=False,  # (its is_crawler's default)
        )

    def crawlerdetect(self, user_agent: str) -> bool:
        # as CrawlerDetect.is_crawler: trimmed, the exclusions cut out, then any expression
        agent = self._exclusions.sub("", user_agent.strip())
        return bool(agent) and self._crawlers.found_in(agent)

    def crawler_user_agents(self, user_agent: str) -> bool:
        return self._crawler_user_agents.found_in(user_agent)


def _fast_lists() -> _FastLists | None:
    """The RE2 matchers, or None (the lists' own code for every agent) if RE2 refuses what a
    list's version holds."""
    try:
        return _FastLists()
    except re2.error as exc:
        log.warning("bot lists matched with Python's re only (slower): %s", exc)
        return None


def _is_spider(parsed: ua_parser.Result) -> bool:
    return parsed.device is not None and parsed.device.family == "Spider"


def _is_non_browser(parsed: ua_parser.Result) -> bool:
    """Neither a system nor a device, and no client or only an HTTP library."""
    if parsed.os is not None or parsed.device is not None:
        return False
    client = parsed.user_agent
    return client is None or client.family in _LIBRARY_FAMILIES


@functools.cache
def agent_lists() -> AgentLists:
    """The lists, loaded once per process and shared by every collector core."""
    return AgentLists()
