"""`digitrec export MODEL --format web` and the model files `digitrec serve` gives the page (server/site.py):
what lands in the folder, that the model in it answers as `digitrec predict`, and the one-line errors."""

from __future__ import annotations

import json

import httpx
import numpy as np
import onnxruntime as ort
import pytest
from helpers import run_cli
from live_server import live_server, shipped_model

from digitrec.inference.recognizer import DEFAULT_THRESHOLD, Recognizer
from digitrec.models.calibration import with_temperature
from digitrec.server import site

needs_vendor = pytest.mark.skipif(not site.vendor_files(), reason="run make web-vendor")


def one_line_error(code: int, err: str, *fragments: str) -> None:
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("digitrec: error:"), err
    assert all(f in lines[0] for f in fragments), (fragments, lines[0])


def calibrated_answers(onnx_bytes: bytes, manifest: dict, images: np.ndarray) -> np.ndarray:
    """What the page computes: the graph's probabilities, then the manifest's temperature."""
    session = ort.InferenceSession(onnx_bytes, providers=["CPUExecutionProvider"])
    raw = session.run(None, {session.get_inputs()[0].name: images})[0]
    return with_temperature(raw, manifest["digit"]["temperature"])


@needs_vendor
def test_export_web_writes_a_site_whose_model_answers_as_predict(tmp_path, mnist_test):
    out = tmp_path / "site"
    code, stdout, err = run_cli("export", shipped_model(), "--format", "web", "--out", out, in_process=True)
    assert code == 0, err
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert {"index.html", "static/app.js", "static/device.js", "static/preprocess.js", "static/style.css",
            "model/web.json", "model/digit.onnx", "model/number.onnx", "static/numbers.js",
            "static/vendor/ort-wasm-simd-threaded.wasm"} <= files
    assert f"{sum((out / f).stat().st_size for f in files):,}" in stdout  # the total, beside each part
    manifest = json.loads((out / "model/web.json").read_text())
    meta = Recognizer.load(shipped_model(), device="cpu").metadata
    assert manifest["server"] is False and manifest["unsure_below"] == DEFAULT_THRESHOLD
    assert manifest["digit"]["temperature"] == meta["calibration"]["temperature"]
    assert manifest["digit"]["not_digit_threshold"] == meta["rejection"]["not_digit_threshold"]
    images = mnist_test.images[:64]
    want = Recognizer.load(shipped_model(), backend="onnx", device="cpu").probabilities(images)
    got = calibrated_answers((out / "model/digit.onnx").read_bytes(), manifest, images)
    np.testing.assert_allclose(got, want, atol=1e-5)


def test_export_web_mistakes_are_one_line_errors(tmp_path, monkeypatch):
    torchscript = tmp_path / "model.pt"
    code, _, err = run_cli("export", shipped_model(), "--format", "torchscript", "--out", torchscript,
                           in_process=True)
    assert code == 0, err
    code, _, err = run_cli("export", torchscript, "--format", "web", "--out", tmp_path / "a", in_process=True)
    one_line_error(code, err, "model.pt", "runs only in torch")
    code, _, err = run_cli("export", shipped_model(), "--format", "web", "--quantize", "int8", "--out",
                           tmp_path / "b", in_process=True)
    one_line_error(code, err, "--quantize")
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    code, _, err = run_cli("export", shipped_model(), "--format", "web", "--out", tmp_path / "full", in_process=True)
    one_line_error(code, err, "--out", "not an empty folder")
    assert [p.name for p in (tmp_path / "full").iterdir()] == ["keep.txt"]
    monkeypatch.setattr(site, "VENDOR", tmp_path / "no-vendor")
    code, _, err = run_cli("export", shipped_model(), "--format", "web", "--out", tmp_path / "c", in_process=True)
    one_line_error(code, err, "onnxruntime-web", "make web-vendor")
    assert not (tmp_path / "a").exists() and not (tmp_path / "c").exists() and not list(tmp_path.glob(".*.tmp"))


def test_the_server_gives_the_page_its_model(mnist_test):
    from digitrec.server.app import Settings

    with live_server(Settings(model_file=shipped_model(), device="cpu", threads=1, threshold=0.8)) as url:
        manifest = httpx.get(f"{url}/model/web.json").json()
        model = httpx.get(f"{url}/model/digit.onnx", timeout=60)
    assert manifest["server"] is True and manifest["unsure_below"] == 0.8 and manifest["collect"] is False
    assert model.status_code == 200
    images = mnist_test.images[:64]
    want = Recognizer.load(shipped_model(), backend="onnx", device="cpu").probabilities(images)
    np.testing.assert_allclose(calibrated_answers(model.content, manifest, images), want, atol=1e-5)
