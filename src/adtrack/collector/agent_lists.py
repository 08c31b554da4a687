"""What a user agent is, by three maintained bot lists and a user-agent parser (no caching).

* ``bot``: named by any of three independently maintained lists: ``crawlerdetect`` (the Python
  port of Crawler-Detect), ``ua-parser``'s ``Spider`` device family (uap-core), and the
  ``crawler-user-agents`` patterns.
* ``non_browser``: not a recognisable browser, app web view or known SDK. ``ua-parser`` finds
  neither an operating system nor a device in it, and it names no client at all or only an
  HTTP library (``curl``, ``okhttp``...). Apps and SDKs that say which system they run on
  (``Dalvik/2.1.0 (Linux; U; Android 13; ...)``, ``CFNetwork ... Darwin``, ``AppleCoreMedia``,
  ``Roku/DVP``) are not non-browsers. An empty or missing user agent is one.

The two bot lists are alternations of about 1,500 expressions each, matched as their own code
does (``CrawlerDetect.is_crawler``, ``crawleruseragents.is_crawler``) but with RE2 where it gives
the same answer (``regex_alternation.py``: over the accuracy corpora's agents 32 us for both lists
against 550 us with ``re``); should RE2 refuse a list's new version, the lists' own code runs.
Callers cache the verdict per user agent (see ``invalid_traffic.py``).
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Callable
from typing import Final

import crawleruseragents
import re2
import ua_parser
from crawlerdetect import CrawlerDetect
from crawlerdetect.providers.crawlers import data as crawlerdetect_patterns
from crawlerdetect.providers.exclusions import data as crawlerdetect_exclusions

from adtrack.collector.regex_alternation import Alternation
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

    __slots__ = ("crawlerdetect", "crawler_user_agents")

    def __init__(self) -> None:
        # Whether Crawler-Detect, and crawler-user-agents, names a user agent a bot.
        self.crawlerdetect: Callable[[str], bool]
        self.crawler_user_agents: Callable[[str], bool]
        try:
            compiled = _CompiledLists()
        except re2.error as exc:
            log.warning("bot lists matched with their own code (slower): %s", exc)
            detector = CrawlerDetect()
            detector.is_crawler("warm-up")  # (compiles its expressions now, not on a request)
            crawleruseragents.is_crawler("warm-up")
            self.crawlerdetect = lambda agent: bool(detector.is_crawler(agent))
            self.crawler_user_agents = lambda agent: bool(crawleruseragents.is_crawler(agent))
        else:
            self.crawlerdetect = compiled.crawlerdetect
            self.crawler_user_agents = compiled.crawler_user_agents

    def reason(self, user_agent: str | None) -> str | None:
        """``bot``, ``non_browser`` or None (a browser, app web view or known SDK)."""
        if not user_agent or not user_agent.strip():
            return INVALID_NON_BROWSER
        # the lists first: with RE2 they are the cheaper part
        if self.crawlerdetect(user_agent) or self.crawler_user_agents(user_agent):
            return INVALID_BOT
        parsed = ua_parser.parse(user_agent)
        if _is_spider(parsed):
            return INVALID_BOT
        return INVALID_NON_BROWSER if _is_non_browser(parsed) else None

    def listed_by(self, user_agent: str) -> dict[str, bool]:
        """Which list names ``user_agent`` a bot, and whether it is a non-browser (for
        measuring each on its own)."""
        parsed = ua_parser.parse(user_agent)
        return {
            "crawlerdetect": self.crawlerdetect(user_agent),
            "ua-parser": _is_spider(parsed),
            "crawler-user-agents": self.crawler_user_agents(user_agent),
            NON_BROWSER_RULE: _is_non_browser(parsed),
        }


class _CompiledLists:
    """The two bot lists' expressions, each list's verdict as its own code gives it."""

    __slots__ = ("_exclusions", "_crawlers", "_crawler_user_agents")

    def __init__(self) -> None:
        # Crawler-Detect's own exclusions expression: small, and quicker in ``re`` (whose
        # ``sub`` is native) than through RE2's Python wrapper.
        self._exclusions = re.compile(f"({'|'.join(crawlerdetect_exclusions)})", re.IGNORECASE)
        self._crawlers = Alternation(crawlerdetect_patterns, ignore_case=True)
        self._crawler_user_agents = Alternation(
            [entry["pattern"] for entry in crawleruseragents.CRAWLER_USER_AGENTS_DATA],
            ignore_case=False,  # (its is_crawler's default)
        )

    def crawlerdetect(self, user_agent: str) -> bool:
        # as CrawlerDetect.is_crawler: trimmed, the exclusions cut out, then any expression
        agent = self._exclusions.sub("", user_agent.strip())
        return bool(agent) and self._crawlers.found_in(agent)

    def crawler_user_agents(self, user_agent: str) -> bool:
        return self._crawler_user_agents.found_in(user_agent)


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
