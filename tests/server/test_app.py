"""The HTTP API against a real uvicorn server on 127.0.0.1, with real MNIST test digits."""

from __future__ import annotations

import base64
import io
import struct
import zlib

import httpx
import numpy as np
import pytest
from live_server import live_server, shipped_model
from PIL import Image

from digitrec.synth.variants import jpeg, number_picture, white_300

MAX_UPLOAD = 1024 * 1024  # small caps, so the limit tests send little
MAX_BATCH = 16
MAX_PIXELS = 4_000_000


@pytest.fixture(scope="module")
def url():
    from digitrec.server.app import Settings

    settings = Settings(model_file=shipped_model(), device="cpu", threads=1, max_upload_bytes=MAX_UPLOAD,
                        max_batch=MAX_BATCH, max_pixels=MAX_PIXELS)
    with live_server(settings) as base:
        yield base


@pytest.fixture(scope="module")
def client(url):
    with httpx.Client(base_url=url, timeout=30) as c:
        yield c


def png(picture: Image.Image | np.ndarray) -> bytes:
    buf = io.BytesIO()
    (picture if isinstance(picture, Image.Image) else Image.fromarray(picture)).save(buf, format="PNG")
    return buf.getvalue()


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims width×height pixels (a decompression bomb's header)."""
    raw = bytearray(png(np.zeros((1, 1), np.uint8)))
    ihdr = bytes(raw[12:16]) + struct.pack(">II", width, height) + bytes(raw[24:29])
    raw[16:24] = struct.pack(">II", width, height)
    raw[29:33] = struct.pack(">I", zlib.crc32(ihdr))
    return bytes(raw)


def error_of(response: httpx.Response, status: int) -> str:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) >= {"error", "detail"} and body["detail"]
    return body["error"]


# --- answers ---


def test_healthz_and_model(client):
    health = client.get("/healthz").json()
    assert health["status"] == "ok" and len(health["model"]["version"]) == 12
    info = client.get("/v1/model").json()
    assert info["name"] == health["model"]["name"] == info["metadata"]["arch"]
    assert info["backend"] == "onnx" and info["threshold"] == 0.6  # the default backend
    assert info["collect"] is False  # no --collect folder
    assert 0 < info["test_accuracy"] <= 1 and info["parameters"] > 1000


def test_collecting_is_off_without_a_folder(client):
    response = client.post("/v1/collect", json={"image": b64(png(np.zeros((9, 9), np.uint8))), "label": 3})
    assert response.status_code == 404 and response.json()["error"] == "not_found"


def test_predict_upload_pixels_and_base64(client, mnist_test):
    """The same test digit sent the three ways gives its label, ten probabilities and the model's name."""
    digit, label = mnist_test.images[0], int(mnist_test.labels[0])
    answers = [
        client.post("/v1/predict", files={"file": ("seven.png", png(white_300(digit, None)), "image/png")}),
        client.post("/v1/predict", json={"pixels": digit.tolist()}),
        client.post("/v1/predict", json={"image": b64(png(white_300(digit, None)))}),
        client.post("/v1/predict", json={"image": "data:image/jpeg;base64," + b64(jpeg(digit, None))}),
    ]
    for r in answers:
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["digit"] == label and not body["blank"] and not body["unsure"]
        assert len(body["probabilities"]) == 10 and abs(sum(body["probabilities"]) - 1) < 1e-3
        assert body["probabilities"][label] == body["probability"] == body["top3"][0]["probability"]
        assert body["model"]["name"] and body["input_png"] is None
    assert answers[0].json()["source"] == "seven.png"


def test_a_picture_sent_as_the_body_is_read_as_its_upload_is(client, mnist_test):
    """`Content-Type: image/png` (or jpeg) with the picture as the whole body: the multipart upload's answer."""
    for make, kind in ((lambda d: png(white_300(d, None)), "image/png"), (lambda d: jpeg(d, None), "image/jpeg")):
        raw = make(mnist_test.images[3])
        sent = client.post("/v1/predict?include_input=true", content=raw, headers={"content-type": kind}).json()
        uploaded = client.post("/v1/predict?include_input=true", files={"file": ("d", raw)}).json()
        assert sent["source"] == "body" and sent["digit"] == int(mnist_test.labels[3])
        assert {**sent, "source": "d"} == uploaded
    raw = png(number_picture(list(mnist_test.images[:3]), [6, 6]))
    sent = client.post("/v1/number", content=raw, headers={"content-type": "image/png; charset=binary"}).json()
    assert sent["number"] == client.post("/v1/number", files={"file": ("n.png", raw)}).json()["number"]


