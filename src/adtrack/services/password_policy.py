"""What a new password must be: long enough, not absurdly long, and hard to guess.

Guessability is estimated with ``zxcvbn`` (Dropbox's estimator: dictionaries, keyboard
patterns, dates, repeats, l33t substitutions). A password scoring below ``MIN_PASSWORD_SCORE``
(0 = guessable in a few tries .. 4 = very unguessable; 3 means "safely unguessable" for an
online attack slowed down by a KDF and sign-in throttling) is refused with zxcvbn's own advice.

zxcvbn's matching is super-linear in the password's length, so only the first
``STRENGTH_CHECKED_LENGTH`` characters are scored: a strong prefix makes the whole strong, and
a weak prefix padded with more characters is judged on the prefix, which errs on the safe side.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TypedDict

from zxcvbn import zxcvbn

from adtrack.domain.errors import ValidationError

__all__ = [
    "MAX_PASSWORD_LENGTH",
    "MIN_PASSWORD_LENGTH",
    "MIN_PASSWORD_SCORE",
    "check_new_password",
]

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024
MIN_PASSWORD_SCORE = 3
# zxcvbn itself refuses longer input (its default max_length).
STRENGTH_CHECKED_LENGTH = 72


def check_new_password(password: object, user_inputs: Iterable[str] = ()) -> str:
    """``password`` if it may be set, else ``ValidationError("password", ...)``.

    ``user_inputs`` are words that make a password weak for this user (their email address):
    zxcvbn treats them as dictionary words.
    """
    if not isinstance(password, str):
        raise ValidationError("password", "must be a string")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationError("password", f"must be at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise ValidationError("password", f"must be at most {MAX_PASSWORD_LENGTH} characters")
    if "\x00" in password:
        raise ValidationError("password", "must not contain NUL characters")
    words = [word for value in user_inputs for word in _words_of(value)]
    result = zxcvbn(password[:STRENGTH_CHECKED_LENGTH], user_inputs=words)
    if result["score"] < MIN_PASSWORD_SCORE:
        raise ValidationError("password", _weakness_message(result["feedback"]))
    return password


def _words_of(value: str) -> list[str]:
    """``jane.doe@example.com`` -> the whole address and its parts, for zxcvbn's dictionary."""
    parts = [value]
    local, _, domain = value.partition("@")
    for piece in (local, domain):
        parts.extend(p for p in piece.replace("-", ".").replace("_", ".").split(".") if p)
    return parts


class _Feedback(TypedDict):
    """The part of zxcvbn's result this module reads (its stubs keep their own name private)."""

    warning: str
    suggestions: list[str]


def _weakness_message(feedback: _Feedback) -> str:
    """zxcvbn's warning and suggestions as one sentence after "password ..."."""
    message = "is too easy to guess"
    warning = feedback.get("warning")
    if isinstance(warning, str) and warning:
        message += f" ({warning.rstrip('.')})"
    suggestions = feedback.get("suggestions") or []
    advice = " ".join(str(s) for s in suggestions) or "Use a longer phrase of uncommon words."
    return f"{message}. {advice}"
