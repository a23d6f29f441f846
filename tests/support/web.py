"""Helpers for the in-browser reading tests and bench/web.py: digits as strokes, a static host, the page's hooks."""

from __future__ import annotations

import contextlib
import functools
import http.server
import math
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from browser import launched

# Strokes as points in 0..1 of the pad's side.
ONE = [[(0.5, 0.15 + 0.7 * t / 20) for t in range(21)]]
SEVEN = [[(0.25 + 0.5 * t / 10, 0.2) for t in range(11)] + [(0.75 - 0.3 * t / 14, 0.2 + 0.65 * t / 14)
                                                             for t in range(1, 15)]]
ZERO = [[(0.5 + 0.22 * math.sin(2 * math.pi * t / 40), 0.5 - 0.33 * math.cos(2 * math.pi * t / 40))
         for t in range(42)]]
BAR = [[(0.2 + 0.6 * t / 10, 0.5) for t in range(11)]]

@pytest.fixture(scope="module")
def url():
    """A live `digitrec serve` of the shipped model on 127.0.0.1, for one test module."""
    from live_server import live_server, shipped_model

    from digitrec.server.app import Settings

    with live_server(Settings(model_file=shipped_model(), device="cpu", threads=1)) as base:
        yield base


@pytest.fixture(scope="module")
def browser():
    """Debian's chromium (never `playwright install`), headless, for one test module."""
    with launched() as chromium:
        yield chromium



def ring(cx: float, cy: float, rx: float, ry: float, turn: float = 1.0) -> list[tuple[float, float]]:
    return [(cx + rx * math.sin(2 * math.pi * turn * t / 40), cy - ry * math.cos(2 * math.pi * turn * t / 40))
            for t in range(42)]


def number_strokes(gap: float) -> list[list[tuple[float, float]]]:
    """2026 on the number pad (x in 0..1 of its width, three times its height), `gap` of the width between
    digits: negative makes neighbours touch."""
    w = 0.085  # a digit's width, of the pad's width (0.26 of its height)
    x = [0.2 + i * (w + gap) for i in range(4)]
    two = [(0.0, 0.3), (0.2, 0.15), (0.6, 0.15), (0.8, 0.33), (0.05, 0.82), (0.95, 0.82)]
    six = ring(0.5, 0.64, 0.42, 0.2)
    stem = [(0.85, 0.15), (0.45, 0.3), (0.12, 0.6)]

    def at(i, points):
        return [(x[i] + w * a, b) for a, b in points]

    return [at(0, two), ring(x[1] + w / 2, 0.5, w / 2, 0.33), at(2, two), at(3, six), at(3, stem)]

LETTER_A = [[(0.25, 0.85), (0.5, 0.12), (0.75, 0.85)], [(0.35, 0.55), (0.65, 0.55)]]

CORE = 160  # MNIST pixels at least this bright are the stroke's middle, where the pen went


def digit_strokes(image: np.ndarray) -> list[list[tuple[float, float]]]:
    """A 28×28 MNIST digit as strokes for the pad: one dot of the pad's pen on every pixel of its stroke's
    middle (in 0..1 of the pad), so the page draws it with its own brush, as a hand would."""
    rows, cols = np.nonzero(np.asarray(image) >= CORE)
    return [[((c + 0.5) / 28, (r + 0.5) / 28)] for r, c in zip(rows.tolist(), cols.tolist())]


def show_strokes(page, strokes, pad: str = "digitPad") -> None:
    """Put `strokes` on the page's pad as if drawn, and let the page read them (the debounce skipped)."""
    page.evaluate("""([strokes, pad]) => { const p = window.digitrec[pad];
        p.strokes = strokes.map(s => s.map(([x, y]) => ({x, y}))); p.changed(0); }""", [strokes, pad])


def read_here(page) -> dict:
    """The page's own answer for what is on its digit pad (reading.js, wherever the switch says), and the
    PNG it would send to the server."""
    return page.evaluate("""async () => { const d = window.digitrec;
        const body = await d.reading.readDigit(d.digitPad);
        return {...body, input: body.input ? Array.from(body.input) : null,
                probabilities: Array.from(body.probabilities), png: d.digitPad.upload(), where: d.reading.where}; }""")


def wait_for_device(page, timeout_ms: int = 30_000) -> float:
    """Wait until the page's model has loaded; its load time (ms, model fetch to the first run)."""
    page.wait_for_function("window.digitrec && window.digitrec.reading.device", timeout=timeout_ms)
    return page.evaluate("window.digitrec.reading.device.then(r => r.loadMs)")


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:  # no line per request on stderr
        pass


@contextlib.contextmanager
def static_host(folder: str | Path) -> Iterator[str]:
    """`python -m http.server` on 127.0.0.1 (a free port) serving `folder`, as a static host would."""
    handler = functools.partial(_Quiet, directory=str(folder))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join()


def draw(page, strokes, pad: str = "#pad") -> None:
    box = page.locator(pad).bounding_box()
    for stroke in strokes:
        x, y = stroke[0]
        page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"])
        page.mouse.down()
        for x, y in stroke[1:]:
            page.mouse.move(box["x"] + x * box["width"], box["y"] + y * box["height"], steps=2)
        page.mouse.up()


def expect_answer(page, digit: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#digit")).to_have_text(digit, timeout=15_000)
    expect(page.locator("#result")).not_to_have_attribute("data-busy", "true")
    expect(page.locator("#bars li.top .label")).to_have_text(digit)
    assert page.locator("#seen").evaluate("img => img.complete && img.naturalWidth") == 28
