"""File answers the API and the console both give: report downloads and streamed feeds."""

from __future__ import annotations

from fastapi.responses import Response, StreamingResponse

from adtrack.services import report_formats
from adtrack.services.feeds import FeedFormat, FeedRequest, stream_feed
from adtrack.services.ports import RawEventReader
from adtrack.services.report_query import Report

__all__ = ["XLSX_TYPE", "feed_response", "report_response"]

XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


def report_response(report: Report, fmt: str, filename: str) -> Response:
    """``report`` as ``fmt`` (``json``, ``csv`` or ``xlsx``); CSV and XLSX as an attachment
    named ``<filename>.<fmt>``."""
    if fmt == "csv":
        return Response(
            report_formats.to_csv(report),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{filename}.csv"'},
        )
    if fmt == "xlsx":
        return Response(
            report_formats.to_xlsx(report),
            media_type=XLSX_TYPE,
            headers={"Content-Disposition": f'attachment; filename="{filename}.xlsx"'},
        )
    return Response(report_formats.to_json(report), media_type="application/json")


def feed_response(
    raw_events: RawEventReader, feed_request: FeedRequest, feed_format: FeedFormat
) -> StreamingResponse:
    """The feed streamed as an attachment named after its kind and start
    (``click-trackers-20260309T000000Z.csv``)."""
    kind, start = feed_request.kind.value, f"{feed_request.start:%Y%m%dT%H%M%SZ}"
    filename = f"{kind}-trackers-{start}.{feed_format.value}"
    return StreamingResponse(
        stream_feed(raw_events, feed_request, feed_format),
        media_type=feed_format.media_type,
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
