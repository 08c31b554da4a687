"""Recovering trackers from the tag files the original platform exported, where no API dump
exists: every ``imptr?id=N`` / ``clktr?id=N`` / ``clktrb?id=N`` tag or URL in them becomes a
tracker candidate (type, id, name, JavaScript or image), to be created under the same id once
the user picks its line item and publisher.

Read forms (as the platform's export dialog wrote them, also pasted into text files, e-mails or
spreadsheet cells, one or many per file):

- ``<!-- Imp Tracker - NAME - DO NOT MODIFY --><img src=".../imptr?id=531&...&t=2" .../>
  <!-- End of Imp Tracker -->`` (also without a name: ``<!-- Imp Tracker DO NOT MODIFY -->``);
- ``<script src=".../imptr?id=531&...&t=1" type="text/javascript"></script>`` (JavaScript);
- ``<!-- Click Tracker - NAME --><a href=".../clktrb?id=21378&...&redir=[REDIRECT_URL]">...``;
- plain URLs ``https://ib.adnxs.com/imptr?id=531&t=2``, ``.../clktr?id=21378``;
- tag sheets as CSV (a column holding the tags, an optional name column), and adtrack's own
  tag sheets (CSV with ``tracker_id``/``name``/``tag``, text with ``# Imp Tracker N: NAME``).

``t=1`` means JavaScript and ``t=2`` an image; without ``t`` the element around the URL
decides (``<script>`` or ``<img>``), and a bare impression URL is an image pixel. A click tag
whose ``redir`` is a literal http(s) address (not a placeholder) gives the landing page. Pure:
no I/O but the bytes given.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from adtrack.domain.model import TrackerType
from adtrack.domain.parsing import ID_MAX

__all__ = [
    "TagCandidate",
    "TagNote",
    "TagScan",
    "default_name",
    "scan_tag_files",
    "scan_tag_text",
]

_URL = re.compile(
    r"(?<![A-Za-z0-9_])(?P<path>imptr|clktrb|clktr)\?(?P<query>[^\"'\s<>]*)", re.IGNORECASE
)
# <!-- Imp Tracker - NAME - DO NOT MODIFY -->, <!-- Imp Tracker DO NOT MODIFY -->,
# <!-- Click Tracker - NAME -->; not <!-- End of ... -->.
_COMMENT = re.compile(
    r"<!--\s*(?P<kind>Imp|Click)\s+Tracker\b(?P<rest>.*?)-->", re.IGNORECASE | re.DOTALL
)
_DO_NOT_MODIFY = re.compile(r"\s*-?\s*DO\s+NOT\s+MODIFY\s*$", re.IGNORECASE)
# adtrack's text tag sheet: "# Imp Tracker 531: NAME | code ... | line item ..."
_SHEET_HEADER = re.compile(r"^#\s*(Imp|Click) Tracker (\d+): (.*?)(?: \| |$)", re.MULTILINE)
_ELEMENT = re.compile(r"<\s*([A-Za-z]+)[^<>]*$")
_NAME_COLUMNS = ("name", "tracker_name", "tracker name", "imp tracker", "click tracker")
_TAG_COLUMNS = ("tag", "tags", "tag code", "code snippet", "url", "pixel", "tracker tag")
_MAX_NAME = 255


@dataclass(frozen=True, slots=True)
class TagCandidate:
    """A tracker found in a tag file: ``id`` is the id its tags carry."""

    tracker_type: TrackerType
    id: int
    name: str  # from the file, or the default name (``named`` False)
    named: bool
    javascript: bool  # impression trackers: a JavaScript tag (t=1) rather than an image
    form: str  # "image" | "javascript" | "anchor" | "url"
    file: str
    line: int
    landing_page_url: str | None = None


@dataclass(frozen=True, slots=True)
class TagNote:
    """Something about a tag the user should know: a duplicate, an unreadable id, a tracker
    left out. ``id`` is the tag's id when it has one."""

    file: str
    line: int
    id: int | None
    message: str


@dataclass
class TagScan:
    candidates: list[TagCandidate] = field(default_factory=list)
    notes: list[TagNote] = field(default_factory=list)


def default_name(tracker_type: TrackerType, tracker_id: int) -> str:
    """The name of a tracker whose tags carried none: "Imp Tracker 531", "Click Tracker 21378"
    (the platform's own labels)."""
    label = "Imp Tracker" if tracker_type is TrackerType.IMPRESSION else "Click Tracker"
    return f"{label} {tracker_id}"


