"""The run folder: what a resumed run and the report read back, and what they say when it is damaged."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from helpers import QUICK_TRAIN, CliResult, assert_user_error, run_cli

from digitrec.errors import DigitrecError
from digitrec.models.modelfile import load_checkpoint
from digitrec.training.config import TrainConfig
from digitrec.training.runfolder import RunFolder

SUPPORT = Path(__file__).resolve().parents[1] / "support"


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


@pytest.mark.slow  # three short runs: about a minute on a busy 2-core machine
def test_a_checkpoint_that_cannot_be_written_stops_the_run_and_resume_ends_as_an_unbroken_run(tmp_path):
    """A checkpoint write that fails mid-run (EFBIG under a file-size limit, in a child process) stops training
    with one line naming the file; the last good checkpoint is untouched, no temporary file is left, and
    `--resume` then ends with exactly the weights of a run that never failed."""
    from safetensors.numpy import load_file

    args = [*QUICK_TRAIN, "--epochs", "3", "--seed", "3"]
    unbroken, broken = tmp_path / "unbroken", tmp_path / "broken"
    assert run_cli("train", *args, "--out", unbroken).returncode == 0
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    failed = subprocess.run([sys.executable, str(SUPPORT / "fsize_limit.py"), "2", "4096", "train", *args, "--out",
                             broken], capture_output=True, text=True, env=env, timeout=600)
    assert_user_error(CliResult(failed.returncode, failed.stdout, failed.stderr),
                      f"{broken / 'checkpoint.safetensors'}: cannot write the checkpoint of epoch 2 (File too large)",
                      "the checkpoint of epoch 1 is intact", f"digitrec train --resume {broken}")
    assert load_checkpoint(broken / "checkpoint.safetensors")[1]["epoch"] == 1
    assert sorted(p.name for p in broken.iterdir()) == ["checkpoint.safetensors", "config.json", "history.csv",
                                                         "history.json"]  # no temporary, no model
    resumed = run_cli("train", "--resume", broken)
    assert resumed.returncode == 0, resumed.stderr
    final, expected = load_file(broken / "model.safetensors"), load_file(unbroken / "model.safetensors")
    assert final.keys() == expected.keys()
    assert all(np.array_equal(final[k], expected[k]) for k in final)
