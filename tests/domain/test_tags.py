"""Tag rendering: exact forms, golden files for every combination, HTML structure, escaping."""

from __future__ import annotations

import html
import itertools
import os
import re
from dataclasses import replace
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from adtrack.domain.errors import ValidationError
from adtrack.domain.macro_presets import PRESETS, Macro, Preset
from adtrack.domain.model import TrackerType
from adtrack.domain.tags import (
    FORMATS_BY_TYPE,
    TagFormat,
    TagOptions,
    TrackerTagData,
    base_url,
    effective_format,
    is_local_public_url,
    normalise_public_url,
    parse_format,
    parse_macros,
    parse_preset,
    parse_view_element,
    render_tag,
)

GOLDEN_DIR = Path(__file__).parent / "golden" / "tags"
UPDATE_GOLDEN = os.environ.get("ADTRACK_UPDATE_GOLDEN") == "1"
PUBLIC_URL = "http://track.example.com"

IMP = TrackerTagData(531, TrackerType.IMPRESSION, 'Summer <Sale> & "Q3" -->', "SUMMER/Q3 & co")
CLK = TrackerTagData(21378, TrackerType.CLICK, "CLIK TRAX", "clik-1")
TRACKERS = {TrackerType.IMPRESSION: IMP, TrackerType.CLICK: CLK}

MACRO_SUBSETS: list[tuple[Macro, ...]] = [
    subset for n in range(4) for subset in itertools.combinations(list(Macro), n)
]


def all_combinations() -> list[tuple[TrackerType, TagFormat, Preset, tuple[Macro, ...], bool]]:
    return [
        (tracker_type, fmt, preset, macros, use_code)
        for tracker_type, formats in FORMATS_BY_TYPE.items()
        for fmt in formats
        for preset in Preset
        for macros in MACRO_SUBSETS
        for use_code in (False, True)
    ]


def options(fmt: TagFormat | None, preset: Preset, macros: tuple[Macro, ...], use_code: bool,
            public_url: str = PUBLIC_URL, secure: bool = False) -> TagOptions:  # fmt: skip
    return TagOptions(
        public_url=public_url,
        format=fmt,
        macros=frozenset(macros),
        preset=preset,
        use_code=use_code,
        secure=secure,
    )


# --- the original platform's exact forms --------------------------------------------------------


ALL = (Macro.CACHEBUSTER, Macro.ANCOST, Macro.REDIRECT_URL)


def test_secure_pixel_has_the_original_form() -> None:
    tracker = TrackerTagData(531, TrackerType.IMPRESSION, "NAME")
    tag = render_tag(tracker, options(TagFormat.PIXEL, Preset.GENERIC, ALL, False))
    assert tag == (
        "<!-- Imp Tracker - NAME - DO NOT MODIFY -->"
        '<img src="https://track.example.com/imptr?id=531&cachebuster=[CACHEBUSTER]'
        '&ancost=[ANCOST]&t=2&redir=[REDIRECT_URL]" width="1" height="1" />'
        "<!-- End of Imp Tracker -->"
    )


def test_javascript_tag_has_the_original_form() -> None:
    tracker = TrackerTagData(531, TrackerType.IMPRESSION, "NAME")
    tag = render_tag(tracker, options(TagFormat.JAVASCRIPT, Preset.GENERIC, ALL[:2], False))
    assert tag == (
        "<!-- Imp Tracker - NAME - DO NOT MODIFY -->"
        "<!-- Viewability measured on this tag's parent element (the creative's container) -->"
        '<script src="http://track.example.com/imptr?id=531&cachebuster=[CACHEBUSTER]'
        '&ancost=[ANCOST]&t=1" type="text/javascript"></script>'
        "<!-- End of Imp Tracker -->"
    )


