"""Figures and the HTML report, made from a real short training run through the CLI."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest
from helpers import assert_user_error, run_cli
from PIL import Image

from digitrec.cli import main
from digitrec.models.modelfile import read_metadata
from digitrec.report import plots

# (width, height) in pixels at 100 dpi; the mistakes gallery grows with its rows
SIZES = {"curves": (900, 340), "per_class": (700, 320), "confusion": (560, 500), "predictions": (630, 786),
         "mistakes": (630, 664), "reliability": (520, 440)}  # 24 mistakes: 4 rows of 6
FIGURES = ("curves", "per_class", "confusion", "predictions", "mistakes", "reliability")


def assert_picture(path: Path, size: tuple[int, int] | None = None) -> Image.Image:
    """A real PNG of the expected size that shows something: varied grey levels, many colours."""
    assert path.is_file(), path
    with Image.open(path) as im:
        im.load()
    assert im.format == "PNG"
    if size is not None:
        assert im.size == size, (path.name, im.size)
    grey = np.asarray(im.convert("L"), dtype=float)
    assert grey.std() > 15, f"{path.name} looks blank (grey std {grey.std():.1f})"
    assert len(im.convert("RGB").getcolors(1 << 24)) > 50, f"{path.name} has too few colours"
    return im


def red_pixels(path: Path) -> int:
    """Pixels of the mistake red (#c51b1b and its anti-aliased neighbours)."""
    rgb = np.asarray(Image.open(path).convert("RGB")).astype(int)
    return int(((rgb[..., 0] > 150) & (rgb[..., 1] < 90) & (rgb[..., 2] < 90)).sum())


def write_kaggle_csv(path: Path, images: np.ndarray, labels: np.ndarray | None) -> Path:
    header = (["label"] if labels is not None else []) + [f"pixel{i}" for i in range(784)]
    rows = [",".join(header)]
    for i, image in enumerate(images):
        pixels = ",".join(map(str, image.reshape(-1)))
        rows.append(f"{labels[i]},{pixels}" if labels is not None else pixels)
    path.write_text("\n".join(rows) + "\n")
    return path


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory, mnist_dir) -> Path:
    """`digitrec train` on 3,000 digits for 2 epochs, which also draws the report into the run folder."""
    out = tmp_path_factory.mktemp("report") / "run"
    code = main(["train", "--subset", "3000", "--epochs", "2", "--val-size", "1000", "--out", str(out),
                 "--threads", "1", "--device", "cpu", "--quiet"])
    assert code == 0
    return out


@pytest.fixture(scope="session")
def small_csv(tmp_path_factory, mnist_test) -> Path:
    """The first 200 MNIST test digits as a labelled Kaggle-style CSV."""
    return write_kaggle_csv(tmp_path_factory.mktemp("csv") / "digits.csv", mnist_test.images[:200],
                            mnist_test.labels[:200])


def test_train_draws_every_figure_and_the_report(trained_run):
    for name in FIGURES:
        assert_picture(trained_run / f"{name}.png", SIZES[name])
    assert (trained_run / "report.html").is_file()


def test_report_html_is_self_contained_with_figures_and_accuracy(trained_run):
    page = (trained_run / "report.html").read_text()
    accuracy = read_metadata(trained_run / "model.safetensors")["metrics"]["test_accuracy"]
    assert accuracy > 0.8  # 2 epochs on 3,000 digits reach ~0.93
    assert f"Test accuracy <b>{accuracy:.4f}</b>" in page and "of 10,000 images of mnist:test" in page
    images = re.findall(r"src='data:image/png;base64,([A-Za-z0-9+/=]+)'", page)
    assert len(images) == len(FIGURES)
    for encoded, name in zip(images, FIGURES):  # the page shows the figures in this order
        assert base64.b64decode(encoded) == (trained_run / f"{name}.png").read_bytes()
    assert not re.search(r"(src|href)=['\"](?!data:)", page), "the page must not load anything from outside"
    assert "<script" not in page and "conv2-fc64" in page and "precision" in page
    assert "<th>subset</th><td>3000</td>" in page  # the run's settings


