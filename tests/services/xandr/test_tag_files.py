"""Reading trackers out of the original platform's exported tag files
(``services/xandr/tag_files.py``), in the exact forms its export dialog and documentation show."""

from __future__ import annotations

from adtrack.domain.model import TrackerType
from adtrack.services.xandr.tag_files import TagCandidate, scan_tag_files, scan_tag_text
from tests.support.tag_files import CLICK, DOC_PIXEL, PIXEL, SCRIPT


def by_id(candidates: list[TagCandidate]) -> dict[int, TagCandidate]:
    return {c.id: c for c in candidates}


def test_the_exported_forms() -> None:
    text = "\n".join([PIXEL, DOC_PIXEL, SCRIPT, CLICK])
    scan = scan_tag_text("tags.txt", text)
    found = by_id(scan.candidates)
    assert sorted(found) == [531, 532, 2766, 21378]
    pixel, doc, script, click = found[531], found[2766], found[532], found[21378]
    assert (pixel.tracker_type, pixel.name, pixel.named, pixel.form, pixel.javascript) == (
        TrackerType.IMPRESSION,
        "Spring sale",
        True,
        "image",
        False,
    )
    assert (doc.name, doc.named, doc.form, doc.line) == ("Imp Tracker 2766", False, "image", 2)
    assert (script.name, script.form, script.javascript) == ("Homepage JS", "javascript", True)
    assert (click.tracker_type, click.name, click.form, click.line) == (
        TrackerType.CLICK,
        "CLIK TRAX",
        "anchor",
        5,  # the URL's line (the comment is on the line before)
    )
    assert click.landing_page_url is None  # [REDIRECT_URL] is a placeholder


def test_plain_urls_and_a_literal_landing_page() -> None:
    text = (
        "https://ib.adnxs.com/imptr?id=77&t=1\n"
        "https://ib.adnxs.com/imptr?id=78\n"
        "http://ib.adnxs.com/clktr?id=79&redir=https://shop.example/spring?a=1&b=2\n"
    )
    found = by_id(scan_tag_text("urls.txt", text).candidates)
    assert (found[77].form, found[77].javascript) == ("javascript", True)
    assert (found[78].form, found[78].javascript, found[78].name) == (
        "url",
        False,
        "Imp Tracker 78",
    )
    assert found[79].tracker_type is TrackerType.CLICK and found[79].name == "Click Tracker 79"
    assert found[79].landing_page_url == "https://shop.example/spring?a=1&b=2"


def test_a_csv_tag_sheet_with_names_in_a_column() -> None:
    sheet = (
        "Name,ID,Tag\n"
        f'"Spring sale",531,"{PIXEL.replace(chr(34), chr(34) * 2)}"\n'
        '"Clicks, spring",21378,"http://ib.adnxs.com/clktrb?id=21378&redir=[REDIRECT_URL]"\n'
    )
    found = by_id(scan_tag_text("sheet.csv", sheet).candidates)
    assert found[531].name == "Spring sale" and found[531].line == 2
    assert found[21378].name == "Clicks, spring" and found[21378].line == 3


def test_adtracks_own_sheets() -> None:
    text_sheet = (
        "# Imp Tracker 5: Spring &amp; summer | line item 2 Spring | publisher 3 News\n"
        "https://track.example.com/imptr?id=5&t=2\n\n"
    )
    assert scan_tag_text("tags.txt", text_sheet).candidates[0].name == "Spring & summer"
    csv_sheet = (
        "\ufefftracker_id,tracker_type,name,code,line_item_id,line_item,publisher_id,publisher,"
        "placement_id,placement,tag\r\n"
        "6,click,'-5% off,,2,Spring,3,News,,,https://track.example.com/clktrb?id=6\r\n"
    )
    scan = scan_tag_files([("adtrack.csv", csv_sheet.encode())], max_trackers=10)
    assert [(c.id, c.name) for c in scan.candidates] == [(6, "-5% off")]


def test_duplicates_conflicts_and_missing_names_are_noted() -> None:
    first = "\n".join([DOC_PIXEL, PIXEL]).encode()  # 2766 unnamed
    second = "\n".join(
        [
            PIXEL.replace("Spring sale", "Other name"),  # 531 again, another name
            DOC_PIXEL.replace("Imp Tracker DO NOT MODIFY", "Imp Tracker - Named - DO NOT MODIFY"),
            "http://ib.adnxs.com/clktrb?id=531",  # the id of an impression tracker
            "http://ib.adnxs.com/clktrb?code=spring",
            "https://ib.adnxs.com/imptr?id=abc",
        ]
    ).encode()
    scan = scan_tag_files([("a.html", first), ("b.html", second)], max_trackers=100)
    found = by_id(scan.candidates)
    assert sorted(found) == [531, 2766]
    assert found[531].name == "Spring sale"
    assert found[2766].name == "Named"  # a later file's name fills in a missing one
    messages = [(n.file, n.line, n.id, n.message) for n in scan.notes]
    assert any(n[:3] == ("b.html", 1, 531) and "'Spring sale'" in n[3] for n in messages)
    assert any(n[:3] == ("b.html", 3, 531) and "share one id space" in n[3] for n in messages)
    assert any(n[:2] == ("b.html", 4) and "by code ('spring')" in n[3] for n in messages)
    assert any(n[:2] == ("b.html", 5) and "not a tracker id" in n[3] for n in messages)
    assert not any("no name in the file" in n[3] for n in messages)


def test_the_tracker_limit() -> None:
    text = "\n".join(f"https://ib.adnxs.com/imptr?id={i}" for i in range(1, 6)).encode()
    scan = scan_tag_files([("many.txt", text)], max_trackers=3)
    assert [c.id for c in scan.candidates] == [1, 2, 3]
    assert sum("ADTRACK_TAG_FILE_MAX_TRACKERS" in n.message for n in scan.notes) == 2