def scan_tag_files(files: Iterable[tuple[str, bytes]], *, max_trackers: int) -> TagScan:
    """Every tracker in ``files`` (name, bytes), each (type, id) once: the first occurrence
    wins and later ones are noted. An id used by both an impression and a click tracker keeps
    the first (adtrack's trackers share one id space) and notes the other."""
    scan = TagScan()
    seen: dict[int, TagCandidate] = {}
    for name, data in files:
        text = data.decode("utf-8", errors="replace").removeprefix("\ufeff")
        found, notes = _scan_file(name, text)
        scan.notes.extend(notes)
        for candidate in found:
            first = seen.get(candidate.id)
            if first is None:
                if len(seen) >= max_trackers:
                    scan.notes.append(
                        TagNote(
                            name,
                            candidate.line,
                            candidate.id,
                            f"more than {max_trackers} trackers (ADTRACK_TAG_FILE_MAX_TRACKERS): "
                            "left out",
                        )
                    )
                    continue
                seen[candidate.id] = candidate
                scan.candidates.append(candidate)
            elif first.tracker_type is not candidate.tracker_type:
                scan.notes.append(
                    TagNote(
                        name,
                        candidate.line,
                        candidate.id,
                        f"id {candidate.id} is a {candidate.tracker_type.value} tracker here but "
                        f"a {first.tracker_type.value} tracker at {first.file} line {first.line}; "
                        "adtrack's trackers share one id space, so only that one is recovered",
                    )
                )
            elif candidate.named and first.named and candidate.name != first.name:
                scan.notes.append(
                    TagNote(
                        name,
                        candidate.line,
                        candidate.id,
                        f"tracker {candidate.id} again, named {candidate.name!r}; the name "
                        f"{first.name!r} from {first.file} line {first.line} is kept",
                    )
                )
            elif candidate.named and not first.named:
                index = scan.candidates.index(first)
                seen[candidate.id] = scan.candidates[index] = _renamed(first, candidate.name)
            else:
                scan.notes.append(
                    TagNote(
                        name,
                        candidate.line,
                        candidate.id,
                        f"tracker {candidate.id} again (first at {first.file} line "
                        f"{first.line}): counted once",
                    )
                )
    for candidate in scan.candidates:
        if not candidate.named:
            scan.notes.append(
                TagNote(
                    candidate.file,
                    candidate.line,
                    candidate.id,
                    f"no name in the file: named {candidate.name!r}",
                )
            )
    return scan


def scan_tag_text(name: str, text: str) -> TagScan:
    """One file's trackers (duplicates not merged): for tests and previews."""
    found, notes = _scan_file(name, text)
    return TagScan(found, notes)


def _renamed(candidate: TagCandidate, name: str) -> TagCandidate:
    return TagCandidate(
        candidate.tracker_type,
        candidate.id,
        name,
        True,
        candidate.javascript,
        candidate.form,
        candidate.file,
        candidate.line,
        candidate.landing_page_url,
    )


def _scan_file(file: str, text: str) -> tuple[list[TagCandidate], list[TagNote]]:
    sheet = _csv_sheet(text)
    if sheet is not None:
        return _scan_sheet(file, sheet)
    return _scan_text(file, text, first_line=1, fallback_name=None)


def _csv_sheet(text: str) -> tuple[list[str], list[tuple[int, list[str]]]] | None:
    """The rows of a CSV tag sheet (header with a tag or URL column), else None."""
    first_line = text.split("\n", 1)[0]
    if "," not in first_line and ";" not in first_line and "\t" not in first_line:
        return None
    if _URL.search(first_line):  # a tag on the first line: not a header
        return None
    try:
        dialect = csv.Sniffer().sniff(first_line, delimiters=",;\t")
    except csv.Error:
        dialect = csv.excel
    reader = csv.reader(io.StringIO(text), dialect)
    try:
        header = [cell.strip().lower() for cell in next(reader)]
    except (StopIteration, csv.Error):
        return None
    if not any(cell in _TAG_COLUMNS for cell in header):
        return None
    rows: list[tuple[int, list[str]]] = []
    try:
        start = 2
        for row in reader:
            rows.append((start, row))
            start = reader.line_num + 1
    except csv.Error:
        return None
    return header, rows


