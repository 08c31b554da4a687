"""Whether any of many regular expressions is found in a text, as ``re.search`` of their
alternation says, with RE2 (``google-re2``) where it can give the same answer faster.

Python's ``re`` tries the alternatives one by one at each position of the text; RE2 runs them
as one automaton in a single pass. On a text of printable ASCII the constructs used here
(classes, ``\\b``, ``\\d``, repetitions, groups, ignoring case) mean the same in both engines;
the expressions RE2 does not take (look-arounds, back-references) are matched with ``re`` beside
it, and any other text goes to ``re`` whole. RE2's Python wrapper costs about 1.5 us a search,
so this pays for expressions that cost ``re`` more than that.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

import re2

__all__ = ["Alternation", "printable_ascii"]

# RE2's memory per expression. Its default (8 MB) is too little for a list of 1,500 expressions
# over varied user agents: on the accuracy corpora crawler-user-agents took 20 us an agent with
# it, 7.7 with 32 MB (no faster with more); Crawler-Detect 4.9 and 4.0.
RE2_MEMORY: Final = 32 << 20
# What RE2 does not take: look-arounds and back-references (an escaped "(" or backslash that
# only looks like one sends its expression to ``re`` too, which is merely slower).
_PYTHON_ONLY: Final = re.compile(r"\(\?(?:[=!]|<[=!])|\\[1-9]")


def printable_ascii(text: str) -> bool:
    """Whether RE2 and ``re`` read ``text`` alike (see the module docstring)."""
    return text.isascii() and text.isprintable()


class Alternation:
    """``found_in(text)``: whether any of ``patterns`` is found in ``text``. Raises
    ``re2.error`` if RE2 refuses what it should take."""

    __slots__ = ("patterns", "_re2", "_python_only", "_whole")

    def __init__(self, patterns: Sequence[str], *, ignore_case: bool = False) -> None:
        self.patterns = tuple(patterns)
        options = re2.Options()
        options.case_sensitive = not ignore_case
        options.max_mem = RE2_MEMORY
        # An automaton that outgrows its memory is rebuilt (or RE2 falls back to a slower
        # simulation): still the same answer, and not worth a line on stderr each time.
        options.log_errors = False
        python_only = [p for p in patterns if _PYTHON_ONLY.search(p)]
        self._re2 = re2.compile("|".join(p for p in patterns if p not in python_only), options)
        flags = re.IGNORECASE if ignore_case else 0
        self._python_only = re.compile("|".join(python_only), flags) if python_only else None
        self._whole = re.compile("|".join(patterns), flags)

    def found_in(self, text: str) -> bool:
        if not printable_ascii(text):
            return self._whole.search(text) is not None
        if self._re2.search(text) is not None:
            return True
        return self._python_only is not None and self._python_only.search(text) is not None
