"""The ``adtrack`` command line: the Typer app in ``main.py``, one module per command group,
and ``database.py``, the one way a command opens the (migrated) database."""