def test_a_body_refused_as_its_upload_is(client, mnist_test):
    """The raw body gets the multipart route's 400/413/415, naming `body`; its Content-Type must say what it is."""
    raw = png(white_300(mnist_test.images[0], None))
    cases = [(b"this is text, not a picture", "image/png", 415, "not_an_image"),
             (raw[:200], "image/png", 400, "bad_image"),
             (b"", "image/png", 400, "empty_image"),
             (png_claiming(2100, 2000), "image/png", 413, "image_too_large"),
             (b"\0" * (MAX_UPLOAD + 1), "image/png", 413, "upload_too_large"),
             (raw, "image/jpeg", 415, "not_an_image"),  # a PNG said to be a JPEG: not guessed at
             (jpeg(mnist_test.images[0], None), "image/png", 415, "not_an_image")]
    for body, kind, status, code in cases:
        r = client.post("/v1/predict", content=body, headers={"content-type": kind})
        assert error_of(r, status) == code, (kind, code)
        if status != 413 or code != "upload_too_large":
            assert r.json()["field"] == "body" and r.json()["detail"].startswith("body: ")
    assert "a JPEG picture" in client.post("/v1/number", content=raw, headers={"content-type": "image/jpeg"}).text
    r = client.post("/v1/predict/batch", content=raw, headers={"content-type": "image/png"})
    assert error_of(r, 415) == "unsupported_media_type"  # a batch is multipart or JSON


def test_server_answers_as_the_recognizer_does(client, mnist_test):
    """One inference path: the server's answer and 28×28 input equal the Python API's for the same bytes."""
    from digitrec import Recognizer

    raw = png(white_300(mnist_test.images[8], None))
    body = client.post("/v1/predict?include_input=true", files={"file": ("x.png", raw)}).json()
    local = Recognizer.load(shipped_model(), device="cpu").predict(raw)
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(body["input_png"]))))
    assert seen.shape == (28, 28) and np.array_equal(seen, local.input)
    assert body["digit"] == local.digit
    assert np.allclose(body["probabilities"], local.probabilities, atol=1e-5)


def test_batch_of_real_digits_is_accurate(client, mnist_test):
    items = [{"pixels": mnist_test.images[i].tolist()} for i in range(MAX_BATCH)]
    body = client.post("/v1/predict/batch", json={"items": items}).json()
    digits = [p["digit"] for p in body["predictions"]]
    assert (np.array(digits) == mnist_test.labels[:MAX_BATCH]).mean() >= 15 / 16
    files = [("files", (f"{i}.png", png(white_300(mnist_test.images[i], None)), "image/png")) for i in range(4)]
    body = client.post("/v1/predict/batch?include_input=true", files=files).json()
    assert [p["digit"] for p in body["predictions"]] == mnist_test.labels[:4].tolist()
    assert [p["source"] for p in body["predictions"]] == [f"files[{i}] {i}.png" for i in range(4)]
    assert all(p["input_png"] for p in body["predictions"])


def test_raw_pixels_skip_preprocessing(client, mnist_test):
    """`preprocess: false` sends MNIST-style pixels (Kaggle rows) straight to the model."""
    hits = [client.post("/v1/predict", json={"pixels": mnist_test.images[i].tolist(), "preprocess": False}).json()
            ["digit"] == mnist_test.labels[i] for i in range(10)]
    assert sum(hits) >= 9
    blank = client.post("/v1/predict", json={"pixels": [[0] * 28] * 28, "preprocess": False}).json()
    assert blank["blank"] and blank["digit"] is None


def test_blank_picture_is_not_guessed(client):
    white = png(Image.new("L", (200, 200), 255))
    body = client.post("/v1/predict", files={"file": ("white.png", white)}).json()
    assert body["blank"] and body["digit"] is None and body["top3"] == [] and not any(body["probabilities"])