def test_report_command_on_a_run_folder_with_other_data(trained_run, small_csv, tmp_path, capsys):
    out = tmp_path / "elsewhere"
    assert main(["report", str(trained_run), "--out", str(out), "--data", str(small_csv),
                 "--threads", "1", "--device", "cpu"]) == 0
    printed = capsys.readouterr().out
    assert re.search(r"test accuracy: 0\.\d{4}", printed) and f"report.html: {out / 'report.html'}" in printed
    for name in FIGURES:
        assert_picture(out / f"{name}.png", None if name == "mistakes" else SIZES[name])
    page = (out / "report.html").read_text()
    assert "of 200 images of" in page and page.count("data:image/png;base64,") == len(FIGURES)


def test_report_on_bare_model_file_says_there_are_no_curves(trained_run, small_csv, tmp_path, capsys):
    model = tmp_path / "digits.safetensors"
    model.write_bytes((trained_run / "model.safetensors").read_bytes())
    assert main(["report", str(model), "--data", str(small_csv), "--threads", "1", "--device", "cpu"]) == 0
    out = tmp_path / "digits-report"
    assert not (out / "curves.png").exists()
    for name in FIGURES[1:]:
        assert_picture(out / f"{name}.png", None if name == "mistakes" else SIZES[name])
    page = (out / "report.html").read_text()
    assert "no training curves" in page and str(small_csv) in page
    assert "of 200 images" in page
    assert "no training curves" in capsys.readouterr().out


def test_predictions_mark_mistakes_in_red(mnist_test, tmp_path):
    images, labels = mnist_test.images[:12], mnist_test.labels[:12]
    right = np.eye(10, dtype=np.float32)[labels]
    wrong = right.copy()
    wrong[3] = np.roll(wrong[3], 1)  # digit 3 now predicted as the next digit
    plots.plot_predictions(images, labels, right, tmp_path / "right.png", n=12)
    plots.plot_predictions(images, labels, wrong, tmp_path / "wrong.png", n=12)
    assert red_pixels(tmp_path / "right.png") == 0
    assert red_pixels(tmp_path / "wrong.png") > 200  # the red title and frame


def test_mistakes_gallery_without_mistakes_says_so(mnist_test, tmp_path):
    labels = mnist_test.labels[:50]
    path = plots.plot_mistakes(mnist_test.images[:50], labels, np.eye(10)[labels], tmp_path / "m.png")
    with Image.open(path) as im:
        assert im.format == "PNG" and np.asarray(im.convert("L")).std() > 1
        assert im.text["Description"] == "no mistakes on 50 images"  # what the figure draws, nothing else


def test_mistakes_gallery_counts_and_titles_the_mistakes(mnist_test, tmp_path):
    labels = mnist_test.labels[:50]
    probs = np.eye(10)[labels] * 0.9 + 0.01
    wrong = [3, 17]
    probs[wrong] = np.eye(10)[(labels[wrong] + 1) % 10] * 0.9 + 0.01
    with Image.open(plots.plot_mistakes(mnist_test.images[:50], labels, probs, tmp_path / "m.png")) as im:
        text = im.text["Description"]
    assert text.startswith("most confident mistakes (2 of 2)")
    titles = re.findall(r"true \d", text)
    assert sorted(titles) == sorted([f"true {labels[3]}", f"true {labels[17]}"])


def test_confident_mistakes_are_ordered_surest_first():
    labels = np.array([0, 1, 2, 3])
    probs = np.full((4, 10), 0.01)
    probs[0, 5], probs[1, 1], probs[2, 7], probs[3, 9] = 0.6, 0.9, 0.95, 0.7  # 1 is right
    assert plots.confident_mistakes(labels, probs, 10).tolist() == [2, 3, 0]


def test_show_draws_mnist_samples(mnist_dir, tmp_path, capsys):
    out = tmp_path / "mnist.png"
    assert main(["show", "--n", "25", "--split", "test", "--data-dir", str(mnist_dir), "--out", str(out)]) == 0
    assert_picture(out, (525, 661))
    assert "25 digits of mnist:test" in capsys.readouterr().out


