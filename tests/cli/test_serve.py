"""`digitrec serve`: the command starts a real server, and its bad options are one-line errors."""

from __future__ import annotations

import subprocess
import sys

import httpx
import pytest
from helpers import assert_user_error, free_port, run_cli
from live_server import live_server, shipped_model, wait_healthy


def test_serve_command():
    """`digitrec serve` starts uvicorn on the given port and serves the model it was given."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "digitrec", "serve", "--port", str(port), "--threads", "1",
                             "--model", str(shipped_model()), "--log-level", "warning"],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        wait_healthy(f"http://127.0.0.1:{port}", timeout=60)
        assert httpx.get(f"http://127.0.0.1:{port}/v1/model").json()["backend"] == "onnx"  # the default
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


def test_serve_options_become_the_server_settings():
    """The command's own units (MB) reach the server in its units (bytes), and nothing is dropped."""
    from digitrec.cli import build_parser
    from digitrec.cli.serve import settings_from

    args = build_parser().parse_args(["serve", "--max-upload-mb", "2.5", "--max-pixels", "1000000",
                                      "--max-batch", "8", "--threads", "2", "--threshold", "0.7",
                                      "--backend", "onnx", "--device", "cpu", "--model", "m.safetensors"])
    s = settings_from(args)
    assert s.max_upload_bytes == int(2.5 * 1024 * 1024) and s.max_pixels == 1_000_000 and s.max_batch == 8
    assert (s.threads, s.threshold, s.backend, s.device, str(s.model_file)) == (2, 0.7, "onnx", "cpu", "m.safetensors")
    defaults = settings_from(build_parser().parse_args(["serve"]))
    assert defaults.max_upload_bytes == 10 * 1024 * 1024 and defaults.model_file is None


def test_serve_with_the_onnx_backend_answers_as_torch_does(mnist_test):
    import io

    from PIL import Image

    from digitrec import Recognizer
    from digitrec.server.app import Settings

    buf = io.BytesIO()
    Image.fromarray(255 - mnist_test.images[0]).resize((200, 200)).save(buf, format="PNG")
    with live_server(Settings(model_file=shipped_model(), backend="onnx", device="cpu", threads=1)) as url:
        assert httpx.get(f"{url}/v1/model").json()["backend"] == "onnx"
        body = httpx.post(f"{url}/v1/predict", files={"file": ("7.png", buf.getvalue())}, timeout=60).json()
    local = Recognizer.load(shipped_model(), device="cpu").predict(buf.getvalue())
    assert body["digit"] == local.digit == mnist_test.labels[0]
    assert abs(body["probability"] - local.probability) < 1e-4
