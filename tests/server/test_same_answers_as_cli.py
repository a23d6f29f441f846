"""One reading path: `digitrec predict` and the HTTP API answer the same pictures the same way.

The pictures are real MNIST test digits made the ways people make them, numbers whose
digits stand apart, touch and overlap, and pages holding several numbers. The CLI runs as a
user runs it (a subprocess, JSON lines); the server is a real uvicorn on 127.0.0.1.
"""

from __future__ import annotations

import json

import httpx
import numpy as np
import pytest
from helpers import run_cli
from live_server import live_server, shipped_model
from pages import write_pages

from digitrec.synth.numbers import KINDS, number_set
from digitrec.synth.variants import VARIANTS


@pytest.fixture(scope="module")
def url():
    from digitrec.server.app import Settings

    with live_server(Settings(model_file=shipped_model(), device="cpu", threads=1)) as base:
        yield base


def save(picture, path):
    if isinstance(picture, bytes):
        path.write_bytes(picture)
    elif isinstance(picture, np.ndarray):
        from PIL import Image

        Image.fromarray(picture).save(path)
    else:
        picture.save(path)
    return path


def cli_answers(*args) -> dict[str, dict]:
    result = run_cli("predict", "--json", "--quiet", "--device", "cpu", *args)
    assert result.returncode == 0, result.stderr
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    return {row["source"].rsplit("/", 1)[-1]: row for row in rows}


def same_digit(cli: dict, http: dict) -> None:
    assert (cli["digit"], cli["unsure"], cli["blank"]) == (http["digit"], http["unsure"], http["blank"])
    # the CLI batches files into one model call, the server reads one: float rounding only
    assert np.allclose(cli["probabilities"], http["probabilities"], atol=1e-5)


def test_digits_read_the_same_by_the_cli_and_the_http_api(url, mnist_test, tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for k, (name, make) in enumerate(VARIANTS.items()):
        ext = "jpg" if name.startswith("jpeg") else "png"
        paths.append(save(make(mnist_test.images[k * 7], rng), tmp_path / f"{k}-{name}.{ext}"))
    cli = cli_answers(*paths)
    with httpx.Client(base_url=url, timeout=60) as client:
        for path in paths:
            http = client.post("/v1/predict", files={"file": (path.name, path.read_bytes())}).json()
            same_digit(cli[path.name], http)


def numbers(mnist_test, rng):
    """(name, picture) from the number benchmark's four sets (bench/number_reading.py): 2-6 digits that
    stand apart, touch, overlap, or are photographed (a JPEG)."""
    for kind in KINDS:
        for k, (picture, _) in enumerate(number_set(kind, 3, mnist_test.images, mnist_test.labels, rng)):
            yield f"{kind}-{k}.{'jpg' if isinstance(picture, bytes) else 'png'}", picture


def test_numbers_read_the_same_by_the_cli_and_the_http_api(url, mnist_test, tmp_path):
    rng = np.random.default_rng(1)
    paths = [save(picture, tmp_path / name) for name, picture in numbers(mnist_test, rng)]
    cli = cli_answers("--number", *paths)
    with httpx.Client(base_url=url, timeout=60) as client:
        for path in paths:
            http = client.post("/v1/number", files={"file": (path.name, path.read_bytes())}).json()
            mine = cli[path.name]
            assert (mine["number"], mine["unsure"], mine["blank"]) == (http["number"], http["unsure"], http["blank"])
            assert len(mine["digits"]) == len(http["digits"])
            for a, b in zip(mine["digits"], http["digits"]):
                same_digit(a, b)
                assert a["box"] == b["box"]


@pytest.mark.slow  # five pages, each read twice: about 30 s alone, 90 s on a busy 2-core machine
def test_pages_read_the_same_by_the_cli_and_the_http_api(url, mnist_test, tmp_path):
    """Every number of a bench-like page, its box and its digits' boxes: the same from `predict --page`
    and POST /v1/page (the web page draws the API's answer: test_page_mode.py)."""
    paths = write_pages(tmp_path, mnist_test, count=5, seed=2)  # one of each kind
    cli = cli_answers("--page", *paths)
    with httpx.Client(base_url=url, timeout=120) as client:
        for path in paths:
            http = client.post("/v1/page", files={"file": (path.name, path.read_bytes())}).json()
            mine = cli[path.name]
            assert (mine["width"], mine["height"]) == (http["width"], http["height"])
            assert [(n["number"], n["box"], n["unsure"]) for n in mine["numbers"]] == \
                [(n["number"], n["box"], n["unsure"]) for n in http["numbers"]]
            assert mine["numbers"], "a bench-like page holds numbers"
            for a, b in zip(mine["numbers"], http["numbers"]):
                assert abs(a["probability"] - b["probability"]) < 1e-4
                for x, y in zip(a["digits"], b["digits"]):
                    same_digit(x, y)
                    assert x["box"] == y["box"]
