"""Writers for report results: JSON, CSV, XLSX and a plain-text table.

This is the edge where integer micro-units become decimal text:
- JSON and CSV carry money as decimal strings with six places (``"12.500000"``), exact;
- XLSX carries money as numbers (spreadsheets sum them), rounded to the micro;
- the rates (``ctr`` = clicks / imps, ``viewability_rate`` = viewable / measured imps,
  ``view_measurement_rate`` = measured imps / imps, ``conversion_rate`` = conversions / clicks,
  ``roas`` = conversion revenue / media cost) are ratios with six places, empty (null) where
  their denominator is 0, as ``cpm`` is when a row has no impressions and ``cpa`` (media cost
  per conversion, money) when it has no conversions.

Columns: ``interval_start``, then for each grouped dimension ``<dim>_id`` and ``<dim>`` (its
name; ``imp_type`` reads ``9 External Impression`` / ``10 External Click``), or for an
audience dimension (``country``, ``device_type``, ``os``, ``browser``) the one column ``<dim>``
holding its value (``Unknown`` when there is none), then the metrics.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import datetime
from decimal import Decimal
from operator import attrgetter

import orjson

from adtrack.domain.money import format_micros, from_micros
from adtrack.domain.rollup_counters import Counters
from adtrack.reporting.request import DIMENSIONS, MONEY_METRICS, RATE_METRICS
from adtrack.reporting.results import DimensionValue, Report, ReportRow

TOTALS_LABEL = "Totals"

# A value in a JSON-ready row: a count or id, a decimal string or a label, or None for none.
JsonScalar = int | str | None
# A metric's exact value: an int (counts, micros), a Decimal (a rate), or None for none.
MetricValue = int | Decimal | None
# A cell of the spreadsheet: a metric, a dimension's id or label, or the interval's text.
XlsxValue = int | Decimal | str | None


def dimension_columns(dimension: str) -> list[str]:
    """The columns of a grouped dimension: ``<dim>_id`` and ``<dim>``, or ``<dim>`` alone for
    an audience dimension (its value is its label)."""
    if DIMENSIONS[dimension].audience is not None:
        return [dimension]
    return [f"{dimension}_id", dimension]


def columns(report: Report) -> list[str]:
    cols = ["interval_start"]
    for dim in report.request.group_by:
        cols += dimension_columns(dim)
    return cols + list(report.request.metrics)


def _dimension_cells(value: DimensionValue, into: dict[str, JsonScalar]) -> None:
    """The cells of one grouped dimension of a row (see :func:`dimension_columns`)."""
    if isinstance(value.id, str):  # an audience dimension: its label is the value
        into[value.dimension] = value.label
        return
    into[f"{value.dimension}_id"] = value.id
    into[value.dimension] = value.label


# The ``Counters`` attribute behind each metric.
_METRIC_ATTRIBUTES = {
    "imps": "imps",
    "clicks": "clicks",
    "invalid_imps": "invalid_imps",
    "invalid_clicks": "invalid_clicks",
    "ctr": "ctr",
    "media_cost": "media_cost_micros",
    "booked_revenue": "booked_revenue_micros",
    "profit": "profit_micros",
    "cpm": "cpm_micros",
    "viewable_imps": "viewable_imps",
    "view_measured_imps": "view_measured_imps",
    "viewability_rate": "viewability_rate",
    "view_measurement_rate": "view_measurement_rate",
    "conversions": "conversions",
    "post_click_conversions": "post_click_conversions",
    "post_view_conversions": "post_view_conversions",
    "conversion_revenue": "conversion_revenue_micros",
    "cpa": "cpa_micros",
    "conversion_rate": "conversion_rate",
    "roas": "roas",
}


def metric_values(counters: Counters, metrics: Sequence[str]) -> dict[str, MetricValue]:
    """Metrics of a row as exact values: ints for counts, Decimal for rates, micros for money."""
    return {m: getattr(counters, _METRIC_ATTRIBUTES[m]) for m in metrics if m in _METRIC_ATTRIBUTES}


def _metric_text(metric: str) -> Callable[[Counters], JsonScalar]:
    """How one metric of a row becomes a JSON-ready value (see :func:`metric_texts`)."""
    value = attrgetter(_METRIC_ATTRIBUTES[metric])
    if metric in MONEY_METRICS:
        return lambda counters: None if (v := value(counters)) is None else format_micros(v)
    if metric in RATE_METRICS:
        return lambda counters: None if (v := value(counters)) is None else str(v)
    return value


def metric_texts(counters: Counters, metrics: Sequence[str]) -> dict[str, JsonScalar]:
    """Metrics of a row as JSON-ready values: ints for counts, decimal strings for money and
    rates, None where there is no value."""
    return {m: _metric_text(m)(counters) for m in metrics if m in _METRIC_ATTRIBUTES}


def interval_text(row: ReportRow) -> str:
    return row.interval_start.isoformat()


class _RowDicts:
    """Rows of one report as JSON-ready dicts (money as decimal strings).

    A report repeats its interval starts and dimension values across many rows, so their text
    is made once per distinct value; the metrics' formatters are chosen once per report.
    """

    def __init__(self, report: Report) -> None:
        self._metrics = [
            (m, _metric_text(m)) for m in report.request.metrics if m in _METRIC_ATTRIBUTES
        ]
        # Keyed with ``fold``: the two 01:00 of a DST change compare equal but read differently.
        self._intervals: dict[tuple[datetime, int], str] = {}
        self._dimensions: dict[tuple[DimensionValue, ...], dict[str, JsonScalar]] = {}

    def __call__(self, row: ReportRow) -> dict[str, JsonScalar]:
        start = row.interval_start
        key = (start, start.fold)
        text = self._intervals.get(key)
        if text is None:
            text = self._intervals[key] = start.isoformat()
        dimensions = self._dimensions.get(row.dimensions)
        if dimensions is None:
            dimensions = self._dimensions[row.dimensions] = {}
            for value in row.dimensions:
                _dimension_cells(value, dimensions)
        out = {"interval_start": text, **dimensions}
        counters = row.counters
        for metric, to_text in self._metrics:
            out[metric] = to_text(counters)
        return out


def to_dict(report: Report) -> dict[str, object]:
    """``{"rows": [...], "totals": {...}}`` as documented in docs/reporting.md."""
    return {
        "rows": list(map(_RowDicts(report), report.rows)),
        "totals": metric_texts(report.totals, report.request.metrics),
    }


def to_json(report: Report) -> bytes:
    return orjson.dumps(to_dict(report))


def _text_rows(report: Report) -> Iterator[list[str]]:
    cols = columns(report)
    row_dict = _RowDicts(report)
    for row in report.rows:
        d = row_dict(row)
        yield ["" if d.get(c) is None else str(d[c]) for c in cols]
    totals = metric_texts(report.totals, report.request.metrics)
    first = [TOTALS_LABEL] + [""] * (len(cols) - 1 - len(report.request.metrics))
    yield first + ["" if totals[m] is None else str(totals[m]) for m in report.request.metrics]


def to_csv(report: Report) -> str:
    """CSV with a header, one line per row and a final ``Totals`` line."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(columns(report))
    writer.writerows(_text_rows(report))
    return buf.getvalue()


