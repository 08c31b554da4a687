"""How many collector processes ``adtrack serve --workers`` starts.

``auto`` gives tracking every core this process may run on but one, which the main process
(API, console, aggregator) keeps: a pixel then never waits for a report or a sign-in, and the
collectors, which scale with cores, get the rest. Two cores: one collector.
"""

from __future__ import annotations

import os

__all__ = ["AUTO", "resolve_workers", "usable_cpus"]

AUTO = "auto"


def usable_cpus() -> int:
    """The cores this process may run on (its affinity mask, as ``taskset`` sets it)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # not Linux
        return max(1, os.cpu_count() or 1)


def resolve_workers(value: str, *, reserve: int = 1) -> int:
    """``"auto"`` -> ``usable_cpus() - reserve`` (at least 1); else a whole number >= 1.

    Raises ValueError with a message for the user on anything else.
    """
    text = value.strip().lower()
    if text == AUTO:
        return max(1, usable_cpus() - reserve)
    if text.isascii() and text.isdigit() and 1 <= int(text) <= 1024:
        return int(text)
    raise ValueError(f"{value!r}: use 'auto' or a whole number from 1 to 1024")
