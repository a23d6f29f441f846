"""The page mode of the web page (static/page.html) in a real browser against a live server.

A picture of a page is chosen through the file input (as a phone's camera hands it over); the test checks
that every number of the /v1/page answer is shown, boxed over the picture where the answer puts it, that a
reading can be corrected by tapping it, and (with `serve --collect`) that the corrected digits are saved.
Screenshots go to test-artifacts/ (desktop and phone size).
"""

from __future__ import annotations

import re

import httpx
import numpy as np
import pytest
from browser import DESKTOP, PHONE, launched, needs_chromium, offline_page, screenshot
from live_server import live_server, shipped_model
from pages import blank_page, sideways_photo, write_pages
from PIL import Image
from playwright.sync_api import expect

pytestmark = needs_chromium


@pytest.fixture(scope="module")
def chromium():
    with launched() as browser:
        yield browser


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("collected")


@pytest.fixture(scope="module")
def url(folder):
    from digitrec.server.app import Settings

    with live_server(Settings(model_file=shipped_model(), device="cpu", threads=1, collect_dir=folder)) as base:
        yield base


@pytest.fixture(scope="module")
def pages(mnist_test, tmp_path_factory):
    return write_pages(tmp_path_factory.mktemp("pages"), mnist_test, count=2, seed=3)


def api_answer(url, path) -> dict:
    response = httpx.post(f"{url}/v1/page", files={"file": (path.name, path.read_bytes())}, timeout=120)
    assert response.status_code == 200, response.text
    return response.json()


def choose(page, path, expected: int) -> None:
    page.set_input_files("#page-file", str(path))
    expect(page.locator("#page-result")).not_to_have_attribute("data-busy", "true", timeout=60_000)
    expect(page.locator("#page-boxes .page-box")).to_have_count(expected)
    expect(page.locator("#page-numbers li")).to_have_count(expected)


def check_boxes(page, answer: dict) -> None:
    """Each box lies over the picture where the answer's box is (in the picture's displayed size)."""
    picture = page.locator("#page-picture").bounding_box()
    scale = picture["width"] / answer["width"]
    assert abs(picture["height"] - answer["height"] * scale) < 2  # shown whole, not stretched
    for i, n in enumerate(answer["numbers"]):
        shown = page.locator("#page-boxes .page-box").nth(i).bounding_box()
        for key, at in (("x", "x"), ("y", "y"), ("width", "width"), ("height", "height")):
            start = picture[at] if key in ("x", "y") else 0
            assert abs(shown[at] - (start + n["box"][key] * scale)) < 2, (key, shown, n["box"])


def test_the_page_shows_every_number_of_the_api_answer_over_the_picture(chromium, url, pages, tmp_path):
    """Bench-like pages, and a phone's photo stored sideways with its EXIF rotation (the boxes are in
    the upright picture's pixels, as the browser shows it)."""
    page = offline_page(chromium, url, **DESKTOP)
    page.goto(f"{url}/page")
    expect(page.locator("#page-status")).to_have_text("Choose a photo of a page")
    camera = page.locator("#page-camera")
    assert (camera.get_attribute("accept"), camera.get_attribute("capture")) == ("image/*", "environment")
    for path in [*pages, sideways_photo(pages[0], tmp_path)]:
        answer = api_answer(url, path)
        assert answer["numbers"], "a bench-like page holds numbers"
        choose(page, path, len(answer["numbers"]))
        readings = [n["number"] for n in answer["numbers"]]
        assert page.locator("#page-numbers .reading").all_inner_texts() == readings
        check_boxes(page, answer)
    screenshot(page, "page-mode-desktop.png")
    assert not page.errors, page.errors
    assert not page.outside, page.outside
    page.close()


def test_reached_from_the_drawing_page_a_page_without_numbers_and_a_broken_file(chromium, url, tmp_path):
    page = offline_page(chromium, url, **DESKTOP)
    page.goto(url)
    page.click("#mode-page")  # the drawing page links to the page mode
    expect(page).to_have_url(f"{url}/page")
    page.wait_for_load_state("load")  # page.js listens for the file from then on (a loaded CI machine took >5 s)
    choose(page, blank_page(tmp_path), 0)
    expect(page.locator("#page-status")).to_have_text("No numbers found")
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 40)
    page.set_input_files("#page-file", str(broken))
    expect(page.locator("#page-result")).to_have_attribute("data-state", "error", timeout=30_000)
    expect(page.locator("#page-detail")).to_contain_text("broken.png")
    assert page.locator("#page-boxes .page-box").count() == 0
    assert not page.errors, page.errors
    page.close()


def test_on_a_phone_a_tapped_reading_is_corrected_and_its_digits_collected(chromium, url, pages,
                                                                           folder):
    """390×844 with touch: the picture fits the width, a tap on a box opens the correction, and the
    corrected number's digits land in the collecting folder, each under its corrected digit."""
    page = offline_page(chromium, url, **PHONE)
    page.goto(f"{url}/page")
    answer = api_answer(url, pages[0])
    choose(page, pages[0], len(answer["numbers"]))
    picture = page.locator("#page-picture").bounding_box()
    assert picture["x"] >= 0 and picture["x"] + picture["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sticks out sideways
    first = answer["numbers"][0]
    fixed = "".join(str((int(c) + 1) % 10) if c.isdigit() else "1" for c in first["number"])
    page.locator("#page-boxes .page-box").first.tap()
    expect(page.locator("#page-fix")).to_be_visible()
    page.fill("#page-fix-input", fixed)
    page.tap("#page-fix-save")
    expect(page.locator("#page-fix-status")).to_contain_text(f"Corrected to {fixed}; its {len(fixed)} digit",
                                                             timeout=15_000)
    expect(page.locator("#page-numbers li").first.locator(".reading")).to_have_text(fixed)
    expect(page.locator("#page-boxes .page-box").first).to_have_class(re.compile(r"\bcorrected\b"))
    screenshot(page, "page-mode-phone.png")
    assert not page.errors, page.errors
    page.close()
    saved = sorted(folder.glob("*/*.png"))
    assert sorted(p.parent.name for p in saved) == sorted(fixed)
    for path in saved:  # crops of the picture: paper around ink
        ink = np.asarray(Image.open(path).convert("L"))
        assert ink.min() < 128 < ink.max()