def test_number(client, mnist_test):
    labels = mnist_test.labels
    picks = [int(np.flatnonzero(labels == d)[k]) for k, d in enumerate([2, 0, 2, 6])]
    picture = number_picture([mnist_test.images[i] for i in picks], [6, 3, 8])
    raw = png(picture)
    for r in (client.post("/v1/number?include_input=true", files={"file": ("year.png", raw)}),
              client.post("/v1/number", json={"image": b64(raw)})):
        body = r.json()
        assert r.status_code == 200 and body["number"] == "2026" and len(body["digits"]) == 4
        assert 0 < body["probability"] <= min(d["probability"] for d in body["digits"])
        boxes = [d["box"] for d in body["digits"]]  # each digit's place in the picture, left to right
        assert all(a["x"] + a["width"] <= b["x"] + 2 for a, b in zip(boxes, boxes[1:])), boxes
        assert all(0 <= b["x"] and b["x"] + b["width"] <= picture.width and b["height"] > 10 for b in boxes)
    assert body["digits"][0]["input_png"] is None
    blank = client.post("/v1/number", files={"file": ("w.png", png(Image.new("L", (200, 60), 255)))}).json()
    assert blank["blank"] and blank["number"] == ""


# --- refusals: every one is JSON {"error", "detail"}, never a 500 ---


