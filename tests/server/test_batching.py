"""Micro-batching, overload and shutdown on a real uvicorn server on 127.0.0.1 (no timing assertions).

- concurrent requests read in shared model calls answer exactly as the unbatched `Recognizer` does;
- a full queue answers 503 with Retry-After, and the server recovers;
- a graceful shutdown answers the requests in flight before the server stops;
- /metrics counts requests, latency, batch sizes and the queue in Prometheus's text format.

The overload and shutdown tests hold the model with a gate (`Gated`), so that requests are surely in
flight when the test acts, whatever the machine's speed.
"""

from __future__ import annotations

import base64
import io
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest
from live_server import Gated, live_server, metric, serving, shipped_model
from PIL import Image

from digitrec.inference.recognizer import Recognizer
from digitrec.synth.variants import white_300

DIGITS = 24


def png(picture: Image.Image | np.ndarray) -> bytes:
    buf = io.BytesIO()
    (picture if isinstance(picture, Image.Image) else Image.fromarray(picture)).save(buf, format="PNG")
    return buf.getvalue()


def settings(**kw):
    from digitrec.server.app import Settings

    return Settings(model_file=shipped_model(), device="cpu", threads=1, workers=2, **kw)


@pytest.fixture(scope="module")
def url():
    # a long wait: concurrent digits surely share model calls here (the test's point), whatever the load;
    # no wait bound for admission: on a slow machine 24 clients at once would be partly refused (503)
    with live_server(settings(batch_wait_ms=50, batch_size=16, max_wait_ms=0)) as base:
        yield base


def test_batched_answers_equal_the_unbatched_recognizer(url, mnist_test):
    """Digits sent at once by many clients, read in shared model calls, answer as `Recognizer.predict` reads
    each picture alone: the same digit, flags, top three and 28×28 input; probabilities to the float rounding
    of a model called on batches of other sizes (the kernels sum in another order: ~1e-7)."""
    pictures = [png(white_300(mnist_test.images[i], None)) for i in range(DIGITS)]

    def ask(i: int) -> dict:
        files = {"file": (f"{i}.png", pictures[i], "image/png")}
        response = httpx.post(f"{url}/v1/predict?include_input=true", files=files, timeout=120)
        assert response.status_code == 200, response.text
        return response.json()

    calls_before = metric(url, "digitrec_batch_size_count")
    with ThreadPoolExecutor(DIGITS) as pool:
        answers = list(pool.map(ask, range(DIGITS)))
    batch = httpx.post(f"{url}/v1/predict/batch", files=[("files", (f"{i}.png", pictures[i])) for i in range(DIGITS)],
                       timeout=120).json()["predictions"]
    calls = metric(url, "digitrec_batch_size_count") - calls_before
    assert calls < 2 * DIGITS  # digits shared model calls (the batch request's 24 in at most two of 16)

    alone = Recognizer.load(shipped_model(), backend="onnx", device="cpu")
    for i, (single, batched) in enumerate(zip(answers, batch)):
        local = alone.predict(pictures[i], f"{i}.png").to_dict()
        seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(single["input_png"]))))
        assert np.array_equal(seen, alone.predict(pictures[i]).input)
        for served in (single, batched):
            for key in ("digit", "unsure", "blank", "not_digit"):
                assert served[key] == local[key], (i, key)
            assert [t["digit"] for t in served["top3"]] == [t["digit"] for t in local["top3"]]
            assert np.allclose(served["probabilities"], local["probabilities"], rtol=0, atol=2e-6)
    assert [a["digit"] for a in answers] == mnist_test.labels[:DIGITS].tolist()


def test_metrics_in_prometheus_text_format(url, mnist_test):
    before = metric(url, "digitrec_requests_total", route="/v1/predict", method="POST", status="200")
    for i in range(3):
        assert httpx.post(f"{url}/v1/predict", json={"pixels": mnist_test.images[i].tolist()}).status_code == 200
    too_big = httpx.post(f"{url}/v1/predict", content=b"x" * (11 * 1024 * 1024),
                         headers={"content-type": "application/json"})
    assert too_big.status_code == 413
    response = httpx.get(f"{url}/metrics")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/plain")
    assert metric(url, "digitrec_requests_total", route="/v1/predict", method="POST", status="200") == before + 3
    # refused on its Content-Length, before routing: counted, under "other"
    assert metric(url, "digitrec_requests_total", route="other", method="POST", status="413") >= 1
    assert metric(url, "digitrec_request_seconds_count", route="/v1/predict") >= before + 3
    assert metric(url, "digitrec_request_seconds_bucket", route="/v1/predict", le="+Inf") >= before + 3
    assert metric(url, "digitrec_batch_size_sum") >= metric(url, "digitrec_batch_size_count") >= 3
    assert metric(url, "digitrec_queue_depth", unit="requests") == 0  # nothing in flight now
    assert "digitrec_queue_depth" in response.text and 'unit="pictures"' in response.text
    assert httpx.get(f"{url}/nowhere/{'x' * 10}").status_code == 404
    assert metric(url, "digitrec_requests_total", route="other", method="GET", status="404") >= 1  # no new label


def test_a_full_queue_answers_503_with_retry_after(mnist_test):
    gated = Gated()
    body = {"pixels": mnist_test.images[0].tolist()}
    with live_server(settings(max_queue=1), gated) as url, ThreadPoolExecutor(1) as pool:
        first = pool.submit(httpx.post, f"{url}/v1/predict", json=body, timeout=120)
        assert gated.entered.wait(60)  # the first request holds the only place, inside the model
        refused = httpx.post(f"{url}/v1/predict", json=body, timeout=60)
        assert refused.status_code == 503 and refused.json()["error"] == "overloaded"
        assert int(refused.headers["retry-after"]) >= 1
        assert httpx.post(f"{url}/v1/predict/batch", json={"items": [body]}).status_code == 503
        gated.gate.set()
        assert first.result().status_code == 200 and first.result().json()["digit"] == mnist_test.labels[0]
        assert httpx.post(f"{url}/v1/predict", json=body, timeout=60).status_code == 200  # recovered
        assert metric(url, "digitrec_requests_total", route="/v1/predict", method="POST", status="503") == 1


def test_graceful_shutdown_answers_the_requests_in_flight(mnist_test):
    gated = Gated()
    with serving(settings(), gated) as served, ThreadPoolExecutor(3) as pool:
        url = served.url
        asks = [pool.submit(httpx.post, f"{url}/v1/predict", json={"pixels": mnist_test.images[i].tolist()},
                            timeout=120) for i in range(3)]
        assert gated.entered.wait(60)
        while metric(url, "digitrec_queue_depth", unit="requests") < 3:  # all three inside the server
            threading.Event().wait(0.05)
        served.server.should_exit = True  # what SIGTERM and Ctrl+C do
        gated.gate.set()
        answers = [a.result() for a in asks]
        served.thread.join(timeout=60)
        assert not served.thread.is_alive()  # stopped once the answers were sent
    assert [a.status_code for a in answers] == [200, 200, 200]
    assert [a.json()["digit"] for a in answers] == mnist_test.labels[:3].tolist()
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{url}/healthz", timeout=5)