def test_javascript_tag_names_the_element_it_measures() -> None:
    tracker = TrackerTagData(531, TrackerType.IMPRESSION, "NAME")
    opts = replace(
        options(TagFormat.JAVASCRIPT, Preset.GENERIC, (), False), view_element="ad-slot_1:top.a"
    )
    tag = render_tag(tracker, opts)
    assert tag == (
        "<!-- Imp Tracker - NAME - DO NOT MODIFY -->"
        '<!-- Viewability measured on the element with id="ad-slot_1:top.a" -->'
        '<script src="http://track.example.com/imptr?id=531&t=1" type="text/javascript"'
        ' data-view-element="ad-slot_1:top.a"></script>'
        "<!-- End of Imp Tracker -->"
    )
    check_html(tag, tracker, TagFormat.JAVASCRIPT, opts)
    # pixels cannot measure: the option changes nothing there
    pixel = replace(opts, format=TagFormat.PIXEL)
    assert render_tag(tracker, pixel) == render_tag(tracker, replace(pixel, view_element=None))


@pytest.mark.parametrize("value", ["", "  ", None])
def test_no_element_id_means_the_parent_element(value: str | None) -> None:
    assert parse_view_element(value) is None


@pytest.mark.parametrize("value", ["a b", 'x"y', "<script>", "x" * 101, "é", "a-->", "a\nb"])
def test_an_element_id_outside_the_safe_characters_is_refused(value: str) -> None:
    with pytest.raises(ValidationError) as refused:
        parse_view_element(value)
    assert refused.value.field == "view_element"


def test_click_anchor_and_url_have_the_original_form() -> None:
    tracker = TrackerTagData(21378, TrackerType.CLICK, "CLIK TRAX")
    url = "http://track.example.com/clktrb?id=21378&cachebuster=[CACHEBUSTER]&ancost=[ANCOST]"
    url += "&redir=[REDIRECT_URL]"
    anchor = render_tag(tracker, options(TagFormat.ANCHOR, Preset.GENERIC, ALL, False))
    assert anchor == (
        f'<!-- Click Tracker - CLIK TRAX --><a href="{url}">YOUR TEXT HERE</a>'
        "<!-- End of Click Tracker -->"
    )
    assert render_tag(tracker, options(TagFormat.URL, Preset.GENERIC, ALL, False)) == url


def test_bare_impression_url_is_the_image_url() -> None:
    tracker = TrackerTagData(7, TrackerType.IMPRESSION, "x")
    tag = render_tag(tracker, options(TagFormat.URL, Preset.GENERIC, (), False))
    assert tag == "http://track.example.com/imptr?id=7&t=2"


def test_presets_write_each_ad_servers_macros() -> None:
    tracker = TrackerTagData(9, TrackerType.CLICK, "c")
    expected = {
        Preset.GENERIC: "cachebuster=[CACHEBUSTER]&ancost=[ANCOST]&redir=[REDIRECT_URL]",
        Preset.GAM: "cachebuster=%%CACHEBUSTER%%&ancost=[ANCOST]&redir=%%DEST_URL%%",
        Preset.XANDR: "cachebuster=${CACHEBUSTER}&ancost=[ANCOST]&redir=${CLICK_URL}",
        Preset.CM360: "cachebuster=%n&ancost=[ANCOST]&redir=%u",
    }
    for preset, query in expected.items():
        tag = render_tag(tracker, options(TagFormat.URL, preset, ALL, False))
        assert tag == f"http://track.example.com/clktrb?id=9&{query}"


def test_every_preset_cites_its_source_and_keeps_ancost_generic() -> None:
    for preset in PRESETS.values():
        assert preset.source
        assert preset.placeholder(Macro.ANCOST) == "[ANCOST]"
        assert Macro.ANCOST not in preset.native


def test_use_code_puts_the_encoded_code_first_and_falls_back_to_id() -> None:
    with_code = TrackerTagData(5, TrackerType.IMPRESSION, "n", "A B/é&x")
    tag = render_tag(with_code, options(TagFormat.URL, Preset.GENERIC, (), True))
    assert tag == "http://track.example.com/imptr?code=A%20B%2F%C3%A9%26x&t=2"
    without = TrackerTagData(6, TrackerType.IMPRESSION, "n", None)
    tag = render_tag(without, options(TagFormat.URL, Preset.GENERIC, (), True))
    assert tag == "http://track.example.com/imptr?id=6&t=2"


