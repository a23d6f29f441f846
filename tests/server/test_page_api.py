"""POST /v1/page on a live server: every number on a page with its box, and the same refusals as the
other picture routes (413 over the pixel cap, 415 not a picture, 400 broken, 422 wrong fields)."""

from __future__ import annotations

import base64
import io
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from live_server import live_server, shipped_model
from pages import blank_page, write_pages
from PIL import Image

from digitrec.inference.recognizer import Recognizer

MAX_PIXELS = 2_000_000  # over a bench page's 1.4 million


@pytest.fixture(scope="module")
def client():
    from digitrec.server.app import Settings

    with live_server(Settings(model_file=shipped_model(), device="cpu", threads=1, max_pixels=MAX_PIXELS)) as url:
        with httpx.Client(base_url=url, timeout=120) as c:
            yield c


@pytest.fixture(scope="module")
def pages(tmp_path_factory, mnist_test):
    return write_pages(tmp_path_factory.mktemp("pages"), mnist_test, count=2, seed=7)


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "detail"} and body["detail"]
    return body["error"]


def test_upload_and_json_read_the_page_as_the_recognizer_does(client, pages):
    recognizer = Recognizer.load(shipped_model(), backend=client.get("/v1/model").json()["backend"], device="cpu")
    for path in pages:
        raw = path.read_bytes()
        uploaded = client.post("/v1/page", files={"file": (path.name, raw)})
        sent = client.post("/v1/page", json={"image": base64.b64encode(raw).decode()})
        assert uploaded.status_code == sent.status_code == 200, uploaded.text
        body = uploaded.json()
        assert body["source"] == path.name and sent.json()["source"] == "image"
        assert body["model"]["name"] and (body["width"], body["height"]) == Image.open(path).size
        expected = recognizer.read_page(raw, path.name).to_dict()
        assert body["numbers"] == expected["numbers"] == sent.json()["numbers"]
        assert body["numbers"], "a bench-like page holds numbers"


def test_a_page_without_numbers_is_an_empty_list(client, tmp_path):
    r = client.post("/v1/page", files={"file": ("blank.png", blank_page(tmp_path).read_bytes())})
    assert r.status_code == 200 and r.json()["numbers"] == []


def test_bad_pictures_are_refused_as_on_the_other_routes(client, pages):
    big = io.BytesIO()
    Image.new("L", (1500, 1400), 255).save(big, format="PNG")  # 2.1 million pixels, over this server's cap
    raw = pages[0].read_bytes()
    cases = [
        (("huge.png", big.getvalue()), 413, "image_too_large"),
        (("notes.png", b"this is text, not a picture"), 415, "not_an_image"),
        (("cut.png", raw[:300]), 400, "bad_image"),
        (("empty.png", b""), 400, "empty_image"),
    ]
    for file, status, code in cases:
        r = client.post("/v1/page", files={"file": file})
        assert error_of(r, status) == code, file[0]
        assert file[0] in r.json()["detail"] and r.json()["field"] == "file"
    assert error_of(client.post("/v1/page", json={"image": 42}), 422) == "invalid_request"
    assert error_of(client.post("/v1/page", json={"image": "aGk=", "label": 3}), 422) == "invalid_request"
    assert error_of(client.post("/v1/page", content=raw, headers={"content-type": "application/octet-stream"}),
                    415) == "unsupported_media_type"
    two = [("file", ("a.png", raw)), ("file", ("b.png", raw))]
    assert error_of(client.post("/v1/page", files=two), 422) == "invalid_request"


def test_the_route_and_its_answer_are_in_the_openapi_schema(client):
    schema = client.get("/openapi.json").json()
    operation = schema["paths"]["/v1/page"]["post"]
    body = operation["requestBody"]["content"]
    assert body["application/json"]["schema"]["$ref"] == "#/components/schemas/PageIn"
    assert "file" in body["multipart/form-data"]["schema"]["properties"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert answer == "#/components/schemas/PageOut"
    assert set(schema["components"]["schemas"]["PageNumberOut"]["properties"]) >= {"number", "box", "digits"}


class HeldRecognizer(Recognizer):
    """The shipped recogniser, whose page reads wait until the test lets them go."""

    release = threading.Event()
    started = threading.Event()

    def read_page(self, image, name=None):
        self.started.set()
        assert self.release.wait(60)
        return super().read_page(image, name)


def test_a_page_is_read_off_the_event_loop_and_holds_a_place_in_the_queue(pages):
    """While a page is being read the server still answers, and with the queue full (max_queue=1) a
    second page is refused at once with 503 and Retry-After."""
    from digitrec.server.app import Settings

    loaded = Recognizer.load(shipped_model(), backend="onnx", device="cpu")
    held = HeldRecognizer(loaded.backend, path=loaded.path)
    settings = Settings(model_file=shipped_model(), device="cpu", threads=1, max_queue=1, workers=1)
    raw = pages[0].read_bytes()
    with live_server(settings, held) as url, ThreadPoolExecutor(1) as pool:
        first = pool.submit(httpx.post, f"{url}/v1/page", files={"file": ("p.png", raw)}, timeout=60)
        assert held.started.wait(30)
        assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200  # the event loop is free
        second = httpx.post(f"{url}/v1/page", files={"file": ("p.png", raw)}, timeout=5)
        assert error_of(second, 503) == "overloaded" and second.headers["retry-after"] == "1"
        held.release.set()
        assert first.result().status_code == 200 and first.result().json()["numbers"]
