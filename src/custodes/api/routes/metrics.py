"""``/metrics``: the case queue in the Prometheus text format (counts and delays only)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from custodes.storage.sql_cases import queue_metrics

router = APIRouter(tags=["metrics"])

_HELP = {
    "alerts": "Alerts stored",
    "accesses": "Access events in the relational store",
    "alerts_per_10000_accesses": "Alert volume per 10,000 accesses",
    "event_to_case_seconds": "Mean seconds from an access to the opening of its case",
    "case_to_action_seconds": "Mean seconds from a case's opening to its first response",
    "case_to_closure_seconds": "Mean seconds from a case's opening to its verdict",
}


class _QueueCollector:
    def __init__(self, engine) -> None:
        self.engine = engine

    def collect(self):
        values = queue_metrics(self.engine)
        cases = GaugeMetricFamily("custodes_cases", "Cases by status", labels=["status"])
        for name, value in values.items():
            if name.startswith("cases_"):
                cases.add_metric([name.removeprefix("cases_")], value)
            else:
                yield GaugeMetricFamily(f"custodes_{name}", _HELP[name], value=value)
        yield cases


@router.get("/metrics", include_in_schema=True, summary="Prometheus metrics")
def metrics(request: Request) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_QueueCollector(request.app.state.custodes.ready_engine()))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
