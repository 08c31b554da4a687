"""Query-string parsing for the tracking endpoints, faithful to tags already in the wild.

Parameters: ``id`` or ``code``, ``cachebuster``, ``ancost``, ``t``, ``redir``. Names are
case-sensitive; unknown parameters are ignored; when a parameter repeats, the first wins.

``redir`` — the original platform documents it as the *last* parameter, given *un-encoded*.
How it is read (the first ``redir=`` that starts a parameter, i.e. at the start of the query or
right after ``&``):

* If its value starts with ``http://`` or ``https://`` (any case), the target is **everything
  after** ``redir=`` **to the end of the query**, verbatim: ``&``, ``?``, ``=`` and ``%`` belong to
  the target (``redir=https://shop.example/a?b=c&d=e`` targets ``https://shop.example/a?b=c&d=e``).
  An un-encoded target cannot be told apart from parameters after it, so nothing after an
  un-encoded ``redir`` is read as a tracking parameter — which is exactly the documented
  contract.
* Otherwise the value is an ordinary parameter value that ends at the next ``&``. If more
  parameters follow it, ``redir`` was **not in last position and is ignored** (as on the
  original platform, where such a redirect "will not be successful"); the parameters after it
  are read as usual. If it is last, it is percent-decoded **once** — so
  ``redir=https%3A%2F%2Fshop.example%2Fa%3Fb%3Dc`` works.

The target is then checked (:func:`redirect_target`): only ``http``/``https`` with a host,
no control characters (CR/LF/NUL...), no user name before the host (``user@host``, also hidden
as ``%40`` or behind a backslash). Anything else (``javascript:``, ``data:``, no host) is
refused — the event is still counted, just not redirected. Whether an accepted target is then
followed is the redirect policy's decision (``redirect_policy.py``).
"""

from __future__ import annotations

import re
from typing import Final, NamedTuple
from urllib.parse import unquote, unquote_to_bytes

__all__ = [
    "MAX_TEXT",
    "RedirStatus",
    "TrackingQuery",
    "parse_query",
    "parameter_text",
    "authority_of",
    "parse_query_general",
    "redirect_target",
    "safe_redirect_target",
]

MAX_TEXT: Final = 255  # code / cachebuster are stored in 255-character columns


class RedirStatus:
    """What became of the ``redir`` parameter (also the metric label)."""

    ABSENT: Final = "absent"
    OK: Final = "ok"
    NOT_LAST: Final = "not_last"  # ignored: more parameters followed an encoded/plain value
    REFUSED: Final = "refused"  # not an http(s) URL with a host, or control characters
    USERINFO: Final = "userinfo"  # a user name before the host (user@host), also disguised


class TrackingQuery(NamedTuple):
    """The parsed tracking parameters (text; ``id`` and ``ancost`` are checked by the core)."""

    id: str | None = None
    code: str | None = None
    cachebuster: str | None = None
    ancost: str | None = None
    t: str | None = None
    redirect: bytes | None = None  # a safe, ready-to-send Location value
    redir_status: str = RedirStatus.ABSENT


# Builds a TrackingQuery without the Python-level ``__new__`` of a NamedTuple (hot path).
_new_query = tuple.__new__


# bytes never allowed in a target, even percent-encoded: C0 controls (CR, LF, NUL, TAB...) and DEL
_FORBIDDEN = bytes(range(0x20)) + b"\x7f"
# bytes re-encoded so the Location header stays plain printable ASCII
_REENCODE = bytes(range(0x80, 0x100)) + b' "<>\\^`{|}'
_PORT_CHARS = b"0123456789"


_AUTHORITY_ENDS = (b"/", b"?", b"#")
# in an authority, any of these means a user name (or a way to hide one): browsers and URL
# parsers disagree on where such a host ends ("https://good.example\@evil.example" goes to
# good.example in a browser, to evil.example elsewhere, and to evil.example once the backslash
# is percent-encoded for the Location header), so no reading of it can be trusted
_USERINFO_MARKS = (b"@", b"\\", b"%40", b"%5c")


def authority_of(target: bytes) -> bytes:
    """The ``host[:port]`` part of an ``http(s)://`` URL (everything up to the path, query or
    fragment)."""
    start = target.index(b"://") + 3
    end = len(target)
    for sep in _AUTHORITY_ENDS:
        pos = target.find(sep, start, end)
        if pos >= 0:
            end = pos
    return target[start:end]


def _has_userinfo(authority: bytes) -> bool:
    lowered = authority.lower()
    return any(lowered.find(mark) >= 0 for mark in _USERINFO_MARKS)


def _has_host(authority: bytes) -> bool:
    """Whether an authority (without user name) names a host and, if any, a numeric port."""
    host = authority
    if host.startswith(b"["):  # IPv6 literal
        close = host.find(b"]")
        if close < 2:
            return False
        port = host[close + 1 :]
        if port and not port.startswith(b":"):
            return False
        port = port[1:]
    else:
        host, _, port = host.partition(b":")
        if not host:
            return False
    return not port.translate(None, _PORT_CHARS)


