"""What every command does with a user's mistake: one line naming the option or file, exit code 2,
nothing written, and nothing read before the options are known to be good."""

from __future__ import annotations

import pytest
from helpers import assert_user_error, run_cli

from digitrec.errors import DigitrecError


@pytest.fixture
def blocked(tmp_path):
    """A path that can never be created: its parent is a file."""
    (tmp_path / "file").write_text("not a folder")
    return tmp_path / "file" / "out"


@pytest.mark.parametrize("argv, option", [
    (["train", "--subset", "100", "--epochs", "1", "--out", "{blocked}"], "--out"),
    (["train", "--out", "/proc/digitrec-run"], "--out"),
    (["export", "{model}", "--out", "{blocked}/m.onnx"], "--out"),
    (["predict", "{picture}", "--save-input", "{blocked}"], "--save-input"),
    (["predict", "--csv", "{csv}", "--out", "{blocked}/s.csv"], "--out"),
    (["show", "--out", "{blocked}/s.png"], "--out"),
    (["report", "{model}", "--out", "{blocked}"], "--out"),
    (["ensemble", "{model}", "{model}", "--out", "{blocked}/e.safetensors"], "--out"),
])
def test_an_output_path_that_cannot_be_written_is_a_one_line_error(argv, option, blocked, tmp_path, quick_run):
    picture, csv = tmp_path / "p.png", tmp_path / "t.csv"
    from PIL import Image

    Image.new("L", (28, 28)).save(picture)
    csv.write_text("pixel0\n0\n")
    names = {"blocked": blocked, "model": quick_run[0] / "model.safetensors", "picture": picture, "csv": csv}
    result = run_cli(*[a.format(**names) for a in argv])
    assert_user_error(result, option, str(blocked) if "{blocked}" in " ".join(argv) else "/proc")
    assert not blocked.parent.is_dir()


def test_options_are_checked_before_any_data_is_read(tmp_path, monkeypatch):
    """An empty data folder would make `train` download MNIST; a bad option must stop it first."""
    monkeypatch.setenv("DIGITREC_DATA", str(tmp_path / "empty"))
    for argv, option in ((["--epochs", "0"], "--epochs"), (["--model", "nope"], "--model"),
                         (["--lr", "-1"], "--lr"), (["--val-size", "-5"], "--val-size"),
                         (["--threads", "0"], "--threads"), (["--device", "tpu"], "--device")):
        result = run_cli("train", *argv, "--out", tmp_path / "run", timeout=60)
        assert_user_error(result, option)
        assert not (tmp_path / "empty").exists() and not (tmp_path / "run").exists()


def test_library_errors_name_their_field_and_the_cli_spells_it_as_an_option():
    from digitrec.cli import build_parser, render

    parser = build_parser()
    serve = parser._subparsers._group_actions[0].choices["serve"]
    evaluate = parser._subparsers._group_actions[0].choices["evaluate"]
    assert render(DigitrecError("must be between 0 and 1", field="threshold"), serve) == \
        "--threshold: must be between 0 and 1"
    assert render(DigitrecError("too small", field="max_upload_bytes"), serve) == "--max-upload-mb: too small"
    assert render(DigitrecError("missing", field="model"), evaluate) == "MODEL: missing"
    assert render(DigitrecError("x.png: not an image")) == "x.png: not an image"
    assert str(DigitrecError("bad", field="threshold")) == "threshold: bad"


def test_evaluate_without_a_model_file_measures_the_shipped_model():
    result = run_cli("evaluate", "--json", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    import json

    doc = json.loads(result.stdout)
    assert doc["n"] == 10000 and doc["accuracy"] > 0.99 and doc["model"].endswith("default.safetensors")


def test_version():
    from digitrec import __version__

    result = run_cli("--version", in_process=True)
    assert result.returncode == 0 and result.stdout.strip() == f"digitrec {__version__}"
