"""adtrack: a self-hosted impression-tracker and click-tracker server."""

__version__ = "0.1.0"
