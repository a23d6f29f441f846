"""Several `digitrec serve` replicas behind nginx (docs/serve-nginx.conf, as docs/serve.md shows it), on 127.0.0.1."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from helpers import free_port
from live_server import serve_process

from digitrec.synth.variants import white_300

CONF = Path(__file__).resolve().parents[2] / "docs" / "serve-nginx.conf"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


@pytest.fixture
def nginx_for():
    """nginx with the documented configuration, its replicas' ports changed to the given ones."""
    if NGINX is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx; .ci/run installs it)")
    started = []

    def start(prefix: Path, ports: list[int]) -> str:
        listen = free_port()
        text = CONF.read_text().replace("127.0.0.1:8000", f"127.0.0.1:{listen}")
        for documented, port in zip(("8001", "8002"), ports):
            text = text.replace(f"127.0.0.1:{documented}", f"127.0.0.1:{port}")
        (prefix / "nginx.conf").write_text(text)
        user = " user root;" if os.geteuid() == 0 else ""  # as root its workers would be nobody, locked out of tmp
        proc = subprocess.Popen([NGINX, "-p", str(prefix), "-c", str(prefix / "nginx.conf"), "-g",
                                 f"daemon off;{user}"], stderr=subprocess.PIPE, text=True)
        started.append(proc)
        url = f"http://127.0.0.1:{listen}"
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                httpx.get(f"{url}/healthz", timeout=2)
                return url
            except httpx.TransportError:
                time.sleep(0.1)
        proc.kill()
        pytest.fail(f"nginx did not start: {proc.communicate()[1]}")

    yield start
    for proc in started:
        proc.terminate()
        proc.wait(timeout=10)


def png(picture) -> bytes:
    import io

    buf = io.BytesIO()
    picture.save(buf, format="PNG")
    return buf.getvalue()


@pytest.mark.slow  # two servers and their workers start: 20-40 s on a busy 2-core machine
def test_two_replicas_behind_nginx_both_answer_and_one_can_stop(nginx_for, mnist_test, tmp_path):
    raw = png(white_300(mnist_test.images[0], None))
    label = int(mnist_test.labels[0])
    with serve_process("--workers", "1", "--drain", "1") as one, serve_process("--workers", "1") as two:
        ports = [int(one.url.rsplit(":", 1)[1]), int(two.url.rsplit(":", 1)[1])]
        url = nginx_for(tmp_path, ports)
        with httpx.Client(base_url=url, timeout=30) as client:
            answers = [client.post("/v1/predict", content=raw, headers={"content-type": "image/png"})
                       for _ in range(12)]
            assert all(r.status_code == 200 and r.json()["digit"] == label for r in answers)
            assert {r.headers["x-replica"] for r in answers} == {f"127.0.0.1:{p}" for p in ports}
            # a rolling update's first step: one replica is told to stop; every request is still answered
            one.proc.send_signal(signal.SIGTERM)
            one.proc.wait(timeout=30)
            after = [client.post("/v1/predict", content=raw, headers={"content-type": "image/png"})
                     for _ in range(6)]
            assert [r.status_code for r in after] == [200] * 6
            assert all(r.json()["digit"] == label for r in after)