def test_secure_forces_https_and_pixel_is_always_secure() -> None:
    imp = TrackerTagData(1, TrackerType.IMPRESSION, "n")
    clk = TrackerTagData(2, TrackerType.CLICK, "n")
    base = "http://track.example.com:8001/t"
    assert render_tag(imp, options(TagFormat.PIXEL, Preset.GENERIC, (), False, base)).count(
        'src="https://track.example.com:8001/t/imptr?id=1&t=2"'
    )
    js = render_tag(imp, options(TagFormat.JAVASCRIPT, Preset.GENERIC, (), False, base))
    assert 'src="http://track.example.com:8001/t/imptr?id=1&t=1"' in js
    js = render_tag(imp, options(TagFormat.JAVASCRIPT, Preset.GENERIC, (), False, base, True))
    assert 'src="https://track.example.com:8001/t/imptr?id=1&t=1"' in js
    url = render_tag(clk, options(TagFormat.URL, Preset.GENERIC, (), False, base, True))
    assert url == "https://track.example.com:8001/t/clktrb?id=2"
    assert base_url("https://x.example/", secure=False) == "https://x.example"


def test_format_falls_back_to_the_types_default() -> None:
    assert effective_format(TrackerType.IMPRESSION, None) is TagFormat.PIXEL
    assert effective_format(TrackerType.CLICK, None) is TagFormat.URL
    assert effective_format(TrackerType.IMPRESSION, TagFormat.ANCHOR) is TagFormat.PIXEL
    assert effective_format(TrackerType.CLICK, TagFormat.JAVASCRIPT) is TagFormat.URL
    assert effective_format(TrackerType.CLICK, TagFormat.PIXEL) is TagFormat.URL
    assert effective_format(TrackerType.IMPRESSION, TagFormat.URL) is TagFormat.URL
    assert effective_format(TrackerType.CLICK, TagFormat.ANCHOR) is TagFormat.ANCHOR


def test_public_url_checks_and_localhost_detection() -> None:
    assert normalise_public_url(" https://t.example.com/ ") == "https://t.example.com"
    assert base_url("HTTP://T.example.com:81/p/", secure=True) == "https://T.example.com:81/p"
    for bad in (
        "ftp://x",
        "t.example.com",
        "https://",
        "https://x/?a=1",
        'https://x/"',
        "https://u:p@x",
    ):
        with pytest.raises(ValidationError) as err:
            normalise_public_url(bad)
        assert err.value.field == "public_url"
    for local in (
        "http://localhost:8001",
        "http://127.0.0.1",
        "http://[::1]:80",
        "http://a.localhost",
    ):
        assert is_local_public_url(local)
    assert not is_local_public_url("https://track.example.com")


def test_option_parsers_name_the_field() -> None:
    assert parse_macros(["cachebuster", "REDIRECT_URL"]) == {Macro.CACHEBUSTER, Macro.REDIRECT_URL}
    assert parse_format("Pixel") is TagFormat.PIXEL and parse_format(None) is None
    assert parse_preset("GAM") is Preset.GAM and parse_preset(None) is Preset.GENERIC
    for call, field in (
        (lambda: parse_macros(["CB"]), "macros"),
        (lambda: parse_format("iframe"), "format"),
        (lambda: parse_preset("dfp"), "preset"),
    ):
        with pytest.raises(ValidationError) as err:
            call()
        assert err.value.field == field


# --- golden files ---------------------------------------------------------------------------------


def golden_name(tracker_type: TrackerType, fmt: TagFormat, preset: Preset) -> str:
    return f"{tracker_type.value}-{fmt.value}--{preset.value}.txt"