def _scan_sheet(
    file: str, sheet: tuple[list[str], list[tuple[int, list[str]]]]
) -> tuple[list[TagCandidate], list[TagNote]]:
    header, rows = sheet
    name_index = next((header.index(c) for c in _NAME_COLUMNS if c in header), None)
    candidates: list[TagCandidate] = []
    notes: list[TagNote] = []
    for line, row in rows:
        name = row[name_index].strip() if name_index is not None and name_index < len(row) else ""
        name = name.lstrip("'")  # adtrack's CSV guards formula-like cells with an apostrophe
        for cell in row:
            if _URL.search(cell):
                found, cell_notes = _scan_text(file, cell, first_line=line, fallback_name=name)
                candidates.extend(found)
                notes.extend(cell_notes)
    return candidates, notes


def _scan_text(
    file: str, text: str, *, first_line: int, fallback_name: str | None
) -> tuple[list[TagCandidate], list[TagNote]]:
    candidates: list[TagCandidate] = []
    notes: list[TagNote] = []
    sheet_names = {
        int(m.group(2)): html.unescape(m.group(3)).strip() for m in _SHEET_HEADER.finditer(text)
    }
    previous_end = 0
    for match in _URL.finditer(text):
        line = first_line + text.count("\n", 0, match.start())
        tracker_type = (
            TrackerType.IMPRESSION if match.group("path").lower() == "imptr" else TrackerType.CLICK
        )
        params, redir = _query(match.group("query"))
        raw_id = params.get("id")
        if raw_id is None or not raw_id.isdigit() or not 0 < int(raw_id[:12]) <= ID_MAX:
            code = params.get("code")
            message = (
                f"the tag names its tracker by code ({code!r}), not by id: it cannot keep an id"
                if code and raw_id is None
                else f"the tag's id {raw_id!r} is not a tracker id"
                if raw_id is not None
                else "the tag has no id= parameter"
            )
            notes.append(TagNote(file, line, None, message))
            previous_end = match.end()
            continue
        tracker_id = int(raw_id)
        context = text[previous_end : match.start()]
        name = _comment_name(context, tracker_type) or sheet_names.get(tracker_id) or fallback_name
        name = _clean_name(name)
        form = _form(text, match.start(), tracker_type, params.get("t"))
        candidates.append(
            TagCandidate(
                tracker_type=tracker_type,
                id=tracker_id,
                name=name or default_name(tracker_type, tracker_id),
                named=bool(name),
                javascript=form == "javascript",
                form=form,
                file=file,
                line=line,
                landing_page_url=_landing_page(redir)
                if tracker_type is TrackerType.CLICK
                else None,
            )
        )
        previous_end = match.end()
    return candidates, notes


def _query(query: str) -> tuple[dict[str, str], str | None]:
    """The parameters before ``redir`` (which is last and may hold anything), and redir."""
    query = html.unescape(query)
    redir: str | None = None
    head, sep, tail = query.partition("redir=")
    if sep and (not head or head.endswith("&")):
        query, redir = head, tail
    params: dict[str, str] = {}
    for part in query.split("&"):
        key, _, value = part.partition("=")
        if key and key.lower() not in params:
            params[key.lower()] = value
    return params, redir


def _comment_name(context: str, tracker_type: TrackerType) -> str | None:
    """The name in the last opening comment before the tag, when it is of the tag's kind."""
    comments = list(_COMMENT.finditer(context))
    last = comments[-1] if comments else None
    if last is None:
        return None
    kind = TrackerType.IMPRESSION if last.group("kind").lower() == "imp" else TrackerType.CLICK
    if kind is not tracker_type:
        return None
    rest = _DO_NOT_MODIFY.sub("", last.group("rest").strip())
    rest = rest.strip()
    if rest.startswith("-"):
        rest = rest[1:]
    return html.unescape(rest).strip() or None


def _clean_name(name: str | None) -> str | None:
    if not name:
        return None
    flat = " ".join(name.split())
    return flat[:_MAX_NAME] or None


def _form(text: str, start: int, tracker_type: TrackerType, t: str | None) -> str:
    element = _ELEMENT.search(text, max(0, start - 2000), start)
    tag = element.group(1).lower() if element else None
    if tracker_type is TrackerType.CLICK:
        return "anchor" if tag == "a" else "url"
    if t == "1" or tag == "script":
        return "javascript"
    return "image" if tag == "img" or t == "2" else "url"


def _landing_page(redir: str | None) -> str | None:
    if not redir:
        return None
    value = redir.strip()
    if not re.match(r"https?://", value, re.IGNORECASE) or "[" in value or "${" in value:
        return None
    return value[:2048]
