"""The redirect policy: whether a ``redir`` target that passed the syntax checks
(``query.redirect_target``) is followed, given the tracker the request named.

* ``trackers`` (the default): only for an active tracker of the endpoint's kind — any http(s)
  target then, as on the original platform, where ad servers fill ``redir`` per click;
* ``allow-list``: as ``trackers``, and the target's host must match the advertiser's landing
  domains;
* ``open``: any target, whatever the id (an open redirector: an explicit opt-in).

An advertiser may override the server's policy (``advertisers.redirect_policy``). Unknown and
missing ids have no advertiser: the server's policy applies. The decision is made once per tag
(the collector keeps it in the tag's plan), so it costs nothing per hit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final
from urllib.parse import unquote_to_bytes

from adtrack.collector.query import authority_of
from adtrack.domain.landing_domains import LandingDomains, normalise_host
from adtrack.domain.model import RedirectPolicy

__all__ = [
    "ALLOW_LIST",
    "NOT_ALLOWED_DOMAIN",
    "NO_OVERRIDE",
    "OPEN",
    "TRACKERS",
    "AdvertiserRedirects",
    "check_policy",
    "refusal",
    "target_host",
]

# plain strings: compared on every plan built
TRACKERS: Final = RedirectPolicy.TRACKERS.value
ALLOW_LIST: Final = RedirectPolicy.ALLOW_LIST.value
OPEN: Final = RedirectPolicy.OPEN.value
_POLICIES: Final = frozenset(policy.value for policy in RedirectPolicy)

# the metric reason of a target outside the advertiser's landing domains
NOT_ALLOWED_DOMAIN: Final = "not_allowed_domain"


def check_policy(value: str, source: str = "ADTRACK_REDIRECT_POLICY") -> str:
    """A policy name as given in the settings, or ValueError naming the choices."""
    policy = value.strip().lower()
    if policy not in _POLICIES:
        choices = ", ".join(sorted(_POLICIES))
        raise ValueError(f"{source} must be one of {choices} (got {value!r})")
    return policy


@dataclass(frozen=True, slots=True)
class AdvertiserRedirects:
    """What one advertiser says about redirects: its policy override and landing domains."""

    policy: str | None  # None: the server's policy
    domains: LandingDomains

    @classmethod
    def of(cls, policy: object, patterns: object) -> AdvertiserRedirects:
        """From an advertiser row (a stored value that is not a known policy is ignored)."""
        override = policy if isinstance(policy, str) and policy in _POLICIES else None
        items = patterns if isinstance(patterns, list | tuple) else ()
        return cls(override, LandingDomains.of(str(item) for item in items))


NO_OVERRIDE: Final = AdvertiserRedirects(None, LandingDomains.of(()))


def target_host(location: bytes) -> str | None:
    """The host a browser goes to for a checked target, in the form landing domains are kept
    in (percent-decoded, IDNA ASCII, lower-case, port dropped); None if it is not a domain
    name (an IPv6 literal, an invalid name)."""
    authority = authority_of(location)
    if authority.startswith(b"["):
        return None
    host = authority.partition(b":")[0]
    try:
        text = unquote_to_bytes(host).decode("utf-8")
    except UnicodeDecodeError:
        return None
    return normalise_host(text)


def refusal(
    policy: str, rejected: str | None, redirects: AdvertiserRedirects, location: bytes
) -> str | None:
    """Why a checked target is not followed under ``policy`` (a metric reason), or None.

    ``rejected`` is why the request's tracker recorded nothing (unknown, missing, inactive,
    wrong kind), else None.
    """
    if policy == OPEN:
        return None
    if rejected is not None:
        return rejected
    if policy == ALLOW_LIST:
        host = target_host(location)
        if host is None or not redirects.domains.matches(host):
            return NOT_ALLOWED_DOMAIN
    return None
