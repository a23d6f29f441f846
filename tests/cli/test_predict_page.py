"""`digitrec predict --page`: every number on pictures of pages, as a list, as JSON, and drawn."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import assert_user_error, run_cli
from pages import blank_page, sideways_photo, write_pages
from PIL import Image


@pytest.fixture(scope="module")
def pages(tmp_path_factory, mnist_test):
    return write_pages(tmp_path_factory.mktemp("pages"), mnist_test, count=2, seed=5)


def test_json_gives_every_number_with_its_box_and_digits(pages):
    code, out, err = run_cli("predict", "--page", "--json", *pages, in_process=True)
    assert code == 0 and err == ""
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert [row["source"] for row in rows] == [str(p) for p in pages]
    for row, path in zip(rows, pages):
        assert (row["width"], row["height"]) == Image.open(path).size
        assert row["numbers"]
        for n in row["numbers"]:
            assert set(n) >= {"number", "box", "probability", "unsure", "digits"}
            assert len(n["digits"]) == len(n["number"])
            box = n["box"]
            assert 0 <= box["x"] and box["x"] + box["width"] <= row["width"]
            assert 0 <= box["y"] and box["y"] + box["height"] <= row["height"]
            for d in n["digits"]:  # each digit's box lies inside its number's
                b = d["box"]
                assert box["x"] <= b["x"] and b["x"] + b["width"] <= box["x"] + box["width"]
                assert box["y"] <= b["y"] and b["y"] + b["height"] <= box["y"] + box["height"]


def test_the_readable_list_names_each_page_and_its_numbers(pages, tmp_path):
    blank = blank_page(tmp_path)
    code, out, _ = run_cli("predict", "--page", pages[0], blank, in_process=True)
    [row] = [json.loads(x) for x in run_cli("predict", "--page", "--json", pages[0], in_process=True).stdout.split("\n")
             if x]
    assert code == 0
    lines = out.strip().splitlines()
    count = len(row["numbers"])
    assert lines[0] == f"{pages[0]}: {count} number{'s' if count != 1 else ''}"
    for line, n in zip(lines[1:], row["numbers"]):
        b = n["box"]
        assert line.startswith(f"  {n['number']}") and f"at x={b['x']} y={b['y']} {b['width']}x{b['height']}" in line
    assert lines[-1] == f"{blank}: no numbers found"


def test_a_page_without_numbers_is_an_empty_list_not_an_error(tmp_path):
    code, out, err = run_cli("predict", "--page", "--json", blank_page(tmp_path), in_process=True)
    assert code == 0 and err == ""
    assert json.loads(out)["numbers"] == []


def test_save_boxes_draws_the_boxes_on_each_picture(pages, tmp_path):
    out_dir = tmp_path / "drawn"
    code, out, _ = run_cli("predict", "--page", "--json", *pages, "--save-boxes", out_dir, in_process=True)
    assert code == 0
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert sorted(p.name for p in out_dir.iterdir()) == sorted(f"{p.stem}.png" for p in pages)  # no temporaries
    for path, row in zip(pages, rows):
        drawn = np.asarray(Image.open(out_dir / f"{path.stem}.png").convert("RGB")).astype(int)
        original = np.asarray(Image.open(path).convert("RGB")).astype(int)
        assert drawn.shape == original.shape
        coloured = (np.abs(drawn - drawn.mean(axis=2, keepdims=True)).max(axis=2) > 40)  # the boxes' colour
        for n in row["numbers"]:
            b = n["box"]
            assert coloured[b["y"]:b["y"] + b["height"], b["x"] - 6:b["x"]].any()  # its left edge, just outside
        assert not coloured[np.abs(drawn - original).max(axis=2) == 0].any()  # only the drawing is coloured


def test_save_boxes_keeps_two_pictures_of_one_name(pages, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / pages[0].name).write_bytes(pages[1].read_bytes())
    code, _, _ = run_cli("predict", "--page", pages[0], other / pages[0].name, "--save-boxes", tmp_path / "d",
                         in_process=True)
    assert code == 0
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [f"{pages[0].stem}-2.png", f"{pages[0].stem}.png"]


def test_bad_pictures_get_one_line_each_and_the_rest_are_read(pages, tmp_path):
    """A folder of mixed files: pictures are read, broken ones and other files get their error line."""
    folder = tmp_path / "mixed"
    folder.mkdir()
    (folder / "good.png").write_bytes(pages[0].read_bytes())
    (folder / "notes.png").write_text("not a picture")
    (folder / "cut.png").write_bytes(pages[0].read_bytes()[:300])
    (folder / "readme.txt").write_text("skipped: not a picture's name")
    Image.new("1", (8000, 6000), 1).save(folder / "huge.png")  # 48 million pixels, over the cap
    code, out, err = run_cli("predict", "--page", "--json", folder, in_process=True)
    assert code == 1
    [row] = [json.loads(line) for line in out.strip().splitlines()]
    assert row["source"].endswith("good.png") and row["numbers"]
    errors = err.strip().splitlines()
    assert len(errors) == 3 and all(line.startswith("digitrec: error: ") for line in errors)
    assert "Traceback" not in err
    for name in ("notes.png", "cut.png", "huge.png"):
        assert sum(name in line for line in errors) == 1, (name, errors)
    assert "too large" in next(line for line in errors if "huge.png" in line)


def test_page_usage_errors(tmp_path, pages):
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert_user_error(run_cli("predict", "--page", pages[0], "--save-boxes", blocked / "out", in_process=True),
                      "--save-boxes", str(blocked / "out"))
    assert not (tmp_path / "file" / "out").exists()
    assert_user_error(run_cli("predict", pages[0], "--save-boxes", tmp_path / "d", in_process=True),
                      "--save-boxes goes with --page")
    assert_user_error(run_cli("predict", "--page", "--number", pages[0], in_process=True), "--page and --number")
    assert_user_error(run_cli("predict", "--page", "--save-input", tmp_path / "s", pages[0], in_process=True),
                      "--page and --save-input")


def test_a_photo_stored_sideways_is_read_and_drawn_upright(pages, tmp_path):
    """A phone's photo with an EXIF rotation: width, height, boxes and the drawn picture are upright."""
    photo = sideways_photo(pages[0], tmp_path)
    assert Image.open(photo).size == Image.open(pages[0]).size[::-1]  # stored a quarter turn round
    code, out, _ = run_cli("predict", "--page", "--json", photo, "--save-boxes", tmp_path / "d", in_process=True)
    row = json.loads(out)
    assert code == 0 and (row["width"], row["height"]) == Image.open(pages[0]).size
    assert row["numbers"] and all(n["box"]["x"] + n["box"]["width"] <= row["width"] for n in row["numbers"])
    assert Image.open(tmp_path / "d" / f"{photo.stem}.png").size == (row["width"], row["height"])
