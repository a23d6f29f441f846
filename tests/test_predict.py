"""`digitrec predict` and the Python API, on files made from real MNIST test digits."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from digitrec.cli import main
from digitrec.errors import DigitrecError
from digitrec.testing.synthetic import jpeg, number_picture, rgba_transparent, white_300

INDEX = [0, 1, 2, 3, 4, 7]  # test digits 7 2 1 0 4 9


@pytest.fixture(scope="module")
def recognizer():
    from digitrec import Recognizer

    return Recognizer.load(device="cpu")


@pytest.fixture
def pictures(tmp_path, mnist_test):
    """A folder of pictures of test digits in three formats, named by their label."""
    folder = tmp_path / "pics"
    (folder / "more").mkdir(parents=True)
    for n, i in enumerate(INDEX):
        digit, label = mnist_test.images[i], mnist_test.labels[i]
        if n % 3 == 0:
            white_300(digit, None).save(folder / f"{n}-label{label}.png")
        elif n % 3 == 1:
            (folder / "more" / f"{n}-label{label}.jpg").write_bytes(jpeg(digit, None))
        else:
            rgba_transparent(digit, None).save(folder / f"{n}-label{label}.png")
    return folder


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["predict", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_api_predict_path_pil_array_bytes(recognizer, mnist_test, tmp_path):
    digit, label = mnist_test.images[0], int(mnist_test.labels[0])
    picture = white_300(digit, None)
    picture.save(tmp_path / "seven.png")
    for source in (tmp_path / "seven.png", str(tmp_path / "seven.png"), picture, digit,
                   (tmp_path / "seven.png").read_bytes()):
        result = recognizer.predict(source)
        assert result.digit == label and not result.blank and not result.unsure
        assert result.probabilities.shape == (10,) and abs(result.probabilities.sum() - 1) < 1e-4
        assert result.top3[0] == (label, result.probability) and result.top3[1][1] <= result.top3[0][1]
        assert result.input.shape == (28, 28) and result.input.dtype == np.uint8


def test_api_batch_blank_and_threshold(mnist_test):
    from digitrec import Recognizer

    strict = Recognizer.load(threshold=1.0, device="cpu")
    results = strict.predict_batch([mnist_test.images[1], Image.new("L", (50, 50), 255), mnist_test.images[2]])
    assert [r.digit for r in results] == [2, None, 1]
    assert results[1].blank and results[1].top3 == [] and not results[1].probabilities.any()
    assert results[0].unsure and results[2].unsure  # nothing reaches probability 1.0
    with pytest.raises(DigitrecError, match="threshold"):
        Recognizer.load(threshold=1.5)


def test_api_default_model_records_how_it_was_made(recognizer):
    meta = recognizer.metadata
    assert meta["training"]["augment"] and meta["metrics"]["test_accuracy"] > 0.98
    assert "digitrec train" in meta["command"]


def test_import_digitrec_is_cheap():
    code = "import sys, digitrec; print('torch' in sys.modules, 'Recognizer' in digitrec.__all__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "True"]  # torch comes with the first use of digitrec.Recognizer


def test_cli_folder_and_files(capsys, pictures, mnist_test):
    code, out, err = run_cli(capsys, str(pictures), "--batch-size", "4")
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert len(lines) == len(INDEX)
    for line in lines:
        name, rest = line.split(": ", 1)
        assert rest.split()[0] == name.split("label")[1][0], line  # the digit is the one in the name
        assert "top3" in rest


def test_cli_json(capsys, pictures):
    code, out, _ = run_cli(capsys, str(pictures), "--json")
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert code == 0 and len(rows) == len(INDEX)
    for row in rows:
        assert row["digit"] == int(row["source"].split("label")[1][0])
        assert len(row["probabilities"]) == 10 and len(row["top3"]) == 3 and row["blank"] is False


def test_cli_bad_files_are_reported_and_the_rest_processed(capsys, pictures):
    (pictures / "empty.png").write_bytes(b"")
    (pictures / "notes.png").write_text("not a picture")
    (pictures / "cut.jpg").write_bytes((pictures / "more").glob("*.jpg").__next__().read_bytes()[:300])
    code, out, err = run_cli(capsys, str(pictures), str(pictures / "missing.png"))
    assert code == 1
    assert len(out.strip().splitlines()) == len(INDEX)
    errors = err.strip().splitlines()
    assert len(errors) == 4 and all(line.startswith("digitrec: error: ") for line in errors)
    assert any("empty.png" in e for e in errors) and any("missing.png: file not found" in e for e in errors)


def test_cli_blank_and_unsure(capsys, tmp_path, mnist_test):
    Image.new("RGB", (120, 90), (250, 250, 250)).save(tmp_path / "blank.png")
    white_300(mnist_test.images[0], None).save(tmp_path / "seven.png")
    code, out, _ = run_cli(capsys, str(tmp_path / "blank.png"), str(tmp_path / "seven.png"), "--threshold", "1")
    assert code == 0
    assert "blank.png: blank" in out and "seven.png: 7?  (unsure)" in out


def test_cli_usage_errors(capsys, tmp_path):
    assert main(["predict"]) == 2
    assert main(["predict", "--csv", "test.csv"]) == 2
    assert main(["predict", "x.png", "--model", str(tmp_path / "none.safetensors")]) == 2
    assert "none.safetensors: model file not found" in capsys.readouterr().err


def test_cli_kaggle_csv_to_submission(capsys, tmp_path, mnist_test):
    rows = mnist_test.images[:50].reshape(50, -1)
    header = ",".join(f"pixel{i}" for i in range(784))
    (tmp_path / "test.csv").write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    code, _, err = run_cli(capsys, "--csv", str(tmp_path / "test.csv"), "--out", str(tmp_path / "submission.csv"))
    lines = (tmp_path / "submission.csv").read_text().splitlines()
    assert code == 0 and "wrote 50 predictions" in err
    assert lines[0] == "ImageId,Label" and lines[1].startswith("1,") and len(lines) == 51
    labels = np.array([int(line.split(",")[1]) for line in lines[1:]])
    assert (labels == mnist_test.labels[:50]).mean() >= 0.96


def test_cli_number_and_save_input(capsys, tmp_path, mnist_test):
    labels = mnist_test.labels
    picks = [int(np.flatnonzero(labels == d)[k]) for k, d in enumerate([2, 0, 2, 6])]
    number_picture([mnist_test.images[i] for i in picks], [6, 3, 8]).save(tmp_path / "year.png")
    code, out, _ = run_cli(capsys, str(tmp_path / "year.png"), "--number", "--save-input", str(tmp_path / "seen"))
    assert code == 0 and out.startswith(f"{tmp_path / 'year.png'}: 2026  p=")
    saved = sorted(p.name for p in (tmp_path / "seen").iterdir())
    assert saved == ["year-0.png", "year-1.png", "year-2.png", "year-3.png"]
    assert Image.open(tmp_path / "seen" / "year-0.png").size == (28, 28)


def test_cli_save_input_single_digits(capsys, pictures, tmp_path):
    code, _, _ = run_cli(capsys, str(pictures), "--save-input", str(tmp_path / "seen"))
    saved = list((tmp_path / "seen").iterdir())
    assert code == 0 and len(saved) == len(INDEX)
    assert all(np.asarray(Image.open(p)).shape == (28, 28) for p in saved)


def test_api_read_number(recognizer, mnist_test):
    picks = [int(np.flatnonzero(mnist_test.labels == d)[3]) for d in (1, 9, 8, 4)]
    reading = recognizer.read_number(number_picture([mnist_test.images[i] for i in picks], [4, 0, 5]))
    assert reading.text == "1984" and len(reading.digits) == 4
    assert 0 < reading.probability <= min(d.probability for d in reading.digits)
    assert recognizer.read_number(Image.new("L", (200, 60), 255)).blank
