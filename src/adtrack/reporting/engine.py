"""The report engine: tracked impressions, clicks, costs and revenue over the rollup tables.

A report is planned (``plan.py``: buckets, and the UTC months, days and hours that make each of
them),
summed by the rollup reads (the :class:`~adtrack.services.ports.RollupReads` port: integer sums
per bucket and group, money in micro-units; ``adapters/sql/rollup_reads.py``), and its rows are
built here, named from the catalogue (soft-deleted objects keep their names).
"""

from __future__ import annotations

import typing
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from functools import partial

from adtrack.domain.imported_history import IMPORTED_HISTORY_LABEL, IMPORTED_HISTORY_TRACKER
from adtrack.domain.rollup_counters import Counters
from adtrack.reporting.plan import plan_buckets, plan_sources
from adtrack.reporting.request import DIMENSIONS, UNKNOWN_LABEL, Dimension, ReportRequest
from adtrack.reporting.results import DimensionValue, Report, ReportRow, imp_type_label
from adtrack.services.ports import RollupReads

__all__ = ["ReportEngine"]


# ``tuple.__new__`` with a NamedTuple class builds an instance from a tuple of its fields without
# the Python-level ``__new__`` a NamedTuple call goes through (the fields are known to fit).
_new_report_row = typing.cast(
    Callable[[tuple[datetime, tuple[DimensionValue, ...], Counters]], ReportRow],
    partial(tuple.__new__, ReportRow),
)
_new_counters = typing.cast(Callable[[tuple[int, ...]], Counters], partial(tuple.__new__, Counters))


class ReportEngine:
    """Runs report requests against the rollups behind ``rollups``."""

    def __init__(self, rollups: RollupReads) -> None:
        self._rollups = rollups

    def run(self, request: ReportRequest) -> Report:
        dims = [DIMENSIONS[name] for name in request.group_by]
        buckets = plan_buckets(request)
        plan = plan_sources(buckets)
        acc = self._rollups.bucket_sums(
            plan.month_terms,
            plan.day_terms,
            plan.hour_terms,
            [dim.column for dim in dims],
            {DIMENSIONS[name].column: ids for name, ids in request.filters.items()},
        )

        # Drop groups that are only a difference of days and hours netting to nothing: a group
        # with any event has a positive count.
        zero = (0,) * len(Counters._fields)
        kept = sorted(key for key, values in acc.items() if values != zero)
        names = self._names(
            dims, {dim.name: {key[1][i] for key in kept} for i, dim in enumerate(dims)}
        )
        name_maps = [(dim.name, names[dim.name]) for dim in dims]
        # Rows are built column by column with C-level constructors, and rows with the same ids
        # share one tuple of dimension values: a report has tens of thousands of rows but only
        # as many distinct id combinations as there are groups.
        dimension_values = {
            key_dims: tuple(
                DimensionValue(name, value, found.get(value))
                for (name, found), value in zip(name_maps, key_dims, strict=True)
            )
            for key_dims in {key[1] for key in kept}
        }
        labels = [bucket.label for bucket in buckets]
        rows = list(
            map(
                _new_report_row,
                zip(
                    [labels[index] for index, _ in kept],
                    [dimension_values[key_dims] for _, key_dims in kept],
                    map(_new_counters, map(acc.__getitem__, kept)),
                    strict=True,
                ),
            )
        )
        totals = [sum(column) for column in zip(*acc.values(), strict=True)] if acc else list(zero)
        return Report(request=request, rows=rows, totals=Counters.of(totals))

    def _names(
        self, dims: Sequence[Dimension], ids_by_dim: Mapping[str, set[int | str]]
    ) -> dict[str, dict[int | str, str]]:
        """Names for the ids of each dimension (imp_type's are labelled in code); an audience
        value is its own label, and the unknown one ("") reads ``UNKNOWN_LABEL``."""
        names: dict[str, dict[int | str, str]] = {}
        for dim in dims:
            if dim.audience is not None:
                texts = {str(value) for value in ids_by_dim.get(dim.name, set())}
                names[dim.name] = {text: text or UNKNOWN_LABEL for text in texts}
                continue
            ids = sorted(int(i) for i in ids_by_dim.get(dim.name, set()) if i)
            if dim.name == "imp_type":
                labels = {i: imp_type_label(i) for i in ids}
                names[dim.name] = {i: label for i, label in labels.items() if label}
            else:
                found = self._rollups.names(dim.column, ids) if ids else {}
                names[dim.name] = {i: name for i, name in found.items()}
            if dim.name == "tracker" and IMPORTED_HISTORY_TRACKER in ids_by_dim.get(dim.name, ()):
                names[dim.name][IMPORTED_HISTORY_TRACKER] = IMPORTED_HISTORY_LABEL
        return names
