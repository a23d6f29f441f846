"""Decoding and preprocessing in worker processes, the pictures of concurrent requests gathered in chunks.

Why processes: decoding and preprocessing a picture are a hundred-odd NumPy, SciPy and Pillow calls,
each short and most holding the GIL; in threads they would take turns with the event loop and with
each other, and a 2-core machine would do the work of about one. In processes they run on every core
(`usable_cores`) while the event loop parses requests and the model thread runs batches.

Why chunks: handing work to another process costs a pickle and two pipe trips. `PicturePool` sends
each idle worker everything waiting (up to `MAX_CHUNK` pictures), so under load one trip carries many
pictures, and with nothing else waiting a lone picture goes at once.

Why one executor per worker: a `ProcessPoolExecutor` whose process dies (the out-of-memory killer, a
crash in a native decoder) is broken for good, and it takes every other worker's chunk with it. A
pool of one-process executors loses only the dead worker's chunk: the others keep serving while it is
replaced, and the pictures it held are tried once more on another (a picture that kills its worker
twice is answered 503). A worker that holds a chunk for longer than `stuck_s` (a decoder caught in a
loop) is killed and replaced the same way, so nothing waits on it for ever.
"""

from __future__ import annotations

import asyncio
import logging
import math
import multiprocessing
import os
import signal
import threading
import time
import traceback
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Callable

from digitrec.errors import DigitrecError
from digitrec.pictures.preprocess import Preprocessed, preprocess
from digitrec.server.admission import RETRY_AFTER_S
from digitrec.server.limits import ApiError
from digitrec.server.received import Picture, bad_image, source

MAX_CHUNK = 16  # pictures per trip to a worker: enough to amortise the trip, small enough to share out
TICK_S = 0.5  # how often the pool looks for stuck workers and for idle ones that died
GIVE_UP = 3  # failed starts in a row after which the pool says it cannot heal (/healthz fails)
CLOSE_S = 1.0  # how long a closing pool waits for its idle workers to exit before killing them

log = logging.getLogger("uvicorn.error")  # uvicorn's server log, where its own errors go


@dataclass(frozen=True)
class Refusal:
    """A picture the server refuses, as it crosses back from a worker (ApiError does not pickle)."""

    status: int
    code: str
    message: str
    field: str | None

    def error(self) -> ApiError:
        return ApiError(self.status, self.code, self.message, self.field)


def prepare(picture: Picture, max_pixels: int) -> Preprocessed | Refusal:
    """One picture → what the model sees, exactly as `Recognizer.predict_many` prepares it (the same
    `preprocess`), or why it is refused: not a picture, too many pixels, broken (bodies.source)."""
    try:
        image = source(picture, max_pixels)
        return image if isinstance(image, Preprocessed) else preprocess(image, picture.name)
    except ApiError as exc:
        return Refusal(exc.status, exc.code, exc.message, exc.field)
    except DigitrecError as exc:
        refused = bad_image(picture, exc)
        return Refusal(refused.status, refused.code, refused.message, refused.field)
    except Exception:  # noqa: BLE001 - a bug here must fail this picture's request, not its chunk's others
        traceback.print_exc()
        return Refusal(500, "internal_error", f"{picture.name}: the server failed to read this picture", picture.field)


def prepare_all(pictures: list[Picture], max_pixels: int) -> list[Preprocessed | Refusal]:
    """A worker's task: a chunk of pictures, each prepared on its own."""
    return [prepare(p, max_pixels) for p in pictures]


def _follow(server: int) -> None:
    """A worker's initializer: exit when the server process is gone (killed with SIGKILL, it could not stop
    its workers), instead of lingering with its pipes open."""
    def watch() -> None:
        while os.getppid() == server:
            time.sleep(1.0)
        os._exit(0)

    threading.Thread(target=watch, name="digitrec-follow-server", daemon=True).start()


def _warm() -> int:
    """A worker's first task: the imports above are done by now; its process id, to kill it if stuck."""
    return os.getpid()


@dataclass
class Job:
    """A picture waiting for a worker, the future its request awaits, and whether it was tried once."""

    picture: Picture
    future: asyncio.Future
    retried: bool = False


