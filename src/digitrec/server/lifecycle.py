"""How `digitrec serve` stops under load: drain, finish what is in flight, answer the rest, exit.

uvicorn's own graceful shutdown stops accepting connections and waits for the requests in flight,
then cancels those left when its timeout ends, which gives their clients a dropped connection, and
the lifespan's shutdown would then wait on any worker or model call that hangs. `Server` adds:

- a drain (`drain_s`, SIGTERM only): the server keeps serving but /readyz answers 503, so that a
  load balancer stops sending it traffic before it stops listening;
- a grace period (`grace_s`): the requests still inside when it ends are answered 503 with
  Retry-After (`Pipeline.abort`), a clean error instead of a reset;
- then uvicorn's own timeout, a little later, for what no route holds (a client still uploading).

The lifespan then closes the pipeline without waiting on a stuck worker (killed) or model call
(left behind), so the process exits within about drain + grace + 3 s whatever hangs.
"""

from __future__ import annotations

import asyncio
import signal
import socket
import time
from types import FrameType
from typing import Any

import uvicorn

CANCEL_AFTER_S = 1.0  # after the grace period, uvicorn cancels what is left (the 503s have been written)


class Server(uvicorn.Server):
    """uvicorn's server with a drain on SIGTERM and a grace period that ends in 503s, not resets."""

    def __init__(self, app: Any, drain_s: float = 0.0, grace_s: float = 30.0, **config: Any) -> None:
        config.setdefault("timeout_graceful_shutdown", grace_s + CANCEL_AFTER_S)
        super().__init__(uvicorn.Config(app, **config))
        self.state = app.state  # where the lifespan puts the pipeline, and /readyz reads `draining`
        self.drain_s, self.grace_s = drain_s, grace_s
        self._drain_until: float | None = None

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        """A first SIGTERM starts the drain (when there is one); Ctrl+C, or a second signal, stops now."""
        first = not self.state.draining
        self.state.draining = True
        if first and sig == signal.SIGTERM and self.drain_s > 0:
            self._captured_signals.append(sig)  # uvicorn raises it again once it has stopped: exit as told
            self._drain_until = time.monotonic() + self.drain_s
            return
        super().handle_exit(sig, frame)

    async def on_tick(self, counter: int) -> bool:
        if self._drain_until is not None and time.monotonic() >= self._drain_until:
            self.should_exit = True
        return await super().on_tick(counter)

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        self.state.draining = True  # also when stopped without a signal (should_exit, in tests)
        abort = asyncio.get_running_loop().call_later(self.grace_s, self._abort)
        try:
            await super().shutdown(sockets)
        finally:
            abort.cancel()

    def _abort(self) -> None:
        pipeline = self.state.pipeline
        if pipeline is not None:
            pipeline.abort()
