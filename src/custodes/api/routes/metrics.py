"""``/metrics``: the case queue in the Prometheus text format (counts and delays only).

The delays are histograms (``_bucket{le=...}``, ``_sum``, ``_count``), so a dashboard
can show their quantiles, not only a mean that one slow case drags.
"""

from __future__ import annotations

from bisect import bisect_left

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily

from custodes.storage.sql_cases import queue_metrics

router = APIRouter(tags=["metrics"])

_HELP = {
    "alerts": "Alerts stored",
    "accesses": "Access events in the relational store",
    "alerts_per_10000_accesses": "Alert volume per 10,000 accesses",
    "event_to_alert_seconds": "Seconds from an access or sign-in to its alert being stored",
    "alert_to_case_seconds": "Seconds from a case's first alert to the opening of the case",
    "event_to_case_seconds": "Seconds from a case's first access to the opening of the case",
    "case_to_action_seconds": "Seconds from a case's opening to its first response",
    "case_to_closure_seconds": "Seconds from a case's opening to its verdict",
}

#: Upper bounds of the delay buckets, seconds: from a second (the stream) to a week
#: (a verdict that waited for the weekly review).
BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, 4 * 3600.0, 86400.0, 7 * 86400.0)


def histogram(name: str, values: list[float]) -> HistogramMetricFamily:
    """A Prometheus histogram of ``values`` (cumulative buckets, sum and count).

    >>> h = histogram("event_to_case_seconds", [0.5, 3, 3, 7200])
    >>> [(s.labels["le"], s.value) for s in h.samples if s.name.endswith("_bucket")][:3]
    [('1.0', 1.0), ('5.0', 3.0), ('15.0', 3.0)]
    """
    ordered = sorted(values)
    buckets = [(str(bound), float(bisect_left(ordered, bound + 1e-9))) for bound in BUCKETS]
    buckets.append(("+Inf", float(len(ordered))))
    return HistogramMetricFamily(
        f"custodes_{name}", _HELP[name], buckets=buckets, sum_value=float(sum(ordered))
    )


class _QueueCollector:
    def __init__(self, engine) -> None:
        self.engine = engine

    def collect(self):
        counts, delays = queue_metrics(self.engine)
        cases = GaugeMetricFamily("custodes_cases", "Cases by status", labels=["status"])
        for name, value in counts.items():
            if name.startswith("cases_"):
                cases.add_metric([name.removeprefix("cases_")], value)
            else:
                yield GaugeMetricFamily(f"custodes_{name}", _HELP[name], value=value)
        yield cases
        for name, values in delays.items():
            yield histogram(name, values)


@router.get("/metrics", include_in_schema=True, summary="Prometheus metrics")
def metrics(request: Request) -> Response:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_QueueCollector(request.app.state.custodes.ready_engine()))
    return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
