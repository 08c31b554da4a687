"""Reading the viewability token out of a ``t=1`` answer, as the measurement script gets it."""

from __future__ import annotations

import base64
import re
from typing import Any

import orjson

_TOKEN = re.compile(rb'document\.currentScript,"([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)"\);\n\Z')


def script_token(body: bytes) -> bytes:
    """The token a ``t=1`` answer hands the measurement script."""
    match = _TOKEN.search(body)
    assert match is not None, body
    return match.group(1)


def token_fields(token: bytes) -> list[Any]:
    """The fields a token carries (unchecked: its mac is the signer's business)."""
    payload = token.partition(b".")[0]
    return list(orjson.loads(base64.urlsafe_b64decode(payload + b"=" * (-len(payload) % 4))))
