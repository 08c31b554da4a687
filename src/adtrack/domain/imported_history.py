"""Report history imported from the platform adtrack replaces sits in the rollups without a
tracker: its rows carry this tracker id (live events always have a real tracker), and reports
label it so (docs/reporting.md, "Imported report history")."""

from __future__ import annotations

__all__ = ["IMPORTED_HISTORY_LABEL", "IMPORTED_HISTORY_TRACKER"]

IMPORTED_HISTORY_TRACKER = 0
IMPORTED_HISTORY_LABEL = "Imported history (no tracker)"
