"""`digitrec train --recipe numbers`: the number reader's line model is rebuilt by anyone, like any run."""

from __future__ import annotations

import json

from helpers import assert_user_error, run_cli

from digitrec.models.modelfile import load_model


def test_the_numbers_recipe_trains_a_line_reader_into_a_run_folder(tmp_path):
    out = tmp_path / "lines"
    result = run_cli("train", "--recipe", "numbers", "--epochs", "1", "--subset", "256", "--threads", "1",
                     "--quiet", "--out", out)
    assert result.returncode == 0, result.stderr
    model, meta = load_model(out / "model.safetensors")
    assert meta["arch"] == "line-ctc" and meta["input"]["line_height"] == 32
    assert 0.0 <= meta["metrics"]["val_numbers_exact"] <= 1.0 and meta["metrics"]["val_lines"] > 0
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1]
    assert json.loads((out / "config.json").read_text())["recipe"] == "numbers"
    assert "line reader reads numbers" in (out / "report.html").read_text()
    # not a digit reader: commands that read digits say so in one line
    assert_user_error(run_cli("evaluate", out / "model.safetensors"), "line reader")
