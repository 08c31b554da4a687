"""The console's Imports page: upload a dump of the original platform, see the plan (counts,
new ids, notes, refusals), apply it; the upload waits in the data folder until applied."""

from __future__ import annotations

import copy
import re
from html import unescape
from pathlib import Path

from adtrack.domain.model import Role
from tests.support.console import ConsoleBed, console_bed
from tests.support.xandr_dump import build_catalogue, dump_files, zip_bytes


def upload(bed: ConsoleBed, files: list[tuple[str, bytes]]) -> object:
    token = bed.token(page="/imports")
    return bed.client.post(
        "/imports",
        data={"csrf_token": token},
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
    )


def test_upload_shows_the_plan_then_applies_it(bed: ConsoleBed) -> None:
    page = bed.client.get("/imports")
    assert page.status_code == 200 and 'enctype="multipart/form-data"' in page.text
    source = build_catalogue()
    # an id already taken by an object of ours: the plan says it gets a new one
    taken = bed.catalogue.advertisers.create_many(
        [{"id": source.objects["advertiser"][0]["id"], "name": "Ours"}], keep_ids=True
    )[0]
    answer = upload(bed, [("dump.zip", zip_bytes(dump_files(source)))])
    assert answer.status_code == 200, answer.text  # type: ignore[attr-defined]
    html = unescape(answer.text)  # type: ignore[attr-defined]
    assert "What the import would do" in html
    imps = len(source.objects["imptracker"])
    assert re.search(rf"<th scope=\"row\">imptracker</th><td>{imps}</td>", html)
    assert f"id {taken.id} is taken" in html
    assert "site_id" in html  # a note on the placements
    assert bed.catalogue.impression_trackers.list().total == 0
    upload_token = re.search(r'name="upload" value="([0-9a-f]{32})"', html)
    assert upload_token is not None
    stored = list((Path(bed.app.state.web.services.settings.data_dir) / "imports").iterdir())
    assert len(stored) == 1 and stored[0].stat().st_mode & 0o077 == 0

    applied = bed.client.post(
        "/imports/apply",
        data={"csrf_token": bed.token(page="/imports"), "upload": upload_token.group(1)},
    )
    assert applied.status_code == 200 and "Imported" in applied.text
    assert bed.catalogue.impression_trackers.list().total == imps
    assert not stored[0].exists()
    # applying the same upload twice: it is gone
    again = bed.client.post(
        "/imports/apply",
        data={"csrf_token": bed.token(page="/imports"), "upload": upload_token.group(1)},
    )
    assert again.status_code == 422 and "upload the dump again" in again.text


def test_refused_objects_and_unreadable_files_are_shown(bed: ConsoleBed) -> None:
    source = copy.deepcopy(build_catalogue())
    source.objects["placement"][1]["state"] = "paused"
    answer = upload(bed, dump_files(source))
    html = unescape(answer.text)  # type: ignore[attr-defined]
    assert answer.status_code == 200  # type: ignore[attr-defined]
    assert "placement-00000.json: placements[1]" in html and "<strong>state</strong>" in html
    assert 'name="upload"' not in html  # nothing to apply
    broken = upload(bed, [("page.json", b"{not json")])
    assert broken.status_code == 422  # type: ignore[attr-defined]
    assert "page.json" in broken.text and "not valid JSON" in broken.text  # type: ignore[attr-defined]
    assert upload(bed, []).status_code == 422  # type: ignore[attr-defined]


def test_reporters_cannot_import(tmp_path: Path) -> None:
    with console_bed(tmp_path) as bed:
        bed.sign_in(bed.add_user(Role.REPORTER))
        assert bed.client.get("/imports").status_code == 403
        assert "/imports" not in bed.client.get("/advertisers").text
