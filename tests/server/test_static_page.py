"""The drawing page in a real browser (Debian's chromium driven by Playwright) against a live server.

Strokes are drawn with the mouse; the test checks the answer shown, the blank state,
Undo and Clear, and saves screenshots under test-artifacts/ (desktop and phone size).
Needs /usr/bin/chromium (`.ci/install-browser` installs it); never `playwright install`.
"""

from __future__ import annotations

import numpy as np
from browser import needs_chromium, offline_page, screenshot
from live_server import live_server, shipped_model
from PIL import Image
from playwright.sync_api import expect
from web import BAR, LETTER_A, ONE, SEVEN, ZERO, draw, expect_answer, number_strokes

from digitrec.inference.recognizer import Recognizer

pytestmark = needs_chromium

def draw_with_finger(page, strokes, pad: str = "#pad") -> None:
    """Touch strokes through the DevTools protocol (Playwright's Python API only taps): the page
    sees pointer events with pointerType "touch", as from a finger on a phone."""
    cdp = page.context.new_cdp_session(page)
    box = page.locator(pad).bounding_box()
    for stroke in strokes:
        points = [{"x": box["x"] + x * box["width"], "y": box["y"] + y * box["height"]} for x, y in stroke]
        cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [points[0]]})
        for p in points[1:]:
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [p]})
        cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


def expect_blank(page) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#result")).to_have_attribute("data-state", "blank")
    expect(page.locator("#verdict")).to_have_text("Draw a digit")
    expect(page.locator("#digit")).to_have_text("")
    assert page.locator("#bars li.top").count() == 0


def ink_pixels(page) -> int:
    """Dark pixels on the pad's canvas."""
    return page.locator("#pad").evaluate("""c => {
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] < 128) n++; return n; }""")


def test_draw_digits_clear_and_undo(browser, url):
    page = offline_page(browser, url, viewport={"width": 1100, "height": 760})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    expect_blank(page)
    assert page.locator("#clear").is_disabled() and page.locator("#undo").is_disabled()
    screenshot(page, "page-blank.png")

    draw(page, ONE)
    expect_answer(page, "1")
    assert ink_pixels(page) > 0 and not page.locator("#hint").is_visible()
    draw(page, BAR)  # a cross is no longer a 1 ...
    page.locator("#digit").filter(has_not_text="1").wait_for(timeout=15_000)
    page.click("#undo")  # ... and Undo takes the bar away again
    expect_answer(page, "1")

    page.click("#clear")
    expect_blank(page)
    assert ink_pixels(page) == 0 and page.locator("#clear").is_disabled()

    draw(page, SEVEN)
    expect_answer(page, "7")
    page.keyboard.press("Escape")
    expect_blank(page)

    draw(page, ZERO)
    expect_answer(page, "0")
    screenshot(page, "page-desktop.png")
    assert not errors, errors
    assert not page.outside, page.outside  # no CDN, no fonts, nothing outside the server
    page.close()


