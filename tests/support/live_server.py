"""A real uvicorn server on 127.0.0.1, in a thread, for the API, page and fuzz tests (and the bench), or
`digitrec serve` in a process of its own, for the tests that kill its workers or send it signals."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator

import httpx
import pytest
from helpers import free_port

from digitrec.inference.recognizer import Recognizer


def shipped_model():
    """The model shipped in the package; the serving tests need a good model, not a 30 s toy."""
    from digitrec.models.modelfile import shipped_model_path

    path = shipped_model_path()
    if not path.is_file():
        pytest.skip(f"{path} is missing (the default model comes with the predict branch)")
    return path


@dataclass
class Served:
    url: str
    server: Any  # uvicorn.Server: `server.should_exit = True` starts a graceful shutdown
    thread: threading.Thread


@contextmanager
def serving(settings, recognizer=None) -> Iterator[Served]:
    """Serve `create_app(settings, recognizer)` on a free port of 127.0.0.1, once /healthz answers."""
    import uvicorn

    from digitrec.server.app import create_app

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))  # the OS picks a free port; uvicorn serves on this very socket, no race
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(create_app(settings, recognizer), log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        wait_healthy(url, thread)
        yield Served(url, server, thread)
    finally:
        server.should_exit = True
        thread.join(timeout=30)
        sock.close()


@contextmanager
def live_server(settings, recognizer=None) -> Iterator[str]:
    """`serving`, for tests that need only the base URL."""
    with serving(settings, recognizer) as served:
        yield served.url


def wait_healthy(url: str, thread: threading.Thread | None = None, timeout: float = 60.0,
                 alive: Callable[[], bool] | None = None, route: str = "/healthz") -> None:
    """Until `route` answers 200; the server's thread, or `alive()`, says whether it is still starting."""
    alive = alive or (lambda: thread is None or thread.is_alive())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError("the server stopped during start-up")
        try:
            if httpx.get(f"{url}{route}", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url}{route} did not answer within {timeout:.0f} s")


class Gated(Recognizer):
    """The shipped model, whose model calls wait for `gate` (and say they started, in `entered`): requests are
    then surely in flight when a test acts, whatever the machine's speed."""

    def __init__(self) -> None:
        inner = Recognizer.load(shipped_model(), backend="onnx", device="cpu")
        super().__init__(inner.backend, inner.threshold)
        self.gate, self.entered = threading.Event(), threading.Event()

    def predict_inputs(self, inputs):
        self.entered.set()
        assert self.gate.wait(60), "the test never opened the gate"
        return super().predict_inputs(inputs)


def metric(url: str, name: str, **labels) -> float:
    """One sample's value from /metrics (0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(httpx.get(f"{url}/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


@dataclass
class Process:
    url: str
    proc: subprocess.Popen  # its stdout and stderr together, as text, in `proc.stdout`

    def workers(self) -> list[int]:
        """The process ids of its preprocessing workers (children started by multiprocessing's spawn)."""
        pids = Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
        return [int(p) for p in pids if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text(errors="replace")]


@contextmanager
def serve_process(*args: str, preexec_fn: Callable[[], None] | None = None) -> Iterator[Process]:
    """`digitrec serve --model <shipped> ARGS` in its own process on a free port of 127.0.0.1, once /readyz
    answers 200; killed at the end if it is still running."""
    port = free_port()
    command = [sys.executable, "-m", "digitrec", "serve", "--port", str(port), "--model", str(shipped_model()),
               "--device", "cpu", "--threads", "1", "--log-level", "warning", *args]
    proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1"}, preexec_fn=preexec_fn,
                            start_new_session=True)  # a group of its own: its workers are stopped with it
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, alive=lambda: proc.poll() is None, route="/readyz")
        yield Process(url, proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)  # workers a test left stopped (SIGSTOP) or orphaned
        proc.communicate(timeout=30)