def golden_text(tracker_type: TrackerType, fmt: TagFormat, preset: Preset) -> str:
    tracker = TRACKERS[tracker_type]
    blocks = [
        f"# {tracker_type.value} tracker {tracker.id}, format {fmt.value}, preset {preset.value}, "
        f"public URL {PUBLIC_URL}\n"
    ]
    for macros in MACRO_SUBSETS:
        for use_code in (False, True):
            names = ",".join(m.value for m in macros) or "-"
            tag = render_tag(tracker, options(fmt, preset, macros, use_code))
            blocks.append(f"## macros={names} use_code={str(use_code).lower()}\n{tag}\n")
    return "\n".join(blocks)


GOLDEN_CASES = [
    (tracker_type, fmt, preset)
    for tracker_type, formats in FORMATS_BY_TYPE.items()
    for fmt in formats
    for preset in Preset
]


@pytest.mark.parametrize(("tracker_type", "fmt", "preset"), GOLDEN_CASES)
def test_tags_match_golden_files(tracker_type: TrackerType, fmt: TagFormat, preset: Preset) -> None:
    path = GOLDEN_DIR / golden_name(tracker_type, fmt, preset)
    text = golden_text(tracker_type, fmt, preset)
    if UPDATE_GOLDEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert path.exists(), f"missing golden file {path}; run with ADTRACK_UPDATE_GOLDEN=1"
    assert text == path.read_text()


def test_golden_files_cover_every_combination_and_nothing_else() -> None:
    expected = {golden_name(*case) for case in GOLDEN_CASES}
    assert {p.name for p in GOLDEN_DIR.glob("*.txt")} == expected
    total = sum(p.read_text().count("\n## macros=") for p in GOLDEN_DIR.glob("*.txt"))
    assert total == len(all_combinations()) == 5 * 4 * 8 * 2


# --- HTML structure -------------------------------------------------------------------------------


class TagParser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str | None]]] = []
        self.end_tags: list[str] = []
        self.comments: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.elements.append((tag, dict(attrs)))

    def handle_endtag(self, tag: str) -> None:
        self.end_tags.append(tag)

    def handle_comment(self, data: str) -> None:
        self.comments.append(data)

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def parse(tag: str) -> TagParser:
    parser = TagParser()
    parser.feed(tag)
    parser.close()
    return parser


def query_names(url: str) -> list[str]:
    return [pair.partition("=")[0] for pair in urlsplit(url).query.split("&")]


def check_url(url: str, tracker: TrackerTagData, fmt: TagFormat, opts: TagOptions) -> None:
    parts = urlsplit(url)
    assert parts.scheme == ("https" if fmt is TagFormat.PIXEL or opts.secure else "http")
    assert parts.netloc == "track.example.com"
    names = query_names(url)
    expected = ["code" if opts.use_code and tracker.code else "id"]
    expected += [n for m, n in ((Macro.CACHEBUSTER, "cachebuster"), (Macro.ANCOST, "ancost"))
                 if m in opts.macros]  # fmt: skip
    if tracker.tracker_type is TrackerType.IMPRESSION:
        assert parts.path == "/imptr"
        expected.append("t")
    else:
        assert parts.path == "/clktrb"
    if Macro.REDIRECT_URL in opts.macros:
        expected.append("redir")
        assert names[-1] == "redir"  # always last
    assert names == expected
    values = dict(pair.partition("=")[::2] for pair in parts.query.split("&"))
    if "t" in values:
        assert values["t"] == ("1" if fmt is TagFormat.JAVASCRIPT else "2")
    if "code" in values:
        assert unquote(values["code"]) == tracker.code
    if "id" in values:
        assert values["id"] == str(tracker.id)
    preset = PRESETS[opts.preset]
    for macro, name in (
        (Macro.CACHEBUSTER, "cachebuster"),
        (Macro.ANCOST, "ancost"),
        (Macro.REDIRECT_URL, "redir"),
    ):
        if macro in opts.macros:
            assert values[name] == preset.placeholder(macro)


