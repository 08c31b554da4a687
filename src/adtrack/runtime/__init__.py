"""The lifecycles of adtrack's processes: ``serve.py`` (``adtrack serve``: everything of one
host), ``collectors.py`` (``adtrack collector``) and ``aggregator.py`` (``adtrack aggregator``).
Each takes its services from ``adtrack.bootstrap``."""
