"""Decoding and preprocessing in worker processes, the pictures of concurrent requests gathered in chunks.

Why processes: decoding and preprocessing a picture are a hundred-odd NumPy, SciPy and Pillow calls,
each short and most holding the GIL; in threads they would take turns with the event loop and with
each other, and a 2-core machine would do the work of about one. In processes they run on every core
(`usable_cores`) while the event loop parses requests and the model thread runs batches.

Why chunks: handing work to another process costs a pickle and two pipe trips. `PicturePool` sends
each idle worker everything waiting (up to `MAX_CHUNK` pictures), so under load one trip carries many
pictures, and with nothing else waiting a lone picture goes at once.
"""

from __future__ import annotations

import asyncio
import math
import multiprocessing
import traceback
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass

from digitrec.errors import DigitrecError
from digitrec.pictures.preprocess import Preprocessed, preprocess
from digitrec.server.bodies import Picture, bad_image, source
from digitrec.server.limits import ApiError

MAX_CHUNK = 16  # pictures per trip to a worker: enough to amortise the trip, small enough to share out


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


def _warm() -> None:
    """A worker's first task: the imports above are done by now; nothing else to load."""


class PicturePool:
    """`workers` processes preparing pictures; `await pool.prepare(pictures)` from the event loop."""

    def __init__(self, workers: int, max_pixels: int) -> None:
        self.workers, self.max_pixels = workers, max_pixels
        # spawn, not fork: the server process holds model threads (torch, onnxruntime) that a fork
        # would copy mid-flight; a fresh interpreter imports only what preprocessing needs
        self._executor = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"))
        self._waiting: list[tuple[Picture, asyncio.Future]] = []
        self._busy = 0  # chunks out at the workers

    @property
    def waiting(self) -> int:
        """Pictures not yet handed to a worker."""
        return len(self._waiting)

    async def start(self) -> None:
        """Start every worker now, so that the first requests do not wait for Python to start."""
        loop = asyncio.get_running_loop()
        await asyncio.gather(*[loop.run_in_executor(self._executor, _warm) for _ in range(self.workers)])

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)

    async def prepare(self, pictures: list[Picture]) -> list[Preprocessed | Refusal]:
        loop = asyncio.get_running_loop()
        futures = [loop.create_future() for _ in pictures]
        self._waiting.extend(zip(pictures, futures))
        self._dispatch()
        return await asyncio.gather(*futures)

    def _dispatch(self) -> None:
        """Share what waits among the idle workers, in arrival order."""
        while self._waiting and self._busy < self.workers:
            size = min(MAX_CHUNK, math.ceil(len(self._waiting) / (self.workers - self._busy)))
            chunk, self._waiting = self._waiting[:size], self._waiting[size:]
            self._busy += 1
            task = self._executor.submit(prepare_all, [p for p, _ in chunk], self.max_pixels)
            loop = chunk[0][1].get_loop()
            task.add_done_callback(lambda done, chunk=chunk, loop=loop: loop.call_soon_threadsafe(self._done, done,
                                                                                                  chunk))

    def _done(self, task: Future, chunk: list[tuple[Picture, asyncio.Future]]) -> None:
        self._busy -= 1
        error = task.exception()
        for n, (_, future) in enumerate(chunk):
            if not future.done():  # a request that went away leaves a cancelled future
                future.set_exception(error) if error else future.set_result(task.result()[n])
        self._dispatch()
