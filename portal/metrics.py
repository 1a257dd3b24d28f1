"""``portal_requests_total``: every HTTP request and WebSocket handshake the portal answers.

Labelled by the route's template (``/api/v1/devices/{device_id}``), never the raw path, so a
scan of random URLs or a million device ids cannot grow the label set: the routes are fixed,
unknown paths are one ``unmatched`` route, and unusual methods one ``OTHER`` method.
"""

from __future__ import annotations

from litestar.types import Message, Scope
from prometheus_client import CollectorRegistry, Counter

UNMATCHED = "unmatched"
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RequestMetrics:
    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = Counter(
            "portal_requests",
            "HTTP requests served (WebSocket handshakes included), by route template",
            ["method", "route", "status"],
            registry=registry,
        )

    async def count(self, message: Message, scope: Scope) -> None:
        """A ``before_send`` hook: it sees the start of every response, errors included."""
        if message["type"] == "http.response.start":
            method = scope.get("method", "GET")
            status = str(message["status"])
        elif message["type"] == "websocket.accept":
            method, status = "GET", "101"
        else:
            return
        route = scope.get("path_template") or UNMATCHED
        self.requests.labels(method if method in _METHODS else "OTHER", route, status).inc()
