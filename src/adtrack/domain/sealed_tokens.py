"""Sealed tokens: a payload encrypted and authenticated, as URL-safe text.

Only a holder of the deployment's token secret (``ADTRACK_TOKEN_SECRET``) can make a token that
opens, or read what one holds: to anybody else (a landing page, a browser) it is opaque, and any
change to it (or one made up) is refused as forged. Each kind of token has its own ``purpose``
(``"click"``...), from which the sealer derives its own key, so a token made for one purpose
never opens as another.

AES-256-GCM (``cryptography``; an AEAD, one call into OpenSSL's AES-NI code: cheap enough to seal
every click on the collector's hot path): nonce, ciphertext and 16-byte tag, as base64url
without padding. GCM must never see one nonce twice under one key: a sealer's nonces are one
96-bit counter from a random start (``os.urandom``, once), so they never repeat within a process,
and two processes' runs overlap with a chance of about (tokens per process) / 2**96.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import itertools
import os
from typing import Final

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "FORGED",
    "MALFORMED",
    "MIN_SECRET_BYTES",
    "OVERHEAD_BYTES",
    "TokenRefused",
    "TokenSealer",
]

MIN_SECRET_BYTES: Final = 16  # shorter secrets are refused: a key is only as strong as its source
_NONCE_BYTES: Final = 12
_TAG_BYTES: Final = 16
OVERHEAD_BYTES: Final = _NONCE_BYTES + _TAG_BYTES  # what sealing adds to a payload
MALFORMED: Final = "malformed"
FORGED: Final = "forged"
_URLSAFE: Final = bytes.maketrans(b"+/", b"-_")
_NONCE_SPACE: Final = 2 ** (8 * _NONCE_BYTES)
# room above a counter's random start: far more tokens than a process will ever seal
_NONCE_HEADROOM: Final = 2**64
_b2a = binascii.b2a_base64


class TokenRefused(ValueError):
    """A token that does not open: ``reason`` is ``malformed`` (not a token of this form) or
    ``forged`` (it does not authenticate: made up, changed, another secret or purpose)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenSealer:
    """Seals payloads into tokens and opens them again, for one ``purpose``."""

    __slots__ = ("_encrypt", "_decrypt", "_max_chars", "_nonces")

    def __init__(self, secret: bytes, purpose: str, *, max_payload_bytes: int = 512) -> None:
        if len(secret) < MIN_SECRET_BYTES:
            raise ValueError(f"a token secret needs at least {MIN_SECRET_BYTES} bytes")
        # one key per purpose (HMAC as the key derivation: a fixed label, the secret as key)
        key = hmac.new(secret, b"adtrack token key: " + purpose.encode(), "sha256").digest()
        aead = AESGCM(key)
        self._encrypt = aead.encrypt
        self._decrypt = aead.decrypt
        start = int.from_bytes(os.urandom(_NONCE_BYTES), "big") % (_NONCE_SPACE - _NONCE_HEADROOM)
        self._nonces = itertools.count(start)
        # the longest text a token of this sealer can be: anything longer is refused unread
        self._max_chars = (max_payload_bytes + OVERHEAD_BYTES + 2) // 3 * 4

    def seal(self, payload: bytes) -> bytes:
        """``payload`` sealed, as base64url text (ASCII bytes, no padding): ready for a URL or
        a header as it is."""
        nonce = next(self._nonces).to_bytes(_NONCE_BYTES, "big")
        sealed = nonce + self._encrypt(nonce, payload, None)
        return _b2a(sealed, newline=False).translate(_URLSAFE).rstrip(b"=")

    def open(self, token: str | bytes) -> bytes:
        """The payload of a token ``seal`` made; ``TokenRefused`` for anything else."""
        if isinstance(token, str):
            if not token.isascii():
                raise TokenRefused(MALFORMED)
            token = token.encode("ascii")
        if not token or len(token) > self._max_chars:
            raise TokenRefused(MALFORMED)
        try:
            raw = base64.urlsafe_b64decode(token + b"=" * (-len(token) % 4))
        except (binascii.Error, ValueError):
            raise TokenRefused(MALFORMED) from None
        # the decoder skips characters outside its alphabet: only the one spelling of these
        # bytes is a token
        canonical = _b2a(raw, newline=False).translate(_URLSAFE).rstrip(b"=")
        if len(raw) <= OVERHEAD_BYTES or canonical != token.rstrip(b"="):
            raise TokenRefused(MALFORMED)
        try:
            return self._decrypt(raw[:_NONCE_BYTES], raw[_NONCE_BYTES:], None)
        except InvalidTag:
            raise TokenRefused(FORGED) from None
