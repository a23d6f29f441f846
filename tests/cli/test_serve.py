"""`digitrec serve`: the command starts a real server, and its bad options are one-line errors."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from helpers import assert_user_error, free_port, run_cli
from live_server import shipped_model, wait_healthy


def test_serve_command():
    """`digitrec serve` starts uvicorn on the given port and serves the model it was given."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "digitrec", "serve", "--port", str(port), "--threads", "1",
                             "--model", str(shipped_model()), "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", timeout=60)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/model").json()["backend"] == "torch"
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=20)
    assert f"http://127.0.0.1:{port}/" in out


@pytest.mark.parametrize("argv, message", [
    (["--model", "missing.safetensors"], "missing.safetensors: model file not found"),
    (["--backend", "nope"], "--backend: unknown backend 'nope'"),
    (["--threads", "0"], "--threads: Input should be greater than or equal to 1"),
    (["--threshold", "2"], "--threshold: must be between 0 and 1, got 2.0"),  # the recogniser's own check
    (["--port", "70000"], "--port: must be 0..65535"),
])
def test_serve_command_errors_are_one_line(argv, message):
    assert_user_error(run_cli("serve", *argv, in_process=True), message)
