"""Reading in the browser (static/device.js, preprocess.js): the page's own answers against the server's,
the static site `digitrec export --format web` writes with no digitrec server, and the fallbacks.

Real Chromium (Debian's, as test_static_page), a real server on 127.0.0.1, a real static host
(http.server). Needs onnxruntime-web in static/vendor/ (`make web-vendor`, which `make test` runs).
"""

from __future__ import annotations

import io
import subprocess
import sys

import httpx
import numpy as np
import pytest
from browser import needs_chromium
from live_server import live_server, shipped_model
from PIL import Image
from playwright.sync_api import expect
from web import (
    LETTER_A,
    ONE,
    SEVEN,
    ZERO,
    digit_strokes,
    draw,
    expect_answer,
    number_strokes,
    read_here,
    show_strokes,
    static_host,
    wait_for_device,
)

from digitrec.server.site import vendor_files

pytestmark = [
    needs_chromium,
    pytest.mark.skipif(not vendor_files(), reason="onnxruntime-web is not in static/vendor (run make web-vendor)"),
]
PARITY_DIGITS = 100
NO_WASM = "delete window.WebAssembly;"  # a browser without WebAssembly


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """`digitrec export default --format web --out DIR`, as a user runs it."""
    out = tmp_path_factory.mktemp("site") / "web"
    done = subprocess.run([sys.executable, "-m", "digitrec", "export", str(shipped_model()), "--format", "web",
                           "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "static/vendor/ort-wasm-simd-threaded.wasm" in done.stdout and "in all" in done.stdout
    return out


def page_on(browser, url: str, init_script: str | None = None):
    """A page on which every request outside `url` is refused and recorded in `page.outside`, and whose
    requests to the server's API are recorded in `page.asked`."""
    page = browser.new_page(viewport={"width": 1100, "height": 760})
    page.outside, page.asked, page.errors = [], [], []
    if init_script:
        page.add_init_script(init_script)
    page.on("pageerror", lambda exc: page.errors.append(str(exc)))

    def route(r):
        if not r.request.url.startswith(url):
            page.outside.append(r.request.url)
            return r.abort()
        if "/v1/predict" in r.request.url or "/v1/number" in r.request.url:
            page.asked.append(r.request.url)
        r.continue_()

    page.route("**/*", route)
    page.goto(url + "/")
    return page


def validation_digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `n` validation digits of the usual split (never the test set)."""
    from digitrec.data.dataset import train_val_split
    from digitrec.pictures.folders import load_data

    val = train_val_split(load_data(None, "train", None))[1]
    return val.images[:n], val.labels[:n]


def scribbles(n: int) -> list[list[list[tuple[float, float]]]]:
    """Zig-zags and loops no digit looks like, for the not-a-digit decisions."""
    rng = np.random.default_rng(7)
    return [[[tuple(p) for p in rng.uniform(0.15, 0.85, (int(rng.integers(5, 9)), 2)).tolist()]] for _ in range(n)]


def server_answer(url: str, png: str) -> dict:
    response = httpx.post(f"{url}/v1/predict?include_input=true", json={"image": png}, timeout=30)
    assert response.status_code == 200, response.text
    return response.json()


def seen(body: dict) -> np.ndarray:
    import base64

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(body["input_png"]))).convert("L"))


@pytest.mark.slow  # over 20 s: 113 drawings read both ways
def test_the_page_reads_on_the_device_as_the_server_does(browser, url):
    """MNIST validation digits drawn on the pad with its own pen, and scribbles: on every one the page's
    in-browser answer is the server's for the same PNG (the same 28×28 input, digit, not-a-digit decision,
    unsure flag; probabilities within 0.01), and the page asks the server nothing."""
    page = page_on(browser, url)
    wait_for_device(page)
    images, labels = validation_digits(PARITY_DIGITS)
    drawings = [digit_strokes(image) for image in images] + scribbles(12) + [LETTER_A]
    same, not_digit, right, worst = 0, 0, 0, 0.0
    for i, strokes in enumerate(drawings):
        show_strokes(page, strokes)
        here = read_here(page)
        there = server_answer(url, here["png"])
        assert here["where"] == "device" and not here["blank"]
        gap = float(np.abs(np.subtract(here["probabilities"], there["probabilities"])).max())
        worst = max(worst, gap, abs(here["not_digit_probability"] - there["not_digit_probability"]))
        assert np.array_equal(np.reshape(here["input"], (28, 28)), seen(there)), f"drawing {i}: another 28x28 input"
        same += (here["digit"], here["not_digit"], here["unsure"]) == (there["digit"], there["not_digit"],
                                                                       there["unsure"]) and gap <= 0.01
        not_digit += there["not_digit"]
        right += i < PARITY_DIGITS and there["digit"] == labels[i]
    assert same == len(drawings), f"{same}/{len(drawings)} the same; worst probability gap {worst:.4f}"
    assert worst <= 0.01
    assert right >= 0.9 * PARITY_DIGITS, f"{right}/{PARITY_DIGITS}: the strokes do not look like the digits"
    assert not_digit >= 2, "no drawing was called not a digit: the not-a-digit comparison compared nothing"
    expect(page.locator("#result")).to_have_attribute("data-state", "notdigit")  # the UI showed the last one
    assert not page.asked and not page.outside and not page.errors, (page.asked, page.outside, page.errors)
    page.close()


def number_drawings() -> list[list[list[tuple[float, float]]]]:
    """Numbers on the number pad (x in 0..3 of its height): 2026 with digits apart, close and touching, and
    validation digits side by side, some overlapping."""
    images, _ = validation_digits(PARITY_DIGITS + 40)
    out = [[[(3 * x, y) for x, y in s] for s in number_strokes(gap)] for gap in (0.04, 0.01, -0.004)]
    for n in range(10):
        count, step = 2 + n % 5, 0.62 - 0.05 * (n % 4)  # digits' distance, of the pad's height
        digits = images[PARITY_DIGITS + 4 * n:PARITY_DIGITS + 4 * n + count]
        out.append([[(0.2 + i * step + x, y) for x, y in stroke] for i, d in enumerate(digits)
                    for stroke in digit_strokes(d)])
    return out


@pytest.mark.slow  # over 20 s: 13 numbers read both ways
def test_the_page_reads_numbers_on_the_device_as_the_server_does(browser, url):
    """Number mode: the line reader and the digit model in the page against POST /v1/number on the same PNG:
    the same number, each digit's box, and probabilities within 0.01."""
    page = page_on(browser, url)
    wait_for_device(page)
    read = """async () => { const d = window.digitrec; const r = await d.reading.readNumber(d.numberPad);
        return {...r, digits: r.digits.map(x => ({digit: x.digit, probability: x.probability, box: x.box})),
                png: d.numberPad.upload()}; }"""
    lengths = set()
    for i, strokes in enumerate(number_drawings()):
        show_strokes(page, strokes, "numberPad")
        here = page.evaluate(read)
        there = httpx.post(f"{url}/v1/number", json={"image": here["png"]}, timeout=30).json()
        assert here["number"] == there["number"] and len(here["number"]) >= 2, (i, here["number"], there["number"])
        assert [d["box"] for d in here["digits"]] == [d["box"] for d in there["digits"]], i
        assert np.allclose([d["probability"] for d in here["digits"]], [d["probability"] for d in there["digits"]],
                           atol=0.01), i
        lengths.add(len(here["number"]))
    assert len(lengths) >= 3  # numbers of several lengths were compared
    assert not page.asked and not page.outside and not page.errors, (page.asked, page.outside, page.errors)
    page.close()


def test_the_switch_reads_on_the_server_and_back(browser, url):
    page = page_on(browser, url)
    wait_for_device(page)
    expect(page.locator("#read-device")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#read-status")).to_have_text("Reading on this device: nothing leaves it.")
    draw(page, SEVEN)
    expect_answer(page, "7")
    assert not page.asked
    page.click("#read-server")  # the drawing is read again, on the server
    expect(page.locator("#read-server")).to_have_attribute("aria-pressed", "true")
    expect(page.locator("#read-status")).to_have_text("Reading on the server.")
    expect_answer(page, "7")
    page.click("#clear")
    draw(page, ONE)
    expect_answer(page, "1")
    assert page.asked and all("/v1/predict" in a for a in page.asked)
    page.click("#read-device")
    page.click("#clear")
    asked = len(page.asked)
    draw(page, ZERO)
    expect_answer(page, "0")
    assert len(page.asked) == asked and not page.outside and not page.errors
    page.close()


def test_the_static_site_reads_with_no_server(browser, site):
    """The exported folder on a plain static host, no digitrec server anywhere: digits are read, blank
    is blank, a letter is no digit, a number is read, nothing is fetched from outside the site."""
    with static_host(site) as base:
        page = page_on(browser, base)
        wait_for_device(page)
        expect(page.locator("#read-status")).to_have_text("Reading on this device: nothing leaves it.")
        assert page.locator("#read-server").is_disabled() and not page.locator("footer a").first.is_visible()
        draw(page, SEVEN)
        expect_answer(page, "7")
        page.click("#clear")
        expect(page.locator("#result")).to_have_attribute("data-state", "blank")
        draw(page, LETTER_A)
        expect(page.locator("#result")).to_have_attribute("data-state", "notdigit", timeout=15_000)
        page.click("#mode-number")
        draw(page, number_strokes(0.04), "#number-pad")
        expect(page.locator("#number-text")).to_have_text("2026", timeout=15_000)  # the line reader, in the page
        assert not page.outside and not page.errors, (page.outside, page.errors)
        page.close()


def test_without_webassembly_the_server_reads_and_a_static_site_says_it_cannot(browser, url, site):
    page = page_on(browser, url, NO_WASM)
    expect(page.locator("#read-status")).to_have_text("Reading on the server: this browser has no WebAssembly.")
    assert page.locator("#read-device").is_disabled()
    draw(page, SEVEN)
    expect_answer(page, "7")
    assert page.asked
    page.close()
    with static_host(site) as base:
        page = page_on(browser, base, NO_WASM)
        line = "Cannot read here: this browser has no WebAssembly, and there is no server."
        expect(page.locator("#read-status")).to_have_text(line)
        draw(page, SEVEN)
        expect(page.locator("#detail")).to_have_text(line)
        assert not page.outside
        page.close()


def varied_pictures(n: int) -> list[Image.Image]:
    """Opaque RGB pictures unlike a pad's: 1-25 px pens, grey anti-aliasing, specks, small and large ink,
    blobs wide enough to make the paper look unevenly lit."""
    from PIL import ImageDraw

    rng = np.random.default_rng(3)
    out = []
    for i in range(n):
        picture = Image.new("RGB", (280, 280), "white")
        pen = ImageDraw.Draw(picture)
        for _ in range(int(rng.integers(1, 4))):
            corners = int(rng.integers(2, 6))
            points = [tuple(rng.uniform(20 + 60 * (i % 3), 260 - 60 * (i % 2), 2)) for _ in range(corners)]
            pen.line(points, fill=(17, 17, 17), width=int(rng.integers(1, 25)) + 60 * (i % 7 == 0), joint="curve")
        if i % 5 == 0:
            pen.ellipse([5, 5, 8, 8], fill=(17, 17, 17))
        out.append(picture.resize((560, 560)).resize((280, 280), Image.Resampling.LANCZOS))
    return out


def test_preprocess_js_makes_the_servers_28x28_from_any_opaque_picture(browser, url):
    """preprocess.js against pictures.preprocess beyond what a pad draws: the same 28×28 bytes on every one."""
    import base64

    from digitrec.pictures.preprocess import preprocess

    page = page_on(browser, url)
    pictures = varied_pictures(40)
    rgba = [base64.b64encode(np.asarray(p.convert("RGBA")).tobytes()).decode() for p in pictures]
    mine = page.evaluate("""async (pictures) => { const { preprocess } = await import("./static/preprocess.js");
        return pictures.map(b64 => { const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));
            const r = preprocess(bytes, 280, 280); return [Array.from(r.image), r.blank, r.thickened]; }); }""", rgba)
    thickened = 0
    for i, (picture, (image, blank, thick)) in enumerate(zip(pictures, mine)):
        png = io.BytesIO()
        picture.save(png, "PNG")
        want = preprocess(png.getvalue())
        assert (blank, thick) == (want.blank, want.thickened), f"picture {i}"
        assert np.array_equal(np.reshape(image, (28, 28)), want.image), f"picture {i}: another 28x28"
        thickened += thick
    assert 0 < thickened < len(pictures)  # both ways through the stroke widening were compared
    page.close()


def test_the_served_page_reads_on_after_the_server_stops(browser):
    """Loaded from `digitrec serve`, the page goes on reading digits once the server is gone."""
    from digitrec.server.app import Settings

    with live_server(Settings(model_file=shipped_model(), device="cpu", threads=1)) as base:
        page = page_on(browser, base)
        wait_for_device(page)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"{base}/healthz", timeout=2)  # stopped
    draw(page, SEVEN)
    expect_answer(page, "7")
    page.click("#clear")
    draw(page, ZERO)
    expect_answer(page, "0")
    assert not page.asked and not page.errors, (page.asked, page.errors)
    page.close()
