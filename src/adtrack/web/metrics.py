"""Prometheus metrics of the API/console process (the main port).

One registry per process: sign-in protection, refused HTTP requests on the main port and the
like register their counters here; the main port's ``/metrics`` renders it.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

__all__ = ["API_REGISTRY"]

API_REGISTRY = CollectorRegistry(auto_describe=True)
