"""File uploads to the console (the import pages) are checked before their body is read: only a
signed-in user may send one, with a Content-Length no larger than the largest upload a page
takes (plus room for the form around it)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from adtrack.domain.model import Role
from tests.support.console import ConsoleBed, console_bed

LIMITS = {
    "ADTRACK_IMPORT_MAX_BYTES": "1000",
    "ADTRACK_REPORT_HISTORY_MAX_BYTES": "1000",
    "ADTRACK_TAG_FILE_MAX_BYTES": "2000",
}
OVERHEAD = 1024 * 1024  # access._MULTIPART_OVERHEAD


@pytest.fixture
def bed(tmp_path: Path) -> Iterator[ConsoleBed]:
    with console_bed(tmp_path, env=LIMITS) as bed:
        bed.sign_in(bed.add_user(Role.TRAFFICKER))
        yield bed


def _stored_uploads(bed: ConsoleBed) -> list[Path]:
    folder = Path(bed.app.state.web.services.settings.data_dir) / "imports"
    return list(folder.iterdir()) if folder.exists() else []


@pytest.mark.parametrize("page", ["/imports", "/imports/tags", "/imports/report-history"])
def test_an_upload_larger_than_any_page_takes_is_refused_before_it_is_read(
    bed: ConsoleBed, page: str
) -> None:
    token = bed.token(page=page)
    too_big = b"x" * (2000 + OVERHEAD + 1)
    answer = bed.client.post(
        page, data={"csrf_token": token}, files=[("file", ("big.csv", too_big, "text/csv"))]
    )
    assert answer.status_code == 413, answer.text
    assert "the largest file a console page takes is 2000 bytes" in answer.text
    assert _stored_uploads(bed) == []


def test_an_upload_within_the_limit_reaches_its_page(bed: ConsoleBed) -> None:
    # 1,500 bytes: over the dump limit (1,000), under the largest upload (2,000): the import
    # page itself reads it and refuses it, naming its own limit.
    answer = bed.client.post(
        "/imports",
        data={"csrf_token": bed.token(page="/imports")},
        files=[("files", ("dump.json", b"{" + b" " * 1498 + b"}", "application/json"))],
    )
    assert answer.status_code == 413, answer.text
    assert "larger than 1000 bytes (ADTRACK_IMPORT_MAX_BYTES)" in answer.text
    assert "the largest file a console page takes" not in answer.text


def test_an_upload_without_its_length_is_refused(bed: ConsoleBed) -> None:
    token = bed.token(page="/imports")
    boundary = "b0undary"
    body = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="csrf_token"\r\n\r\n{token}\r\n'
        f'--{boundary}\r\nContent-Disposition: form-data; name="files"; filename="d.json"\r\n'
        f"Content-Type: application/json\r\n\r\n{{}}\r\n--{boundary}--\r\n"
    ).encode()

    def chunks() -> Iterator[bytes]:  # a streamed body: sent chunked, with no Content-Length
        yield body

    answer = bed.client.post(
        "/imports",
        content=chunks(),
        headers={"content-type": f"multipart/form-data; boundary={boundary}"},
    )
    assert answer.status_code == 411, answer.text
    assert "Content-Length" in answer.text


def test_nobody_signed_in_cannot_upload(bed: ConsoleBed) -> None:
    anonymous = bed.new_client()
    token = bed.token(client=anonymous, page="/login")  # an anonymous session's own token
    answer = anonymous.post(
        "/imports",
        data={"csrf_token": token},
        files=[("files", ("dump.json", b"{}", "application/json"))],
        follow_redirects=False,
    )
    assert answer.status_code in (302, 303) and answer.headers["location"].startswith("/login")
    assert _stored_uploads(bed) == []
