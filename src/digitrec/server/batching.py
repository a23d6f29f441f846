"""Micro-batching: the digits of concurrent requests gathered into one model call.

A digit read in a batch costs less than one read alone (CPU per digit of the shipped model:
torch 8.1 ms alone, 3.9 ms in a batch of 64; onnxruntime 3.3 and 2.8 ms; docs/serve.md), and one
model call at a time, in one thread, leaves the other cores to the event loop and the
preprocessing workers. So the server hands the model every digit that is ready, in one
`Recognizer.predict_inputs` call:

- the model idle and digits ready: they go at once, unless more are still being preprocessed and
  fewer than `max_batch` are ready; then it waits for them `wait_s` at most (a few milliseconds;
  0 by default, measured best with onnxruntime, whose batches save little);
- the model busy: digits gather, and go together when it is free.

`Pipeline` is what the routes call: it prepares the pictures in worker processes
(`workers.PicturePool`) and batches the digits; the event loop itself never decodes, preprocesses
or runs the model. Requests reach it admitted (`admission.py`: 503 past a bounded queue).
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Awaitable, Callable, TypeVar

from digitrec.inference.recognizer import Prediction, Recognizer
from digitrec.pictures.preprocess import Preprocessed
from digitrec.server.admission import RETRY_AFTER_S, Admission
from digitrec.server.limits import ApiError
from digitrec.server.received import Picture
from digitrec.server.workers import PicturePool, Refusal

T = TypeVar("T")


class Batcher:
    """Digits from any number of requests → `recognizer.predict_inputs`, in batches, in one thread."""

    def __init__(self, recognizer: Recognizer, max_batch: int, wait_s: float,
                 observe: Callable[[int], None] = lambda size: None) -> None:
        self.recognizer, self.max_batch, self.wait_s, self.observe = recognizer, max_batch, wait_s, observe
        self.expected = 0  # digits still being preprocessed, on their way here
        self._ready: list[tuple[Preprocessed, asyncio.Future]] = []
        self._running = False
        self._since = 0.0  # when the model call in progress started
        self._timer: asyncio.TimerHandle | None = None
        self._thread = ThreadPoolExecutor(1, thread_name_prefix="digitrec-model")

    @property
    def waiting(self) -> int:
        """Digits ready and waiting for the model."""
        return len(self._ready)

    async def predict(self, inputs: list[Preprocessed]) -> list[Prediction]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in inputs]
        self._ready.extend(zip(inputs, futures))
        self._kick()
        return await asyncio.gather(*futures)

    @property
    def stalled_s(self) -> float:
        """Seconds the model call in progress has run (0 when the model is idle)."""
        return time.monotonic() - self._since if self._running else 0.0

    def close(self) -> None:
        """Stop the model thread; a model call that hangs is left behind (a thread cannot be killed), so that
        closing never waits on it (`digitrec serve` then exits without it)."""
        if self._timer is not None:
            self._timer.cancel()
        self._thread.shutdown(wait=False, cancel_futures=True)

    def _kick(self) -> None:
        if self._running or not self._ready:
            return
        if len(self._ready) < self.max_batch and self.expected > 0 and self.wait_s > 0:
            if self._timer is None:  # more digits are on their way: wait for them, briefly
                self._timer = asyncio.get_running_loop().call_later(self.wait_s, self._run)
            return
        self._run()

    def _run(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._running or not self._ready:
            return
        batch, self._ready = self._ready[:self.max_batch], self._ready[self.max_batch:]
        self._running, self._since = True, time.monotonic()
        loop = batch[0][1].get_loop()
        task = self._thread.submit(self.recognizer.predict_inputs, [p for p, _ in batch])
        task.add_done_callback(lambda done: loop.is_closed() or loop.call_soon_threadsafe(self._done, done, batch))

    def _done(self, task: Future, batch: list[tuple[Preprocessed, asyncio.Future]]) -> None:
        self._running = False
        self.observe(len(batch))
        error = task.exception()
        for n, (_, future) in enumerate(batch):
            if not future.done():  # a request that went away leaves a cancelled future
                future.set_exception(error) if error else future.set_result(task.result()[n])
        self._kick()


class Pipeline:
    """Preprocessing in worker processes and batched inference for the routes, the queue's bookkeeping
    (`admission`, which the AdmitRequests middleware consults), and each request's deadline: past
    `deadline_s` a request is answered 504, and when the server stops it is answered 503 (`abort`),
    so that no request waits on a stuck worker or model for ever."""

    def __init__(self, pool: PicturePool, batcher: Batcher, admission: Admission, deadline_s: float = 30.0) -> None:
        self.pool, self.batcher, self.admission, self.deadline_s = pool, batcher, admission, deadline_s
        self.stopping = False
        self._deadlines: set[asyncio.Timeout] = set()

    @property
    def waiting(self) -> int:
        """Pictures waiting for a worker or for the model."""
        return self.pool.waiting + self.batcher.waiting

    async def recognise(self, pictures: list[Picture]) -> list[Prediction]:
        """The pictures of one admitted request → their predictions, in order; the first refused picture
        (not a picture, too large, broken) refuses the request, naming it, and nothing reaches the model."""
        return await self.bounded(self._recognise(pictures))

    async def bounded(self, work: Awaitable[T]) -> T:
        """`work`, within the request deadline (504), or until the server stops (503)."""
        deadline = asyncio.timeout(self.deadline_s)
        try:
            async with deadline:
                self._deadlines.add(deadline)
                return await work
        except TimeoutError:
            if self.stopping:
                raise stopping_error() from None
            raise ApiError(504, "timeout", f"no answer within the request deadline ({self.deadline_s:g} s); "
                                           f"retry in {RETRY_AFTER_S} s",
                           headers={"Retry-After": str(RETRY_AFTER_S)}) from None
        finally:
            self._deadlines.discard(deadline)

    def abort(self) -> None:
        """The server is stopping and its grace period is over: answer every request still inside 503 (their
        deadlines expire now; the pictures they leave behind are dropped as those of a request that went away)."""
        self.stopping = True
        now = asyncio.get_running_loop().time()
        for deadline in list(self._deadlines):
            deadline.reschedule(now)

    def problems(self) -> list[str]:
        """Why this server cannot serve now (for /healthz): a pool that cannot heal, a model that hangs."""
        found = [self.pool.failing] if self.pool.failing else []
        if self.batcher.stalled_s > self.deadline_s:
            found.append(f"the model has not answered for {self.batcher.stalled_s:.0f} s")
        return found

    async def _recognise(self, pictures: list[Picture]) -> list[Prediction]:
        with self.admission.reading(len(pictures)):
            self.batcher.expected += len(pictures)
            try:
                prepared = await self.pool.prepare(pictures)
            finally:
                self.batcher.expected -= len(pictures)
            for item in prepared:
                if isinstance(item, Refusal):
                    raise item.error()
            return await self.batcher.predict(prepared)  # type: ignore[arg-type]

    async def start(self) -> None:
        await self.pool.start()

    def close(self) -> None:
        self.batcher.close()
        self.pool.close()



def stopping_error() -> ApiError:
    return ApiError(503, "unavailable", "the server is stopping; retry on another server",
                    headers={"Retry-After": str(RETRY_AFTER_S)})
