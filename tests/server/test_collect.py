"""POST /v1/collect (`digitrec serve --collect DIR`) against a real server on 127.0.0.1."""

from __future__ import annotations

import base64
import io
import resource
import signal

import httpx
import numpy as np
import pytest
from live_server import live_server, serve_process, shipped_model
from PIL import Image

from digitrec.synth.variants import jpeg, white_300

MAX_UPLOAD = 1024 * 1024
NOISE = np.random.default_rng(0).integers(0, 256, (40, 40), dtype=np.uint8)  # a PNG of ~1.7 KB


def png(picture: Image.Image | np.ndarray) -> bytes:
    buf = io.BytesIO()
    (picture if isinstance(picture, Image.Image) else Image.fromarray(picture)).save(buf, format="PNG")
    return buf.getvalue()


def data_url(raw: bytes, kind: str = "png") -> str:
    return f"data:image/{kind};base64," + base64.b64encode(raw).decode()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("taught") / "mine"  # not there yet: the first picture makes it


@pytest.fixture(scope="module")
def client(folder):
    from digitrec.server.app import Settings

    settings = Settings(model_file=shipped_model(), device="cpu", threads=1, workers=1, collect_dir=folder,
                        max_upload_bytes=MAX_UPLOAD)
    with live_server(settings) as url, httpx.Client(base_url=url, timeout=60) as c:
        yield c


def test_a_taught_picture_is_saved_under_its_digit(client, folder, mnist_test):
    assert client.get("/v1/model").json()["collect"] is True
    raw = png(white_300(mnist_test.images[0], None))
    first = client.post("/v1/collect", json={"image": data_url(raw), "label": 7})
    assert first.status_code == 200, first.text
    body = first.json()
    assert body["label"] == 7 and body["count"] == 1 and body["saved"].startswith("7/")
    assert (folder / body["saved"]).read_bytes() == raw  # a PNG is kept as it came
    second = client.post("/v1/collect", json={"image": base64.b64encode(raw).decode(), "label": 7}).json()
    assert second["count"] == 2 and second["saved"] != body["saved"]
    assert client.post("/v1/collect", json={"image": data_url(raw), "label": 0}).json()["count"] == 1
    assert sorted(p.name for p in folder.iterdir()) == ["0", "7"]
    assert not [p for p in folder.rglob("*") if p.name.startswith(".")]  # no temporary files left


def test_other_formats_are_saved_as_png(client, folder, mnist_test):
    body = client.post("/v1/collect", json={"image": data_url(jpeg(mnist_test.images[1], None), "jpeg"),
                                            "label": 2}).json()
    assert body["saved"].endswith(".png")
    with Image.open(folder / body["saved"]) as saved:
        assert saved.format == "PNG" and saved.size[0] > 28


@pytest.mark.parametrize("payload, status, error", [
    ({"image": data_url(b"hello, not a picture"), "label": 3}, 415, "not_an_image"),
    ({"image": data_url(png(NOISE)[:1000]), "label": 3}, 400, "bad_image"),  # truncated
    ({"image": "%%%", "label": 3}, 422, "invalid_base64"),
    ({"image": data_url(png(np.zeros((40, 40), np.uint8))), "label": 10}, 422, "invalid_request"),
    ({"image": data_url(png(np.zeros((40, 40), np.uint8))), "label": "3"}, 422, "invalid_request"),
    ({"image": data_url(png(np.zeros((40, 40), np.uint8)))}, 422, "invalid_request"),
])
def test_refusals_save_nothing(client, folder, payload, status, error):
    before = sorted(folder.rglob("*")) if folder.exists() else []
    response = client.post("/v1/collect", json=payload)
    assert response.status_code == status, response.text
    assert response.json()["error"] == error
    assert (sorted(folder.rglob("*")) if folder.exists() else []) == before


def test_over_the_upload_cap_is_413(client, folder):
    noise = np.random.default_rng(0).integers(0, 256, (800, 800), dtype=np.uint8)  # ~640 KB as PNG, more as base64
    response = client.post("/v1/collect", json={"image": data_url(png(noise) * 2), "label": 1})
    assert response.status_code == 413 and response.json()["error"] == "upload_too_large"
    assert not (folder / "1").exists()


def test_json_only(client):
    response = client.post("/v1/collect", files={"file": ("x.png", png(np.zeros((9, 9), np.uint8)))})
    assert response.status_code == 415


def limit_file_size() -> None:
    """In the server's process, before it starts: no file of more than 512 bytes (the picture sent is more),
    and SIGXFSZ ignored until digitrec ignores it itself (Python's start-up may write bytecode)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (512, resource.RLIM_INFINITY))


def test_a_full_disk_answers_507_and_leaves_no_file(tmp_path):
    folder = tmp_path / "mine"
    body = {"image": data_url(png(NOISE)), "label": 7}
    with serve_process("--workers", "1", "--collect", str(folder), preexec_fn=limit_file_size) as server:
        answer = httpx.post(f"{server.url}/v1/collect", json=body, timeout=60)
        assert answer.status_code == 507 and answer.json()["error"] == "insufficient_storage"
        assert "disk is full (File too large); nothing was saved" in answer.json()["detail"]
        assert httpx.get(f"{server.url}/healthz").status_code == 200  # the server itself is fine
    assert [p for p in folder.rglob("*") if p.is_file()] == []  # no picture, no temporary file