def test_show_draws_kaggle_csv_samples_labelled_and_not(small_csv, mnist_test, tmp_path):
    assert main(["show", "--n", "12", "--data", str(small_csv), "--out", str(tmp_path / "a.png")]) == 0
    assert_picture(tmp_path / "a.png")
    unlabelled = write_kaggle_csv(tmp_path / "test.csv", mnist_test.images[:7], None)
    assert main(["show", "--n", "30", "--data", str(unlabelled), "--out", str(tmp_path / "b.png")]) == 0
    assert_picture(tmp_path / "b.png")


@pytest.mark.parametrize("argv, message", [
    (["report", "{tmp}/no-such-run"], "no-such-run: not found"),
    (["report", "{tmp}"], "no model.safetensors"),
    (["show", "--n", "0"], "--n: must be between 1 and 400"),
    (["show", "--data", "{tmp}/missing.csv"], "missing.csv: file not found"),
])
def test_user_errors_are_one_line_and_exit_2(argv, message, tmp_path):
    assert_user_error(run_cli(*[a.replace("{tmp}", str(tmp_path)) for a in argv], in_process=True), message)


def test_report_on_a_run_with_a_damaged_history_is_a_one_line_error(trained_run, tmp_path):
    import shutil

    run = shutil.copytree(trained_run, tmp_path / "run")
    (run / "history.json").write_text('{"epochs": [{"epoch": 1}]')  # cut off mid-write by hand
    assert_user_error(run_cli("report", run, in_process=True), "history.json", "not a digitrec history file")
    (run / "history.json").write_text('{"epochs": [{"epoch": 1}]}')
    assert_user_error(run_cli("report", run, in_process=True), "history.json", "every epoch needs")


def test_report_refuses_unlabelled_test_data(trained_run, mnist_test, tmp_path, capsys):
    unlabelled = write_kaggle_csv(tmp_path / "test.csv", mnist_test.images[:5], None)
    assert main(["report", str(trained_run), "--data", str(unlabelled), "--out", str(tmp_path / "r")]) == 2
    assert "test.csv: has no labels" in capsys.readouterr().err
    assert not (tmp_path / "r" / "report.html").exists()


def test_curves_without_validation_show_training_only(tmp_path):
    nan = float("nan")
    rows = [{"epoch": e, "train_loss": 1 / e, "train_accuracy": 1 - 0.1 / e, "val_loss": nan, "val_accuracy": nan}
            for e in (1, 2, 3)]
    assert_picture(plots.plot_curves(rows, tmp_path / "c.png"), SIZES["curves"])


def test_train_no_report_leaves_no_figures(small_csv, tmp_path):
    out = tmp_path / "run"
    assert main(["train", "--data", str(small_csv), "--epochs", "1", "--val-size", "50", "--out", str(out),
                 "--threads", "1", "--device", "cpu", "--quiet", "--no-report"]) == 0
    assert (out / "model.safetensors").is_file()
    assert not list(out.glob("*.png")) and not (out / "report.html").exists()


def test_train_on_a_csv_without_test_data_reports_curves_and_says_why_no_more(small_csv, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--data", str(small_csv), "--epochs", "2", "--val-size", "50", "--out", str(out),
                 "--threads", "1", "--device", "cpu", "--quiet"]) == 0
    assert_picture(out / "curves.png", SIZES["curves"])
    assert not (out / "confusion.png").exists()
    page = (out / "report.html").read_text()
    assert "has no test split: pass --data" in page and page.count("data:image/png;base64,") == 1
    assert "note: The training data" in capsys.readouterr().out


def test_train_no_test_measures_nothing_on_the_test_set(tmp_path, capsys):
    """--no-test keeps the test set out of a run whose choices rest on validation: no printed figure,
    none in the model file, and a report that says how to measure it later."""
    out = tmp_path / "blind"
    assert main(["train", "--model", "conv2-fc64", "--subset", "600", "--val-size", "200", "--epochs", "1",
                 "--out", str(out), "--threads", "1", "--device", "cpu", "--quiet", "--no-test"]) == 0
    printed = capsys.readouterr().out
    assert "test accuracy" not in printed and "trained with --no-test" in printed
    meta = read_metadata(out / "model.safetensors")
    assert meta["metrics"]["test_accuracy"] is None and meta["data"]["n_test"] == 0
    assert meta["metrics"]["val_accuracy"] > 0
    page = (out / "report.html").read_text()
    assert "trained with --no-test" in page and not (out / "confusion.png").exists()
