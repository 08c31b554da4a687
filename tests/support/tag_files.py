"""Tags in the exact forms the original platform exported them, for the tag-file tests."""

from __future__ import annotations

# The forms of the platform's "Export Tags" dialog (Create an Impression Tracker / Create a
# Click Tracker, step 7), one per line as users keep them in a text file.
PIXEL = (
    '<!-- Imp Tracker - Spring sale - DO NOT MODIFY --><img src="https://ib.adnxs.com/imptr?'
    'id=531&cachebuster=[CACHEBUSTER]&ancost=[ANCOST]" width="1" height="1" />'
    "<!-- End of Imp Tracker -->"
)
DOC_PIXEL = (
    '<!-- Imp Tracker DO NOT MODIFY --> <img src="media/imptr?id=2766&cachebuster=[CACHEBUSTER]'
    '&ancost=[ANCOST]&t=2&redir=[REDIRECT_URL]" width="1" height="1" /> <!-- End of Imp Tracker -->'
)
SCRIPT = (
    "<!-- Imp Tracker - Homepage JS - DO NOT MODIFY -->"
    '<script src="https://ib.adnxs.com/imptr?id=532&cachebuster=[CACHEBUSTER]&t=1" '
    'type="text/javascript"></script><!-- End of Imp Tracker -->'
)
CLICK = (
    "<!-- Click Tracker - CLIK TRAX -->\n"
    '<a href="http://ib.adnxs.com/clktrb?id=21378&cachebuster=[CACHEBUSTER]&ancost=[ANCOST]'
    '&redir=[REDIRECT_URL]">YOUR TEXT HERE</a>\n'
    "<!-- End of Click Tracker -->"
)
