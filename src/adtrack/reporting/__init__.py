"""The reporting read side: reports over the rollups, log-level feeds over the raw-event
archive, saved and scheduled reports.

``request.py`` (what a report asks for), ``plan.py`` (its buckets and the rollup rows that make
them; pure), ``engine.py`` (runs a plan through the ``RollupReads`` port), ``results.py``,
``formats.py`` (JSON, CSV, XLSX, text), ``summary.py`` (the UTC totals view), ``feeds.py`` and
``feed_stream.py`` (the feeds), ``saved_reports.py`` (with ``saved_report_fields.py``, the
body and its checks). No module here imports SQL, adapters or
settings: the composition root (``bootstrap.py``) hands in the adapters and plain values.
"""
