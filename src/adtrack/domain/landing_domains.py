"""An advertiser's landing domains: the hosts its ``redir`` targets may go to under the
``allow-list`` redirect policy.

A pattern is a host name (``shop.example``: that host only) or ``*.`` and a domain
(``*.shop.example``: every host below it, not ``shop.example`` itself). Patterns and hosts are
compared in their IDNA ASCII form (UTS #46 mapping, non-transitional, as browsers resolve them),
lower-case, without a trailing dot; the port is not part of it. So ``Bücher.example``,
``bücher.example`` and ``xn--bcher-kva.example`` are one pattern, stored as the last.

IDNA needs the ``idna`` package (the standard library's codec implements IDNA 2003, which maps
``ß`` to ``ss`` where browsers keep it: a pattern could then match a host the browser does not
go to).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import idna

from adtrack.domain.errors import ValidationError

__all__ = [
    "LANDING_DOMAINS_MAX",
    "LandingDomains",
    "clean_landing_domains",
    "normalise_host",
]

LANDING_DOMAINS_MAX: Final = 100  # patterns per advertiser
_HOST_MAX: Final = 253
_LABEL: Final = re.compile(r"[a-z0-9](?:[a-z0-9_-]{0,61}[a-z0-9])?")
# characters that would make a pattern more than a host: scheme, port, path, userinfo, escapes
_NOT_IN_HOST: Final = frozenset(":/\\@?#%[] \t")


def normalise_host(host: str) -> str | None:
    """``host`` (already percent-decoded, without port) in its comparable form, or None when
    it is not a valid domain name (an IP address is kept as written)."""
    host = host.removesuffix(".")
    if not host or len(host) > _HOST_MAX * 2:
        return None
    if host.isascii():
        ascii_host = host.lower()
        if ascii_host.startswith("xn--") or ".xn--" in ascii_host:
            try:  # an A-label must decode to a valid U-label, as browsers check
                idna.decode(ascii_host)
            except (idna.IDNAError, UnicodeError, ValueError):
                return None
    else:
        try:
            ascii_host = idna.encode(host, uts46=True, transitional=False).decode("ascii")
        except (idna.IDNAError, UnicodeError, ValueError):
            return None
    if len(ascii_host) > _HOST_MAX:
        return None
    if not all(_LABEL.fullmatch(label) for label in ascii_host.split(".")):
        return None
    return ascii_host


def _clean_pattern(value: object, field: str) -> str:
    if not isinstance(value, str):
        raise ValidationError(field, "must be a text")
    text = value.strip()
    if not text:
        raise ValidationError(field, "must not be empty")
    wildcard = text.startswith("*.")
    host = text[2:] if wildcard else text
    if any(ch in _NOT_IN_HOST or ch.isspace() or not ch.isprintable() for ch in host):
        raise ValidationError(
            field,
            f"{text[:80]!r} must be a host name like shop.example or *.shop.example "
            "(no scheme, port, path or user name)",
        )
    normalised = normalise_host(host)
    if normalised is None:
        raise ValidationError(field, f"{text[:80]!r} is not a valid domain name")
    if wildcard and "." not in normalised:
        raise ValidationError(
            field, f"{text[:80]!r} would allow a whole top-level domain; name a domain below it"
        )
    return "*." + normalised if wildcard else normalised


def clean_landing_domains(value: object, field: str = "landing_domains") -> tuple[str, ...]:
    """A list of host patterns, normalised, duplicates dropped, in the order given.

    ``None`` means none. Errors name the item: ``landing_domains[2]``.
    """
    if value is None:
        return ()
    if isinstance(value, str | bytes) or not isinstance(value, list | tuple):
        raise ValidationError(field, "must be a list of host names")
    if len(value) > LANDING_DOMAINS_MAX:
        raise ValidationError(
            field, f"must have at most {LANDING_DOMAINS_MAX} entries (got {len(value)})"
        )
    patterns: dict[str, None] = {}
    for index, item in enumerate(value):
        patterns[_clean_pattern(item, f"{field}[{index}]")] = None
    return tuple(patterns)


@dataclass(frozen=True, slots=True)
class LandingDomains:
    """Compiled patterns: exact hosts and ``.suffix`` endings."""

    exact: frozenset[str]
    suffixes: tuple[str, ...]  # ".shop.example" for "*.shop.example"

    @classmethod
    def of(cls, patterns: Iterable[str]) -> LandingDomains:
        exact: set[str] = set()
        suffixes: list[str] = []
        for pattern in patterns:
            if pattern.startswith("*."):
                suffixes.append(pattern[1:])
            else:
                exact.add(pattern)
        return cls(frozenset(exact), tuple(suffixes))

    def matches(self, host: str) -> bool:
        """Whether a host (as returned by :func:`normalise_host`) is allowed."""
        return host in self.exact or host.endswith(self.suffixes)