def to_xlsx(report: Report, sheet_title: str = "Report") -> bytes:
    """An XLSX workbook (one sheet) with numbers as numbers, and a final ``Totals`` row."""
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell
    from openpyxl.styles import Font

    wb = Workbook(write_only=True)
    ws = wb.create_sheet(title=sheet_title[:31] or "Report")
    cols = columns(report)
    header = []
    for c in cols:
        cell = WriteOnlyCell(ws, value=c)
        cell.font = Font(bold=True)
        header.append(cell)
    ws.append(header)

    def cells(values: Mapping[str, XlsxValue], bold: bool = False) -> list[WriteOnlyCell]:
        out = []
        for c in cols:
            v = values.get(c)
            cell = WriteOnlyCell(ws, value=v)
            if c in MONEY_METRICS and isinstance(v, int):
                cell.value = from_micros(v)
                cell.number_format = "#,##0.00####"
            elif c in RATE_METRICS and v is not None:
                cell.value = Decimal(v)
                cell.number_format = "0.######" if c == "roas" else "0.00####%"
            if bold:
                cell.font = Font(bold=True)
            out.append(cell)
        return out

    metrics = report.request.metrics
    for row in report.rows:
        cells_of_row: dict[str, JsonScalar] = {}
        for dv in row.dimensions:
            _dimension_cells(dv, cells_of_row)
        values: dict[str, XlsxValue] = {"interval_start": interval_text(row), **cells_of_row}
        values.update(metric_values(row.counters, metrics))
        ws.append(cells(values))
    totals: dict[str, XlsxValue] = {"interval_start": TOTALS_LABEL}
    totals.update(metric_values(report.totals, metrics))
    ws.append(cells(totals, bold=True))
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def to_table(report: Report) -> str:
    """A plain-text table for terminals: dimensions read ``<id> <name>``, numbers right-aligned."""
    metrics = list(report.request.metrics)
    header = ["interval_start", *report.request.group_by, *metrics]
    lines: list[list[str]] = []
    row_dict = _RowDicts(report)
    for row in report.rows:
        d = row_dict(row)
        cells = [interval_text(row)]
        for dv in row.dimensions:
            if dv.dimension == "imp_type" or isinstance(dv.id, str):
                cells.append(dv.label or str(dv.id))
            else:
                cells.append(f"{dv.id} {dv.label}" if dv.label else str(dv.id))
        cells += ["" if d[m] is None else str(d[m]) for m in metrics]
        lines.append(cells)
    totals = metric_texts(report.totals, report.request.metrics)
    lines.append(
        [TOTALS_LABEL, *([""] * len(report.request.group_by))]
        + ["" if totals[m] is None else str(totals[m]) for m in metrics]
    )
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    first_metric = 1 + len(report.request.group_by)

    def fmt(cells: list[str]) -> str:
        parts = [
            c.rjust(w) if i >= first_metric else c.ljust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=True))
        ]
        return "  ".join(parts).rstrip()

    rule = "  ".join("-" * w for w in widths)
    body = [fmt(line) for line in lines[:-1]]
    return "\n".join([fmt(header), rule, *body, rule, fmt(lines[-1])]) + "\n"
