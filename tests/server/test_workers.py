"""Faults of the preprocessing workers, on `digitrec serve` in its own process on 127.0.0.1:

- a worker killed (SIGKILL, as the out-of-memory killer does) under load is replaced; no request hangs,
  and any that fails is a 503 with Retry-After; /healthz stays 200, /readyz is 503 while it heals;
- a worker stuck on a picture (SIGSTOP) costs its request a 504 at the deadline, and is replaced;
- a model call that hangs past the deadline fails /healthz (liveness) and /readyz until it answers.

No timing assertions (bench/faults.py measures how long healing takes); the client timeouts below only
turn a hang into a failure.
"""

from __future__ import annotations

import io
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
from live_server import Gated, live_server, metric, serve_process, shipped_model

from digitrec.synth.variants import white_300

CLIENTS = 8
NO_HANG_S = 30  # a request that takes longer has hung (the server's deadline is shorter)


def png(image) -> bytes:
    buf = io.BytesIO()
    white_300(image, None).save(buf, format="PNG")
    return buf.getvalue()


def hammer(url: str, picture: bytes, stop: threading.Event, answers: list) -> None:
    """One client sending the picture back to back until `stop`; each answer's status and Retry-After."""
    with httpx.Client(timeout=NO_HANG_S) as client:
        while not stop.is_set():
            response = client.post(f"{url}/v1/predict", files={"file": ("d.png", picture, "image/png")})
            answers.append((response.status_code, response.headers.get("retry-after"), response.json()))


def poll(url: str, route: str, until: set[str], timeout: float = 60) -> list[tuple[int, str]]:
    """(status code, status) of `route`, asked every 20 ms until its status is one of `until`."""
    seen: list[tuple[int, str]] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = httpx.get(f"{url}{route}", timeout=NO_HANG_S)
        seen.append((response.status_code, response.json()["status"]))
        if seen[-1][1] in until:
            return seen
        time.sleep(0.02)
    raise AssertionError(f"{route} never said {until}: {seen[-5:]}")


def test_a_worker_killed_under_load_is_replaced_and_no_request_hangs(mnist_test):
    picture = png(mnist_test.images[0])
    stop, answers = threading.Event(), []
    # no wait bound for admission: on a busy machine it would refuse some of 8 clients (503 overloaded), and
    # the failures counted below are to be the fault's alone
    with serve_process("--workers", "2", "--max-wait-ms", "0") as server, ThreadPoolExecutor(CLIENTS) as clients:
        url = server.url
        assert httpx.get(f"{url}/healthz").json()["status"] == "ok"
        assert httpx.get(f"{url}/readyz").json()["status"] == "ready"
        load = [clients.submit(hammer, url, picture, stop, answers) for _ in range(CLIENTS)]
        while len(answers) < 20:  # the load is on
            time.sleep(0.05)
        victim = server.workers()[0]
        os.kill(victim, signal.SIGKILL)
        during = poll(url, "/readyz", {"healing"})  # the pool noticed, and is replacing it
        assert during[-1][0] == 503
        assert httpx.get(f"{url}/healthz").status_code == 200  # alive: it heals by itself
        after = poll(url, "/readyz", {"ready"})
        assert {status for _, status in during + after} <= {"ready", "healing"}
        served_after = len(answers)
        while len(answers) < served_after + 20:  # serving again, under the same load
            time.sleep(0.05)
        stop.set()
        for client in load:
            client.result()  # a request that hung would raise httpx.ReadTimeout here
        assert victim not in server.workers() and len(server.workers()) == 2
        assert metric(url, "digitrec_worker_restarts_total", reason="died") == 1
        server.proc.send_signal(signal.SIGTERM)
        log = server.proc.communicate(timeout=60)[0]
    failed = [a for a in answers if a[0] != 200]
    # the killed worker's pictures were tried again on another; any that still failed said when to retry
    assert all(status == 503 and retry == "1" for status, retry, _ in failed), failed
    assert len(failed) <= CLIENTS
    assert {body["digit"] for status, _, body in answers if status == 200} == {int(mnist_test.labels[0])}
    assert f"(pid {victim}) died" in log and "restarted" in log, log  # the log names it


def test_a_stuck_worker_costs_its_request_a_504_and_is_replaced(mnist_test):
    picture = {"file": ("d.png", png(mnist_test.images[1]), "image/png")}
    with serve_process("--workers", "1", "--request-timeout", "2") as server:
        [worker] = server.workers()
        os.kill(worker, signal.SIGSTOP)  # alive, but never answers: a decoder caught in a loop
        stuck = httpx.post(f"{server.url}/v1/predict", files=picture, timeout=NO_HANG_S)
        assert stuck.status_code == 504 and stuck.json()["error"] == "timeout"
        assert stuck.headers["retry-after"] == "1"
        poll(server.url, "/readyz", {"ready"})
        again = httpx.post(f"{server.url}/v1/predict", files=picture, timeout=NO_HANG_S)
        assert again.status_code == 200 and again.json()["digit"] == mnist_test.labels[1]
        assert worker not in server.workers()
        assert metric(server.url, "digitrec_worker_restarts_total", reason="stuck") == 1


def test_a_model_that_hangs_fails_liveness_until_it_answers(mnist_test):
    from digitrec.server.app import Settings

    gated = Gated()
    settings = Settings(model_file=shipped_model(), device="cpu", threads=1, workers=1, request_timeout_s=1)
    with live_server(settings, gated) as url, ThreadPoolExecutor(1) as pool:
        assert httpx.get(f"{url}/healthz").status_code == 200
        waiting = pool.submit(httpx.post, f"{url}/v1/predict", json={"pixels": mnist_test.images[2].tolist()},
                              timeout=NO_HANG_S)
        assert gated.entered.wait(60)
        assert waiting.result().status_code == 504  # the request's deadline, while the model still hangs
        health = poll(url, "/healthz", {"failing"})[-1]
        assert health[0] == 503
        ready = httpx.get(f"{url}/readyz")
        assert ready.status_code == 503 and "the model has not answered" in ready.json()["detail"]
        gated.gate.set()
        poll(url, "/healthz", {"ok"})
        assert httpx.get(f"{url}/readyz").json()["status"] == "ready"
