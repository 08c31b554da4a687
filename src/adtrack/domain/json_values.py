"""JSON as it arrives (a platform's dump, a request body): named once, narrowed where read."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["JsonObject"]

# A decoded JSON object: its values are checked (isinstance) by whoever reads them.
JsonObject = Mapping[str, object]
