"""The run folder: what a resumed run and the report read back, and what they say when it is damaged."""

from __future__ import annotations

import shutil

import pytest
from helpers import assert_user_error, run_cli

from digitrec.errors import DigitrecError
from digitrec.training.config import TrainConfig
from digitrec.training.runfolder import RunFolder


@pytest.mark.parametrize("damage, words", [
    ('{"model": "conv2-fc64", "epochs": ', "not a valid run config"),  # cut off
    ("[1, 2, 3]", "not a valid run config"),  # JSON, but not an object
    ('{"epochs": "ten"}', "epochs should be int, not 'ten'"),  # an object with a wrong value
])
def test_resuming_a_run_with_a_damaged_config_is_a_one_line_error(damage, words, quick_run, tmp_path):
    run = shutil.copytree(quick_run[0], tmp_path / "run")
    (run / "config.json").write_text(damage)
    before = (run / "checkpoint.safetensors").read_bytes()
    assert_user_error(run_cli("train", "--resume", run, "--epochs", "3", in_process=True), words)
    assert (run / "checkpoint.safetensors").read_bytes() == before  # nothing of the run was touched


def test_config_and_history_round_trip(tmp_path):
    folder = RunFolder(tmp_path / "r")
    cfg = TrainConfig(model="bn-conv3-w16", epochs=3, model_kwargs={"crop": 20})
    folder.save_config(cfg)
    assert folder.load_config() == cfg
    rows = [{"epoch": e, "train_loss": 1.0 / e, "train_accuracy": 0.9, "val_loss": 0.5, "val_accuracy": 0.95,
             "seconds": 2.0} for e in (1, 2)]
    folder.write_history(rows)
    back = folder.load_history()
    assert [r["total_seconds"] for r in back] == [2.0, 4.0] and back[1]["train_loss"] == 0.5
    assert (folder.path / "history.csv").read_text().splitlines()[0].startswith("epoch,train_loss")
    with pytest.raises(DigitrecError, match="not found"):
        RunFolder(tmp_path / "nothing").load_config()
