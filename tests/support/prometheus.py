"""Reading values out of a Prometheus text exposition."""

from __future__ import annotations

import re

__all__ = ["metric_total"]

_SAMPLE = re.compile(r"^(\w+)(\{[^}]*\})? (\S+)$")
_LABEL = re.compile(r'(\w+)="([^"]*)"')


def metric_total(text: str, name: str, **labels: str) -> float:
    """The sum of the samples of ``name`` whose labels include ``labels``."""
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        match = _SAMPLE.match(line)
        if not match or match.group(1) != name:
            continue
        found = dict(_LABEL.findall(match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            total += float(match.group(3))
    return total