def test_phone_sized_screen(browser, url):
    """390×844 (a phone): one column, the pad fits the width, and a finger draws (without scrolling)."""
    page = offline_page(browser, url, viewport={"width": 390, "height": 844}, device_scale_factor=2,
                        is_mobile=True, has_touch=True)
    page.goto(url)
    expect_blank(page)
    pad = page.locator("#pad").bounding_box()
    assert pad["width"] <= 390 and pad["x"] >= 0 and pad["x"] + pad["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # nothing sticks out sideways
    assert page.locator("#pad").evaluate("c => getComputedStyle(c).touchAction") == "none"
    page.evaluate("window.kinds = []; document.getElementById('pad').addEventListener('pointerdown',"
                  " e => window.kinds.push(e.pointerType))")
    draw_with_finger(page, SEVEN)
    expect_answer(page, "7")
    assert page.evaluate("window.kinds") == ["touch"] and page.evaluate("window.scrollY") == 0
    page.click("#clear")
    draw_with_finger(page, ONE)
    expect_answer(page, "1")
    assert not page.locator("#hint").is_visible()
    screenshot(page, "page-phone.png")
    page.close()


def test_api_docs_work_offline(browser, url):
    """/docs renders Swagger UI from files the server itself serves (fastapi-offline), no CDN."""
    page = offline_page(browser, url, viewport={"width": 1100, "height": 900})
    page.goto(f"{url}/docs")
    page.locator(".swagger-ui .opblock-summary-path", has_text="/v1/predict/batch").wait_for(timeout=15_000)
    assert page.locator(".swagger-ui .opblock").count() >= 5
    assert not page.outside, page.outside
    screenshot(page, "docs.png")
    page.close()


def expect_number(page, number: str) -> None:
    from playwright.sync_api import expect

    expect(page.locator("#number-text")).to_have_text(number, timeout=15_000)
    expect(page.locator("#number-result")).not_to_have_attribute("data-busy", "true")
    expect(page.locator("#number-boxes .box")).to_have_count(len(number))
    expect(page.locator("#number-digits li")).to_have_count(len(number))


def test_number_mode_reads_digits_that_stand_apart_and_that_touch(browser, url):
    page = offline_page(browser, url, viewport={"width": 1100, "height": 760})
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto(url)
    page.click("#mode-number")
    assert page.locator("#number-pad").is_visible() and not page.locator("#pad").is_visible()
    box = page.locator("#number-pad").bounding_box()
    assert abs(box["width"] / box["height"] - 3) < 0.1  # a wide pad, three times as wide as tall
    draw(page, number_strokes(0.04), "#number-pad")
    expect_number(page, "2026")
    boxes = [page.locator("#number-boxes .box").nth(i).bounding_box() for i in range(4)]
    assert all(a["x"] < b["x"] for a, b in zip(boxes, boxes[1:]))  # left to right, over the pad
    assert all(box["x"] <= b["x"] and b["x"] + b["width"] <= box["x"] + box["width"] + 4 for b in boxes)
    screenshot(page, "page-number.png")
    page.click("#number-clear")
    expect(page.locator("#number-result")).to_have_attribute("data-state", "blank")
    draw(page, number_strokes(-0.004), "#number-pad")  # neighbours touch
    screenshot(page, "page-number-touching.png")
    expect_number(page, "2026")
    page.click("#mode-digit")  # the digit mode is still there, and its pad untouched
    assert page.locator("#pad").is_visible() and page.locator("#result").get_attribute("data-state") == "blank"
    assert not errors, errors
    assert not page.outside, page.outside
    page.close()


def test_number_mode_with_a_finger_on_a_phone(browser, url):
    page = offline_page(browser, url, viewport={"width": 390, "height": 844}, device_scale_factor=2,
                        is_mobile=True, has_touch=True)
    page.goto(f"{url}/#number")  # the mode can be linked to
    pad = page.locator("#number-pad").bounding_box()
    assert pad["x"] >= 0 and pad["x"] + pad["width"] <= 390
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    draw_with_finger(page, number_strokes(0.04), "#number-pad")
    expect_number(page, "2026")
    assert page.evaluate("window.scrollY") == 0
    screenshot(page, "page-number-phone.png")
    page.close()


def test_a_drawn_letter_is_not_a_digit_and_a_clear_digit_is_sure(browser, url):
    page = offline_page(browser, url, viewport={"width": 1100, "height": 760})
    page.goto(url)
    draw(page, LETTER_A)
    expect(page.locator("#result")).to_have_attribute("data-state", "notdigit", timeout=15_000)
    expect(page.locator("#verdict")).to_have_text("Not a digit")
    screenshot(page, "page-not-a-digit.png")
    page.click("#clear")
    draw(page, SEVEN)
    expect_answer(page, "7")
    sure = page.locator("#detail").inner_text().split("%")[0]
    assert int(sure) >= 99, page.locator("#detail").inner_text()  # calibrated: a clear digit is sure
    page.close()

def test_teach_saves_the_drawn_digit_in_the_folder(browser, tmp_path):
    """`serve --collect DIR`: the teach panel appears; a drawn 7 taught as a 7 lands in DIR/7/ as a PNG."""
    from playwright.sync_api import expect

    from digitrec.server.app import Settings

    folder = tmp_path / "taught"
    with live_server(Settings(model_file=shipped_model(), device="cpu", threads=1, collect_dir=folder)) as base:
        page = offline_page(browser, base, viewport={"width": 1100, "height": 760})
        page.goto(base)
        expect(page.locator("#teach")).to_be_visible(timeout=15_000)
        page.locator("#teach-digits button", has_text="7").click()
        expect(page.locator("#teach-status")).to_have_text("Draw the digit first.")
        draw(page, SEVEN)
        expect_answer(page, "7")
        page.locator("#teach-digits button", has_text="7").click()
        expect(page.locator("#teach-status")).to_contain_text("Saved as a 7 (1 7s so far)", timeout=15_000)
        expect_blank(page)  # the pad is cleared for the next one
        screenshot(page, "page-teach.png")
        assert not page.outside, page.outside
        page.close()
    [saved] = (folder / "7").iterdir()
    with Image.open(saved) as picture:
        assert saved.suffix == ".png" and picture.format == "PNG"
        ink = np.asarray(picture.convert("L"))
    assert ink.min() < 128 < ink.max()  # the drawn strokes on the pad's paper
    assert Recognizer.load(shipped_model(), device="cpu").predict(saved).digit == 7
