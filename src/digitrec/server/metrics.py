"""`/metrics` in Prometheus's text format (prometheus-client): requests, latency, batch sizes, queue depth.

Each app has its own registry (not prometheus-client's global one), so several apps in one process
(the tests start many) count apart. Requests are counted by an ASGI middleware wrapped around
everything, so refusals made before a route runs (413 for a body over the cap) are counted too;
the route label is the path template of the route that answered (Starlette records it in the
request's scope), or "other", so that clients cannot grow the label set.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.responses import Response

# Seconds. The answers this server aims at take 5–100 ms; overload and large batches take seconds.
LATENCY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)  # digits per model call


class Telemetry:
    """The server's instruments; `queue` is read at each scrape from the functions it is given."""

    def __init__(self, requests_inside: Callable[[], int], pictures_waiting: Callable[[], int]) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter("digitrec_requests", "HTTP requests answered, by route and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("digitrec_request_seconds", "time from request to answer, by route",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.batch = Histogram("digitrec_batch_size", "digits per model call (micro-batches)",
                               buckets=BATCH_BUCKETS, registry=self.registry)
        self.restarts = Counter("digitrec_worker_restarts", "preprocessing workers replaced, by reason: died "
                                "(killed, crashed) or stuck (held a chunk past the request deadline)", ["reason"],
                                registry=self.registry)
        for reason in ("died", "stuck"):
            self.restarts.labels(reason)  # present at 0 from the start, so that an alert can compare
        queue = Gauge("digitrec_queue_depth", "requests admitted and not yet answered (requests), and pictures "
                      "waiting for a worker or for the model (pictures)", ["unit"], registry=self.registry)
        queue.labels("requests").set_function(requests_inside)
        queue.labels("pictures").set_function(pictures_waiting)

    def page(self) -> Response:
        return Response(generate_latest(self.registry), media_type=CONTENT_TYPE_LATEST)


def route_of(scope: dict) -> str:
    """The path template of the route that answered ("/v1/predict"; routing left it in the scope), the
    route a full queue refused (admission.AdmitRequests), or "other" (no route: a 404, or a refusal
    before routing, such as a body over the cap)."""
    return str(getattr(scope.get("route"), "path", None) or scope.get("digitrec.route") or "other")


class CountRequests:
    """ASGI middleware: every HTTP request's route, status and time into `Telemetry`."""

    def __init__(self, app: Any, metrics: Telemetry) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start = time.perf_counter()
        status = 500  # unless a response starts

        async def watched(message: dict) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            route = route_of(scope)
            self.metrics.requests.labels(route, scope["method"], str(status)).inc()
            self.metrics.latency.labels(route).observe(time.perf_counter() - start)
