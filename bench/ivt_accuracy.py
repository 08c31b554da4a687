"""Invalid-traffic accuracy on the public user-agent corpora in tests/data/ivt/.

For each corpus: how many agents the collector flags (any reason, then ``bot`` and
``non_browser`` apart), and how many each bot list names on its own. A corpus that is the
example data of one of the lists is also measured without that list ("others": the other lists
and the non-browser rule), which is the independent figure for it.

Usage::

    .venv/bin/python bench/ivt_accuracy.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.ivt_corpora import CORPORA, verdicts  # noqa: E402

from adtrack.collector.agent_lists import LISTS, agent_lists  # noqa: E402
from adtrack.domain.events import INVALID_BOT, INVALID_NON_BROWSER  # noqa: E402


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:6.2f} %"


def main() -> None:
    lists = agent_lists()
    header = f"{'corpus':24} {'kind':8} {'agents':>6}  {'flagged':>8}  {'bot':>8}  "
    header += f"{'non_br.':>8}  " + "  ".join(f"{name:>19}" for name in LISTS)
    header += f"  {'others':>8}"
    print(header)
    for corpus in CORPORA:
        agents = corpus.agents()
        started = time.perf_counter()
        result = verdicts(lists, agents)
        per_agent_ms = (time.perf_counter() - started) / len(agents) * 1000
        listed = {name: 0 for name in LISTS}
        others = 0  # flagged with the corpus's own list left out (the other lists, the rule)
        for agent in agents:
            by_list = lists.listed_by(agent)
            for name in LISTS:
                listed[name] += by_list[name]
            if corpus.own_list is not None:
                others += any(hit for name, hit in by_list.items() if name != corpus.own_list)
        n = result.total
        row = f"{corpus.name:24} {corpus.kind:8} {n:6}  {100 * result.flagged:6.2f} %  "
        row += f"{_pct(result.by_reason.get(INVALID_BOT, 0), n)}  "
        row += f"{_pct(result.by_reason.get(INVALID_NON_BROWSER, 0), n)}  "
        row += "  ".join(f"{_pct(listed[name], n):>19}" for name in LISTS)
        row += f"  {_pct(others, n) if corpus.own_list else '':>8}"
        print(row + f"   ({per_agent_ms:.2f} ms/agent)")


if __name__ == "__main__":
    main()
