"""Telling a full or failing store from other errors: the web app answers the first with 503.

Adapter: ``adapters/sql/db.py`` (``storage_unavailable``), handed to the web app by the
composition root.
"""

from __future__ import annotations

from collections.abc import Callable

__all__ = ["StorageFailure"]

# Why the store cannot take writes when the exception says its disk is full or failing
# (a short reason, for the answer), else None.
StorageFailure = Callable[[BaseException], str | None]