def check_html(tag: str, tracker: TrackerTagData, fmt: TagFormat, opts: TagOptions) -> None:
    parsed = parse(tag)
    if fmt is TagFormat.URL:
        assert parsed.elements == [] and parsed.comments == []
        check_url(tag, tracker, fmt, opts)
        return
    assert len(parsed.elements) == 1, parsed.elements
    element, attrs = parsed.elements[0]
    if fmt is TagFormat.PIXEL:
        assert element == "img"
        assert set(attrs) == {"src", "width", "height"}
        assert attrs["width"] == "1" and attrs["height"] == "1"
        url = attrs["src"]
        assert parsed.end_tags == []
    elif fmt is TagFormat.JAVASCRIPT:
        assert element == "script"
        expected = {"src", "type"} | ({"data-view-element"} if opts.view_element else set())
        assert attrs.keys() == expected and attrs["type"] == "text/javascript"
        assert attrs.get("data-view-element") == opts.view_element
        url = attrs["src"]
        assert parsed.end_tags == ["script"] and "".join(parsed.text) == ""
    else:
        assert element == "a" and set(attrs) == {"href"}
        url = attrs["href"]
        assert parsed.end_tags == ["a"] and "".join(parsed.text) == "YOUR TEXT HERE"
    assert url is not None and url in tag  # no entity was needed: the raw text is the URL
    check_url(url, tracker, fmt, opts)
    comments = list(parsed.comments)
    if fmt is TagFormat.JAVASCRIPT:
        measured = comments.pop(1)
        if opts.view_element:
            assert (
                measured == f' Viewability measured on the element with id="{opts.view_element}" '
            )
        else:
            assert measured == (
                " Viewability measured on this tag's parent element (the creative's container) "
            )
    assert len(comments) == 2, parsed.comments
    opening, closing = comments
    if tracker.tracker_type is TrackerType.IMPRESSION:
        assert opening.startswith(" Imp Tracker - ") and opening.endswith(" - DO NOT MODIFY ")
        shown = opening[len(" Imp Tracker - ") : -len(" - DO NOT MODIFY ")]
        assert closing == " End of Imp Tracker "
    else:
        assert opening.startswith(" Click Tracker - ") and opening.endswith(" ")
        shown = opening[len(" Click Tracker - ") : -1]
        assert closing == " End of Click Tracker "
    flat = re.sub(r"[\x00-\x1f\x7f]+", " ", tracker.name).strip()
    assert html.unescape(shown) == flat
    assert "<" not in shown and ">" not in shown


@pytest.mark.parametrize(
    ("tracker_type", "fmt", "preset", "macros", "use_code"), all_combinations()
)
def test_every_exported_tag_parses_as_exactly_one_element(
    tracker_type: TrackerType,
    fmt: TagFormat,
    preset: Preset,
    macros: tuple[Macro, ...],
    use_code: bool,
) -> None:
    tracker = TRACKERS[tracker_type]
    opts = options(fmt, preset, macros, use_code)
    check_html(render_tag(tracker, opts), tracker, fmt, opts)


NASTY_NAMES = st.one_of(
    st.text(max_size=60),
    st.sampled_from(
        [
            "-->",
            "--!>",
            "<!-- x -->",
            "a --> <script>alert(1)</script>",
            '"><img src=x onerror=alert(1)>',
            "line\nbreak\r\n-->",
            "&amp; &lt;",
            "-",
            ">",
            "->",
        ]
    ),
)


@settings(max_examples=300, deadline=None)
@given(
    name=NASTY_NAMES,
    code=st.one_of(st.none(), st.text(min_size=1, max_size=30)),
    type_and_format=st.sampled_from(
        [(t, f) for t, formats in FORMATS_BY_TYPE.items() for f in formats]
    ),
    preset=st.sampled_from(list(Preset)),
    macros=st.sampled_from(MACRO_SUBSETS),
    use_code=st.booleans(),
)
def test_no_name_or_code_can_break_the_tag(
    name: str,
    code: str | None,
    type_and_format: tuple[TrackerType, TagFormat],
    preset: Preset,
    macros: tuple[Macro, ...],
    use_code: bool,
) -> None:
    tracker_type, fmt = type_and_format
    tracker = TrackerTagData(42, tracker_type, name, code)
    opts = options(fmt, preset, macros, use_code)
    check_html(render_tag(tracker, opts), tracker, fmt, opts)