def test_body_over_the_cap_is_413(client):
    big = b"\0" * (MAX_UPLOAD + 1)
    assert error_of(client.post("/v1/predict", files={"file": ("big.png", big)}), 413) == "upload_too_large"

    def chunks():  # no Content-Length: the cap is enforced while reading
        for _ in range(MAX_UPLOAD // 65536 + 2):
            yield b"\0" * 65536

    r = client.post("/v1/predict", content=chunks(), headers={"content-type": "application/json"})
    assert error_of(r, 413) == "upload_too_large"


def test_decompression_bombs_are_refused_before_decoding(client):
    for width, height in ((2100, 2000), (100_000, 100_000)):  # over the cap; over Pillow's own bomb limit
        r = client.post("/v1/predict", files={"file": ("bomb.png", png_claiming(width, height))})
        assert error_of(r, 413) == "image_too_large"
    r = client.post("/v1/number", json={"image": b64(png_claiming(50_000, 50_000))})
    assert error_of(r, 413) == "image_too_large"


def test_non_images_and_broken_images(client, mnist_test):
    raw = png(white_300(mnist_test.images[0], None))
    cases = [
        (("notes.png", b"this is text, not a picture", "image/png"), 415, "not_an_image"),
        (("doc.pdf", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj", "application/pdf"), 415, "not_an_image"),
        (("cut.png", raw[:200], "image/png"), 400, "bad_image"),
        (("empty.png", b"", "image/png"), 400, "empty_image"),
    ]
    for file, status, code in cases:
        assert error_of(client.post("/v1/predict", files={"file": file}), status) == code, file[0]
    # judged by the bytes, not the MIME type sent: a real PNG labelled as text is fine
    assert client.post("/v1/predict", files={"file": ("x.txt", raw, "text/plain")}).status_code == 200
    r = client.post("/v1/predict", json={"image": b64(jpeg(mnist_test.images[0], None)[:300])})
    assert error_of(r, 400) == "bad_image" and r.json()["detail"].startswith("image: truncated")


@pytest.mark.parametrize("body", [
    {"pixels": [[0] * 28] * 27},  # 27 rows
    {"pixels": [[0] * 27] * 28},  # 27 columns
    {"pixels": [[[0, 0, 0]] * 28] * 28},  # colour
    {"pixels": [["0"] * 28] * 28},  # strings
    {"pixels": [[True] * 28] * 28},  # booleans
    {"pixels": [[300] * 28] * 28},  # out of range
    {"pixels": [[-1] * 28] * 28},
    {"pixels": "abc"},
    {"image": 42},
    {"image": "!!! not base64 !!!"},
    {"image": "aGk=", "pixels": [[0] * 28] * 28},  # both
    {},  # neither
    {"image": "aGk=", "colour": "red"},  # unknown field
    {"image": "aGk=", "preprocess": False},
    [1, 2, 3],
])
def test_wrong_json_shapes_and_types_are_422(client, body):
    r = client.post("/v1/predict", json=body)
    assert error_of(r, 422) in ("invalid_request", "invalid_base64")


def test_wrong_requests(client, mnist_test):
    raw = png(mnist_test.images[0])
    r = client.post("/v1/predict", content=b"{not json", headers={"content-type": "application/json"})
    assert error_of(r, 400) == "invalid_json"
    for kind in ("application/octet-stream", "text/plain", "image/svg+xml", ""):  # a PNG, but never guessed at
        r = client.post("/v1/predict", content=raw, headers={"content-type": kind})
        assert error_of(r, 415) == "unsupported_media_type", kind
    assert error_of(client.post("/v1/predict", files={"picture": ("a.png", raw)}), 422) == "invalid_request"
    assert error_of(client.post("/v1/predict", data={"file": "text, not a file"}, files={"x": ("a", b"")}),
                    422) == "invalid_request"
    two = [("file", ("a.png", raw)), ("file", ("b.png", raw))]
    assert error_of(client.post("/v1/predict", files=two), 422) == "invalid_request"
    assert error_of(client.post("/v1/predict?include_input=maybe", json={"image": b64(raw)}), 422) == "invalid_request"
    assert error_of(client.get("/v1/predict"), 405) == "method_not_allowed"
    assert error_of(client.get("/v1/nothing"), 404) == "not_found"


def test_batch_limits(client, mnist_test):
    item = {"pixels": mnist_test.images[0].tolist()}
    assert error_of(client.post("/v1/predict/batch", json={"items": []}), 422) == "invalid_request"
    r = client.post("/v1/predict/batch", json={"items": [item] * (MAX_BATCH + 1)})
    assert error_of(r, 413) == "too_many_pictures"
    files = [("files", (f"{i}.png", png(mnist_test.images[i]))) for i in range(MAX_BATCH + 1)]
    assert error_of(client.post("/v1/predict/batch", files=files), 413) == "too_many_pictures"
    r = client.post("/v1/predict/batch", json={"items": [item, {"image": b64(b"no picture")}]})
    assert error_of(r, 415) == "not_an_image" and "items[1]" in r.json()["detail"]


def test_a_body_that_says_multipart_but_is_not(client):
    headers = {"content-type": "multipart/form-data; boundary=xyz"}
    r = client.post("/v1/predict", content=b"this is not multipart at all", headers=headers)
    assert error_of(r, 400) == "bad_multipart"
    r = client.post("/v1/predict", content=b"--xyz\r\nContent-Disposition: form-data; name=\"file\"\r\n",
                    headers=headers)  # a part that never ends: no file arrives
    assert error_of(r, 422) == "invalid_request" and r.json()["detail"].startswith("file: missing")
    r = client.post("/v1/predict", content=b"--xyz--", headers={"content-type": "multipart/form-data"})
    assert error_of(r, 400) == "bad_multipart"  # no boundary at all


def test_errors_name_the_request_field_they_are_about(client, mnist_test):
    raw = png(white_300(mnist_test.images[0], None))
    r = client.post("/v1/predict", files={"file": ("cut.png", raw[:200])})
    assert error_of(r, 400) == "bad_image" and r.json()["field"] == "file"
    files = [("files", ("a.png", raw)), ("files", ("b.png", b"text"))]
    assert client.post("/v1/predict/batch", files=files).json()["field"] == "files[1]"
    r = client.post("/v1/predict/batch", json={"items": [{"image": b64(raw)}, {"image": b64(raw[:200])}]})
    assert error_of(r, 400) == "bad_image" and r.json()["field"] == "items[1].image"
    r = client.post("/v1/predict", json={"pixels": [[0] * 27] * 28})
    assert error_of(r, 422) == "invalid_request" and r.json()["field"].startswith("pixels")


# --- the page, the docs, the command ---


def test_page_and_offline_docs(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    for asset in ("/static/app.js", "/static/style.css"):
        assert client.get(asset).status_code == 200, asset
    assert "http" not in "".join(line for line in page.text.splitlines() if "src=" in line or "href=" in line)
    docs = client.get("/docs").text
    assert "cdn" not in docs.lower()
    for url in ("/static-offline-docs/swagger-ui-bundle.js", "/static-offline-docs/swagger-ui.css"):
        assert url in docs and client.get(url).status_code == 200
    schema = client.get("/openapi.json").json()
    assert set(schema["paths"]) >= {"/v1/predict", "/v1/predict/batch", "/v1/number", "/v1/model", "/healthz"}
    assert "PictureIn" in schema["components"]["schemas"]
