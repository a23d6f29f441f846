"""Admission control: a bounded queue, and 503 with Retry-After past it, before anything is parsed.

A request to a picture route holds a place while it is inside the server. It is refused when
`max_queue` requests are inside (a hard bound on memory: at most that many bodies), or when the
pictures already inside would keep it waiting longer than `max_wait_s` at the rate this server has
been answering (pictures per second of busy time, a moving average): the bound then follows the
machine, a busy or slow one admitting fewer, a fast one more, so that overload meets a quick
refusal instead of a queue whose latency grows. `FLOOR` requests are always admitted, so that a
server that has measured nothing yet, or a slow one, still serves.
"""

from __future__ import annotations

import json
import time
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from digitrec.server.limits import error_body

RETRY_AFTER_S = 1  # what a refused client is told to wait: the wait bound is well under that
ADMITTED = ("/v1/predict", "/v1/predict/batch", "/v1/number", "/v1/page")  # the routes that take a place in the queue
FLOOR = 4  # requests always admitted (below max_queue)
WINDOW_S = 0.5  # busy seconds per rate measurement
SMOOTHING = 0.3  # weight of the newest measurement in the moving average


class Admission:
    """The queue's bookkeeping: requests and pictures inside, and the rate they are answered at."""

    def __init__(self, max_queue: int, max_wait_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.max_queue, self.max_wait_s, self.clock = max_queue, max_wait_s, clock
        self.inside = 0  # requests admitted and not yet answered
        self.working = 0  # of those, requests whose pictures are known (`reading`)
        self.pictures = 0  # the pictures of the `working` requests
        self.rate: float | None = None  # pictures answered per busy second
        self._busy_since: float | None = None
        self._busy = 0.0  # busy seconds in the current window, before `_busy_since`
        self._done = 0  # pictures answered in the current window

    @property
    def ahead(self) -> int:
        """Pictures a new request would wait for (a request not yet read counts as one picture)."""
        return self.pictures + self.inside - self.working

    def full(self) -> bool:
        if self.inside >= self.max_queue:
            return True
        if self.inside < FLOOR or self.rate is None or self.max_wait_s <= 0:
            return False
        return self.ahead / self.rate > self.max_wait_s

    @contextmanager
    def admitted(self) -> Iterator[None]:
        """Hold a place for one request (check `full` first)."""
        if self.inside == 0:
            self._busy_since = self.clock()
        self.inside += 1
        try:
            yield
        finally:
            self.inside -= 1
            if self.inside == 0 and self._busy_since is not None:
                self._busy += self.clock() - self._busy_since
                self._busy_since = None

    @contextmanager
    def reading(self, pictures: int) -> Iterator[None]:
        """An admitted request's `pictures` are being read; counted as answered when the block ends well."""
        self.working += 1
        self.pictures += pictures
        try:
            yield
            self._answered(pictures)
        finally:
            self.working -= 1
            self.pictures -= pictures

    def _answered(self, pictures: int) -> None:
        self._done += pictures
        now = self.clock()
        busy = self._busy + (now - self._busy_since if self._busy_since is not None else 0.0)
        if busy < WINDOW_S:
            return
        measured = self._done / busy
        self.rate = measured if self.rate is None else SMOOTHING * measured + (1 - SMOOTHING) * self.rate
        self._busy, self._done = 0.0, 0
        self._busy_since = now if self._busy_since is not None else None


class AdmitRequests:
    """ASGI middleware: a request to a picture route holds a place in the queue while it is inside; with
    no place (or no pipeline: starting, stopping) it is answered 503 with Retry-After at once, for a few
    microseconds of the event loop, its body unread (uvicorn discards it)."""

    def __init__(self, app: Any, state: Any) -> None:
        self.app, self.state = app, state  # state: the app's, where the lifespan puts the pipeline

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] not in ADMITTED:
            return await self.app(scope, receive, send)
        pipeline = self.state.pipeline
        if pipeline is None or pipeline.admission.full():
            scope["digitrec.route"] = scope["path"]  # for the request counters: no route ran
            return await refuse(send, None if pipeline is None else pipeline.admission)
        with pipeline.admission.admitted():
            await self.app(scope, receive, send)


async def refuse(send: Any, admission: Admission | None) -> None:
    if admission is None:
        body = error_body("unavailable", "the server is starting or stopping")
    else:
        body = error_body("overloaded", f"the server is busy ({admission.inside} requests, {admission.ahead} "
                                        f"pictures in progress); retry in {RETRY_AFTER_S} s")
    raw = json.dumps(body).encode()
    await send({"type": "http.response.start", "status": 503,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(raw)).encode()),
                            (b"retry-after", str(RETRY_AFTER_S).encode())]})
    await send({"type": "http.response.body", "body": raw})