def _check_target(target: bytes) -> tuple[bytes | None, str]:
    if not target or len(target) > 8192:
        return None, RedirStatus.REFUSED
    lowered = target[:8].lower()
    if not (lowered.startswith(b"http://") or lowered.startswith(b"https://")):
        return None, RedirStatus.REFUSED
    if len(target.translate(None, _FORBIDDEN)) != len(target):
        return None, RedirStatus.REFUSED
    authority = authority_of(target)
    if _has_userinfo(authority):
        return None, RedirStatus.USERINFO
    if len(target.translate(None, _REENCODE)) != len(target):
        target = b"".join(b"%%%02X" % b if b in _REENCODE else bytes((b,)) for b in target)
        authority = authority_of(target)
    if not _has_host(authority):
        return None, RedirStatus.REFUSED
    return target, RedirStatus.OK


# Redirect targets repeat a lot (one landing page per campaign): remember recent verdicts.
_TARGETS: dict[bytes, tuple[bytes | None, str]] = {}
_TARGETS_MAX = 4096
_TARGET_CACHEABLE_LEN = 1024


def redirect_target(target: bytes) -> tuple[bytes | None, str]:
    """``target`` as a Location value and :attr:`RedirStatus.OK` if it is an http(s) URL with
    a host and no user name; else None and why (:attr:`RedirStatus.REFUSED` or
    :attr:`RedirStatus.USERINFO`).

    Bytes outside printable ASCII (and space, quotes, angle brackets...) are percent-encoded so
    the header is always well formed; control characters make the target unsafe.
    """
    try:
        return _TARGETS[target]
    except KeyError:
        pass
    result = _check_target(target)
    if len(target) <= _TARGET_CACHEABLE_LEN:
        if len(_TARGETS) >= _TARGETS_MAX:
            _TARGETS.clear()
        _TARGETS[target] = result
    return result


def safe_redirect_target(target: bytes) -> bytes | None:
    """``target`` as a Location value if :func:`redirect_target` accepts it, else None."""
    return redirect_target(target)[0]


def parameter_text(raw: bytes) -> str:
    """A parameter value as text: percent-decoded once, bounded, never raising."""
    if raw.find(b"%") >= 0:  # (cheaper than "in" on bytes)
        return unquote(raw.decode("latin-1"), encoding="utf-8", errors="replace")[:MAX_TEXT]
    return raw[:MAX_TEXT].decode("utf-8", "replace")


_HTTP_SCHEMES: Final = (b"http://", b"https://")


# The shape of the tags adtrack exports (and of the original platform's): ``id`` first, then
# optional ``cachebuster``, ``ancost``, ``t`` and a plain http(s) ``redir`` last. One regular
# expression parses it in C; any other query takes the general path below, with the same result
# (tests check both paths agree on generated queries).
# (Possessive quantifiers: no backtracking is ever useful here — each optional part starts with
# its own "&name=" — and skipping it makes the match about a quarter cheaper.)
_EXPORTED_SHAPE: Final = re.compile(
    rb"id=([0-9]{1,12}+)(?:&cachebuster=([^&%]{0,255}+))?+(?:&ancost=([0-9.]{1,32}+))?+"
    rb"(?:&t=([0-9]))?+(?:&redir=(https?://.*))?+\Z",
    re.S,
)


def parse_query(query: bytes) -> TrackingQuery:
    """Parse a raw query string (the bytes after the first ``?``)."""
    match = _EXPORTED_SHAPE.match(query)
    if match is None:
        return parse_query_general(query)
    raw_id, raw_cb, raw_ancost, raw_t, target = match.groups()
    if target is None:
        redirect, status = None, RedirStatus.ABSENT
    else:
        redirect, status = redirect_target(target)
    return _new_query(
        TrackingQuery,
        (
            raw_id.decode("ascii"),
            None,
            None if raw_cb is None else raw_cb.decode("utf-8", "replace"),
            None if raw_ancost is None else raw_ancost.decode("ascii"),
            None if raw_t is None else raw_t.decode("ascii"),
            redirect,
            status,
        ),
    )


def parse_query_general(query: bytes) -> TrackingQuery:
    """:func:`parse_query` for any query (parameters in any order, encoded values...)."""
    head = query
    redirect: bytes | None = None
    status: str = RedirStatus.ABSENT
    if query.startswith(b"redir="):
        value_at = 6
    else:
        value_at = query.find(b"&redir=")
        if value_at >= 0:
            value_at += 7
    if value_at >= 0:
        head = query[: value_at - 7] if value_at > 6 else b""
        rest = query[value_at:]
        if rest.startswith(_HTTP_SCHEMES) or rest[:8].lower().startswith(_HTTP_SCHEMES):
            redirect, status = redirect_target(rest)
        else:
            value, sep, tail = rest.partition(b"&")
            if sep:
                # an encoded or plain value with parameters after it: not last, ignored
                status = RedirStatus.NOT_LAST
                head = head + b"&" + tail if head else tail
            elif value:  # an empty ``redir=`` counts as absent
                redirect, status = redirect_target(unquote_to_bytes(value))
    id_ = code = cachebuster = ancost = t = None
    if head:
        for pair in head.split(b"&"):
            name, _, value = pair.partition(b"=")
            # the first occurrence of a parameter wins; plain short values skip unquoting
            if value.find(b"%") >= 0 or len(value) > MAX_TEXT:
                text = parameter_text(value)
            else:
                text = value.decode("utf-8", "replace")
            if name == b"id":
                if id_ is None:
                    id_ = text
            elif name == b"cachebuster":
                if cachebuster is None:
                    cachebuster = text
            elif name == b"ancost":
                if ancost is None:
                    ancost = text
            elif name == b"t":
                if t is None:
                    t = text
            elif name == b"code" and code is None:
                code = text
    return TrackingQuery(id_, code, cachebuster, ancost, t, redirect, status)
