"""`digitrec predict`, on files made from real MNIST test digits."""

from __future__ import annotations

import json

import numpy as np
import pytest
from helpers import assert_user_error, run_cli
from PIL import Image

from digitrec.synth.variants import jpeg, number_picture, rgba_transparent, white_300

INDEX = [0, 1, 2, 3, 4, 7]  # test digits 7 2 1 0 4 9




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










def test_cli_folder_and_files(pictures, mnist_test):
    code, out, err = run_cli("predict", str(pictures), "--batch-size", "4", in_process=True)
    assert code == 0 and err == ""
    lines = out.strip().splitlines()
    assert len(lines) == len(INDEX)
    for line in lines:
        name, rest = line.split(": ", 1)
        assert rest.split()[0] == name.split("label")[1][0], line  # the digit is the one in the name
        assert "top3" in rest


def test_cli_json(pictures):
    code, out, _ = run_cli("predict", str(pictures), "--json", in_process=True)
    rows = [json.loads(line) for line in out.strip().splitlines()]
    assert code == 0 and len(rows) == len(INDEX)
    for row in rows:
        assert row["digit"] == int(row["source"].split("label")[1][0])
        assert len(row["probabilities"]) == 10 and len(row["top3"]) == 3 and row["blank"] is False


def test_cli_bad_files_are_reported_and_the_rest_processed(pictures):
    (pictures / "empty.png").write_bytes(b"")
    (pictures / "notes.png").write_text("not a picture")
    (pictures / "cut.jpg").write_bytes((pictures / "more").glob("*.jpg").__next__().read_bytes()[:300])
    code, out, err = run_cli("predict", str(pictures), str(pictures / "missing.png"), in_process=True)
    assert code == 1
    assert len(out.strip().splitlines()) == len(INDEX)
    errors = err.strip().splitlines()
    assert len(errors) == 4 and all(line.startswith("digitrec: error: ") for line in errors)
    assert any("empty.png" in e for e in errors) and any("missing.png: file not found" in e for e in errors)


def test_cli_blank_and_unsure(tmp_path, mnist_test):
    Image.new("RGB", (120, 90), (250, 250, 250)).save(tmp_path / "blank.png")
    white_300(mnist_test.images[0], None).save(tmp_path / "seven.png")
    code, out, _ = run_cli("predict", tmp_path / "blank.png", tmp_path / "seven.png", "--threshold", "1",
                           in_process=True)
    assert code == 0
    assert "blank.png: blank" in out and "seven.png: 7?  (unsure)" in out


def test_cli_usage_errors(tmp_path):
    assert_user_error(run_cli("predict", in_process=True), "give at least one picture")
    assert_user_error(run_cli("predict", "--csv", "test.csv", in_process=True), "--csv and --out go together")
    assert_user_error(run_cli("predict", "x.png", "--model", tmp_path / "none.safetensors", in_process=True),
                      "none.safetensors: model file not found")


def test_cli_kaggle_csv_to_submission(tmp_path, mnist_test):
    rows = mnist_test.images[:50].reshape(50, -1)
    header = ",".join(f"pixel{i}" for i in range(784))
    (tmp_path / "test.csv").write_text(header + "\n" + "\n".join(",".join(map(str, r)) for r in rows) + "\n")
    code, _, err = run_cli("predict", "--csv", tmp_path / "test.csv", "--out", tmp_path / "submission.csv",
                           in_process=True)
    lines = (tmp_path / "submission.csv").read_text().splitlines()
    assert code == 0 and "wrote 50 predictions" in err
    assert lines[0] == "ImageId,Label" and lines[1].startswith("1,") and len(lines) == 51
    labels = np.array([int(line.split(",")[1]) for line in lines[1:]])
    assert (labels == mnist_test.labels[:50]).mean() >= 0.96


def test_cli_number_and_save_input(tmp_path, mnist_test):
    labels = mnist_test.labels
    picks = [int(np.flatnonzero(labels == d)[k]) for k, d in enumerate([2, 0, 2, 6])]
    number_picture([mnist_test.images[i] for i in picks], [6, 3, 8]).save(tmp_path / "year.png")
    code, out, _ = run_cli("predict", tmp_path / "year.png", "--number", "--save-input", tmp_path / "seen",
                           in_process=True)
    assert code == 0 and out.startswith(f"{tmp_path / 'year.png'}: 2026  p=")
    saved = sorted(p.name for p in (tmp_path / "seen").iterdir())
    assert saved == ["year-0.png", "year-1.png", "year-2.png", "year-3.png"]
    assert Image.open(tmp_path / "seen" / "year-0.png").size == (28, 28)


def test_cli_save_input_single_digits(pictures, tmp_path):
    code, _, _ = run_cli("predict", str(pictures), "--save-input", str(tmp_path / "seen"), in_process=True)
    saved = list((tmp_path / "seen").iterdir())
    assert code == 0 and len(saved) == len(INDEX)
    assert all(np.asarray(Image.open(p)).shape == (28, 28) for p in saved)


def test_cli_onnx_backend_reads_as_torch_does(pictures):
    torch_rows = [json.loads(x) for x in run_cli("predict", pictures, "--json", in_process=True).stdout.splitlines()]
    result = run_cli("predict", pictures, "--json", "--backend", "onnx", in_process=True)
    assert result.returncode == 0, result.stderr
    onnx_rows = [json.loads(x) for x in result.stdout.splitlines()]
    assert [r["digit"] for r in onnx_rows] == [r["digit"] for r in torch_rows] and len(onnx_rows) == len(INDEX)
    assert all(abs(a["probability"] - b["probability"]) < 1e-4 for a, b in zip(onnx_rows, torch_rows))
