"""The types of what SQLAlchemy Core returns for our tables, named once: the SQL adapters'
only ``Any``. Each use converts the values to the domain's types.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Row, Select

__all__ = ["DriverTuple", "SqlRow", "SqlSelect", "SqlValues"]

# Any: SQLAlchemy Core types the rows of a ``Table`` select with ``Any`` (a table's column types
# are known at run time only), and a DB-API driver's rows are untyped tuples.

SqlRow = Row[*tuple[Any, ...]]  # a row of a select, any width (attribute access)
SqlSelect = Select[Any]  # a select of a Table's columns
SqlValues = Sequence[Any]  # one result row's values, in select order (a Row or a tuple)
DriverTuple = tuple[Any, ...]  # one row as the database driver returns it
