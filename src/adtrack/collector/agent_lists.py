"""What a user agent is, by three maintained bot lists and a user-agent parser (no caching).

* ``bot``: named by any of three independently maintained lists: ``crawlerdetect`` (the Python
  port of Crawler-Detect), ``ua-parser``'s ``Spider`` device family (uap-core), and the
  ``crawler-user-agents`` patterns.
* ``non_browser``: not a recognisable browser, app web view or known SDK. ``ua-parser`` finds
  neither an operating system nor a device in it, and it names no client at all or only an
  HTTP library (``curl``, ``okhttp``...). Apps and SDKs that say which system they run on
  (``Dalvik/2.1.0 (Linux; U; Android 13; ...)``, ``CFNetwork ... Darwin``, ``AppleCoreMedia``,
  ``Roku/DVP``) are not non-browsers. An empty or missing user agent is one.

Each new user agent costs about 1.5-3.5 ms here (most of it the two large regular expressions of
the bot lists), so callers cache the verdict per user agent (see ``invalid_traffic.py``).
"""

from __future__ import annotations

import functools
from typing import Final

import crawleruseragents
import ua_parser
from crawlerdetect import CrawlerDetect

from adtrack.domain.events import INVALID_BOT, INVALID_NON_BROWSER

__all__ = ["LISTS", "NON_BROWSER_RULE", "AgentLists", "agent_lists"]

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
    """The lists, loaded once (compiling their expressions takes about a second)."""

    __slots__ = ("_crawlerdetect",)

    def __init__(self) -> None:
        self._crawlerdetect = CrawlerDetect()
        self._crawlerdetect.is_crawler("warm-up")  # compiles the big expression now
        crawleruseragents.is_crawler("warm-up")  # likewise

    def reason(self, user_agent: str | None) -> str | None:
        """``bot``, ``non_browser`` or None (a browser, app web view or known SDK)."""
        if not user_agent or not user_agent.strip():
            return INVALID_NON_BROWSER
        parsed = ua_parser.parse(user_agent)  # the cheapest (about 0.1 ms), so first
        if (
            _is_spider(parsed)
            or self._crawlerdetect.is_crawler(user_agent)
            or crawleruseragents.is_crawler(user_agent)
        ):
            return INVALID_BOT
        return INVALID_NON_BROWSER if _is_non_browser(parsed) else None

    def listed_by(self, user_agent: str) -> dict[str, bool]:
        """Which list names ``user_agent`` a bot, and whether it is a non-browser (for
        measuring each on its own)."""
        parsed = ua_parser.parse(user_agent)
        return {
            "crawlerdetect": bool(self._crawlerdetect.is_crawler(user_agent)),
            "ua-parser": _is_spider(parsed),
            "crawler-user-agents": bool(crawleruseragents.is_crawler(user_agent)),
            NON_BROWSER_RULE: _is_non_browser(parsed),
        }


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