class Worker:
    """One preprocessing process, in an executor of its own; `ready` once its process has started."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.renew()

    def renew(self) -> None:
        """A new executor, whose process starts with its first task (the old one is given up)."""
        # spawn, not fork: the server process holds model threads (torch, onnxruntime) that a fork
        # would copy mid-flight; a fresh interpreter imports only what preprocessing needs
        self.executor = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn"),
                                            initializer=_follow, initargs=(os.getpid(),))
        self.pid: int | None = None
        self.ready = False
        self.chunk: list[Job] | None = None
        self.since = 0.0  # when the chunk went out
        self.killed = ""  # why the pool killed this worker ("" if it did not)

    def broken(self) -> bool:
        """The process died between chunks (no task of ours noticed)."""
        return bool(getattr(self.executor, "_broken", False))

    def alive(self) -> bool:
        """Its process still exists (until its executor has reaped it)."""
        if self.pid is None:
            return False
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def kill(self, why: str) -> None:
        self.killed = why
        if self.pid is not None:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


class PicturePool:
    """`workers` processes preparing pictures; `await pool.prepare(pictures)` from the event loop.
    `on_restart(reason)` is told each replacement ("died" or "stuck") for /metrics."""

    def __init__(self, workers: int, max_pixels: int, stuck_s: float = 30.0,
                 on_restart: Callable[[str], None] = lambda reason: None) -> None:
        self.workers, self.max_pixels, self.stuck_s, self.on_restart = workers, max_pixels, stuck_s, on_restart
        self._pool = [Worker(n) for n in range(workers)]
        self._waiting: list[Job] = []
        self.failed_starts = 0  # in a row; reset by a worker that starts
        self._closed = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._tick: asyncio.TimerHandle | None = None

    @property
    def waiting(self) -> int:
        """Pictures not yet handed to a worker."""
        return len(self._waiting)

    @property
    def healing(self) -> int:
        """Workers being started again after one died or was stuck."""
        return sum(not w.ready for w in self._pool)

    @property
    def failing(self) -> str | None:
        """Why the pool cannot heal (replacements fail to start), or None."""
        if self.failed_starts >= GIVE_UP and self.healing == self.workers:
            return f"{self.failed_starts} preprocessing workers in a row failed to start"
        return None

    async def start(self) -> None:
        """Start every worker now, so that the first requests do not wait for Python to start."""
        self._loop = asyncio.get_running_loop()
        pids = await asyncio.gather(*[asyncio.wrap_future(w.executor.submit(_warm)) for w in self._pool])
        for worker, pid in zip(self._pool, pids):
            worker.pid, worker.ready = pid, True
        self._tick = self._loop.call_later(TICK_S, self._check)

    def close(self) -> None:
        """Stop the workers, never waiting on one for long: a busy one (stuck, or working for a request
        that went away) is killed at once, and one that has not exited `CLOSE_S` after being told to
        (stopped, hung between chunks) is killed then."""
        self._closed = True
        if self._tick is not None:
            self._tick.cancel()
        for worker in self._pool:
            if worker.chunk is not None or not worker.ready:
                worker.kill("stopping")
            worker.executor.shutdown(wait=False, cancel_futures=True)  # an idle worker exits when it reads this
        deadline = time.monotonic() + CLOSE_S
        for worker in self._pool:
            while worker.alive() and time.monotonic() < deadline:
                time.sleep(0.02)
            if worker.alive():
                worker.kill("stopping")

    async def prepare(self, pictures: list[Picture]) -> list[Preprocessed | Refusal]:
        loop = asyncio.get_running_loop()
        jobs = [Job(p, loop.create_future()) for p in pictures]
        self._waiting.extend(jobs)
        self._dispatch()
        return await asyncio.gather(*[job.future for job in jobs])

    def _dispatch(self) -> None:
        """Share what waits among the idle workers, in arrival order."""
        self._waiting = [job for job in self._waiting if not job.future.done()]  # requests that went away
        idle = [w for w in self._pool if w.ready and w.chunk is None]
        while self._waiting and idle:
            worker = idle.pop(0)
            size = min(MAX_CHUNK, math.ceil(len(self._waiting) / (len(idle) + 1)))
            chunk, self._waiting = self._waiting[:size], self._waiting[size:]
            try:
                task = worker.executor.submit(prepare_all, [job.picture for job in chunk], self.max_pixels)
            except BrokenProcessPool:  # it died idle, since the last look
                self._waiting[:0] = chunk
                self._replace(worker, "died")
                continue
            worker.chunk, worker.since = chunk, time.monotonic()
            task.add_done_callback(lambda done, worker=worker: self._call(self._done, worker, done))

    def _call(self, function: Callable, *args) -> None:
        """Run `function(*args)` in the event loop, from a worker's thread (not once the loop is gone)."""
        if self._loop is not None and not self._loop.is_closed():
            try:
                self._loop.call_soon_threadsafe(function, *args)
            except RuntimeError:  # closed in between: the server is gone, nobody waits
                pass

    def _done(self, worker: Worker, task: Future) -> None:
        chunk, worker.chunk = worker.chunk or [], None
        error = RuntimeError("the worker was stopped") if task.cancelled() else task.exception()  # closing
        if isinstance(error, BrokenProcessPool) and not self._closed:
            self._replace(worker, worker.killed or "died", len(chunk))
            self._retry(chunk, again=worker.killed != "stuck")
        else:
            for n, job in enumerate(chunk):
                if not job.future.done():  # a request that went away leaves a cancelled future
                    job.future.set_exception(error) if error else job.future.set_result(task.result()[n])
        self._dispatch()

    def _retry(self, chunk: list[Job], again: bool) -> None:
        """A dead worker's pictures: to the front of the queue once; a second time, or a stuck one: 503."""
        retry = [job for job in chunk if again and not job.retried and not job.future.done()]
        for job in chunk:
            if job not in retry and not job.future.done():
                job.future.set_exception(ApiError(
                    503, "worker_failed", f"{job.picture.name}: the worker reading this picture stopped; "
                    f"retry in {RETRY_AFTER_S} s", job.picture.field, headers={"Retry-After": str(RETRY_AFTER_S)}))
            job.retried = True
        self._waiting[:0] = retry

    def _replace(self, worker: Worker, reason: str, pictures: int = 0) -> None:
        """A new process in the dead one's place; the pool serves on with the others meanwhile."""
        self.on_restart(reason)
        what = "was stuck and was killed" if reason == "stuck" else f"died ({exit_status(worker)})"
        log.warning("preprocessing worker %d (pid %s) %s, holding %d pictures; starting a new one",
                    worker.number, worker.pid, what, pictures)
        worker.executor.shutdown(wait=False, cancel_futures=True)
        self._start(worker)

    def _start(self, worker: Worker) -> None:
        if self._closed:
            return
        worker.renew()
        try:
            warm = worker.executor.submit(_warm)
        except RuntimeError as exc:  # cannot start threads or processes at all
            return self._failed_start(worker, exc)
        warm.add_done_callback(lambda done: self._call(self._started, worker, done))

    def _started(self, worker: Worker, warm: Future) -> None:
        if self._closed:
            return
        error = warm.exception()
        if error is not None:
            return self._failed_start(worker, error)
        worker.pid, worker.ready, self.failed_starts = warm.result(), True, 0
        log.warning("preprocessing worker %d restarted (pid %s)", worker.number, worker.pid)
        self._dispatch()

    def _failed_start(self, worker: Worker, error: BaseException) -> None:
        self.failed_starts += 1
        log.error("preprocessing worker %d failed to start (%s); trying again", worker.number, error)
        assert self._loop is not None
        self._loop.call_later(min(2.0 ** self.failed_starts / 4, 10.0), self._start, worker)

    def _check(self) -> None:
        """Every TICK_S: kill workers stuck on a chunk; replace ready ones that died idle."""
        if self._closed:
            return
        now = time.monotonic()
        for worker in self._pool:
            if worker.chunk is not None and now - worker.since > self.stuck_s and not worker.killed:
                worker.kill("stuck")
            elif worker.ready and worker.chunk is None and worker.broken():
                self._replace(worker, "died")
        self._dispatch()
        if not self._closed:
            self._tick = asyncio.get_running_loop().call_later(TICK_S, self._check)


def exit_status(worker: Worker) -> str:
    """How the worker's process ended ("killed by SIGKILL", "exit code 1"), as far as its executor knows."""
    processes = getattr(worker.executor, "_processes", None) or {}
    code = next((p.exitcode for p in processes.values() if p.exitcode is not None), None)
    if code is None:
        return "its process is gone"
    if code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"
