"""A real uvicorn server on 127.0.0.1, in a thread, for the API, page and fuzz tests (and the bench)."""

from __future__ import annotations

import socket
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Iterator

import httpx
import pytest


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


def wait_healthy(url: str, thread: threading.Thread | None = None, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if thread is not None and not thread.is_alive():
            raise RuntimeError("the server stopped during start-up")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url}/healthz did not answer within {timeout:.0f} s")
