"""``GET /metrics`` on the main port, as ``ADTRACK_METRICS`` says.

* ``tracking`` (default): this process's own registry only (``API_REGISTRY``: refused requests,
  sign-in protection...); each collector serves its metrics on the tracking port.
* ``main``: the same, followed by the metrics of every collector: this process's tracking core
  (the tracking paths answered on the main port, and the collector itself with
  ``--single-process``) and each collector process, read through its control channel. Every
  collector sample gets a ``worker`` label (``main``, ``1``, ``2``...): Prometheus sums them
  with ``sum without (worker) (...)``, and a worker that misbehaves stays visible.
  A collector process that does not answer (restarting) is left out of that scrape.
* ``off``: no ``/metrics`` (404).

The endpoint is sync (it may wait on the collectors' channels), so it runs in a worker thread.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from adtrack.collector.control import CollectorChannels
from adtrack.collector.metrics import PROMETHEUS_CONTENT_TYPE, CollectorMetrics
from adtrack.web.metrics import API_REGISTRY
from adtrack.web.state import web_state

__all__ = ["WORKER_LABEL", "collector_metrics", "metrics_route", "render_main_port_metrics"]

WORKER_LABEL = "worker"
MAIN_WORKER = "main"  # the collector core of the main process itself


def collector_metrics(
    local: CollectorMetrics | None, collectors: CollectorChannels | None
) -> list[tuple[str, bytes]]:
    """``(worker, Prometheus text)`` of this process's tracking core and every collector."""
    texts = [] if local is None else [(MAIN_WORKER, local.render())]
    if collectors is not None:
        texts.extend(collectors.metrics())
    return texts


class _Labelled(Collector):
    """The families of several collectors' texts, each sample labelled with its worker."""

    def __init__(self, texts: Sequence[tuple[str, bytes]]) -> None:
        self._texts = texts

    def collect(self) -> Iterator[Metric]:
        families: dict[str, Metric] = {}
        for worker, text in self._texts:
            for family in text_string_to_metric_families(text.decode()):
                merged = families.get(family.name)
                if merged is None:
                    merged = families[family.name] = Metric(
                        family.name, family.documentation, family.type, family.unit
                    )
                for sample in family.samples:
                    labels = {WORKER_LABEL: worker, **sample.labels}
                    merged.samples.append(sample._replace(labels=labels))
        return iter(families.values())


def render_main_port_metrics(mode: str, collector_texts: Sequence[tuple[str, bytes]]) -> bytes:
    """The main port's metrics page for ``mode`` ``tracking`` or ``main``."""
    page = generate_latest(API_REGISTRY)
    if mode == "main" and collector_texts:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_Labelled(collector_texts))
        page += generate_latest(registry)
    return page


def metrics_route() -> Route:
    """The ``/metrics`` route (a plain route: it is not part of the OpenAPI document)."""

    def metrics(request: Request) -> Response:
        mode = web_state(request).services.settings.metrics
        if mode == "off":
            return PlainTextResponse("Not Found", status_code=404)
        texts: list[tuple[str, bytes]] = []
        if mode == "main":
            texts = web_state(request).collector_metrics()
        return Response(
            render_main_port_metrics(mode, texts), media_type=PROMETHEUS_CONTENT_TYPE.decode()
        )

    return Route("/metrics", metrics, methods=["GET"])
