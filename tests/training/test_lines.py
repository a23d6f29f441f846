"""`digitrec train --recipe numbers`: the number reader's line model is rebuilt by anyone, like any run,
through the same training loop as the digit models (stop and resume, device, settings checked)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import assert_user_error, run_cli
from safetensors.torch import load_file

# a tiny numbers run: lines drawn from the first 256 training digits, 256 lines an epoch
TINY = ["--recipe", "numbers", "--subset", "256", "--lines", "256", "--val-size", "200", "--threads", "1", "--quiet"]


def strict_json(path):
    """The JSON document in `path`, read as a browser or jq would: NaN and Infinity are errors."""
    def refuse(name):
        raise ValueError(f"{path}: {name} is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.fixture(scope="module")
def numbers_run(tmp_path_factory):
    """(run folder, CLI result) of an unbroken 2-epoch tiny numbers run, seed 1, with its report."""
    out = tmp_path_factory.mktemp("lines") / "whole"
    result = run_cli("train", *TINY, "--epochs", "2", "--seed", "1", "--out", out)
    assert result.returncode == 0, result.stderr
    return out, result


def test_the_numbers_recipe_trains_a_line_reader_into_a_run_folder(numbers_run):
    from digitrec.models.modelfile import load_model

    out, result = numbers_run
    assert {"model.safetensors", "checkpoint.safetensors", "history.json", "config.json"} <= {
        p.name for p in out.iterdir()}
    model, meta = load_model(out / "model.safetensors")
    assert meta["arch"] == "line-ctc" and meta["input"]["line_height"] == 32
    assert 0.0 <= meta["metrics"]["val_numbers_exact"] <= 1.0 and meta["metrics"]["val_lines"] == 2000
    assert meta["data"]["n_train"] == 256 and meta["training"]["lines"] == 256  # --subset: training digits
    config = json.loads((out / "config.json").read_text())
    assert config["recipe"] == "numbers" and config["augment"] == "stroke"
    assert "epoch  2/2" in result.stdout and "exact" in result.stdout and "test accuracy" not in result.stdout
    assert "line reader reads numbers" in (out / "report.html").read_text()
    # not a digit reader: commands that read digits say so in one line
    assert_user_error(run_cli("evaluate", out / "model.safetensors"), "line reader")


def test_history_is_json_with_null_where_a_figure_does_not_apply(numbers_run):
    """Training lines are not read back, so there is no train accuracy: null, not NaN (jq, browsers)."""
    epochs = strict_json(numbers_run[0] / "history.json")["epochs"]
    assert [e["epoch"] for e in epochs] == [1, 2]
    assert all(e["train_accuracy"] is None and e["val_loss"] > 0 and 0 <= e["val_accuracy"] <= 1 for e in epochs)
    assert epochs[1]["train_loss"] < epochs[0]["train_loss"]  # it learns


def test_a_numbers_run_killed_mid_epoch_resumes_to_the_weights_of_an_unbroken_run(numbers_run, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "digitrec", "train", *TINY, "--no-report", "--epochs", "2", "--seed", "1",
           "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (out / "checkpoint.safetensors").exists() and time.time() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)  # at once: epoch 2 (drawing and training 256 lines) takes about a second
    proc.wait()
    assert not (out / "model.safetensors").exists()
    resumed = run_cli("train", "--resume", out, "--no-report")
    assert resumed.returncode == 0, resumed.stderr
    assert "after epoch 1" in resumed.stdout
    ref, got = load_file(str(numbers_run[0] / "model.safetensors")), load_file(str(out / "model.safetensors"))
    assert ref.keys() == got.keys() and all(torch.equal(ref[k], got[k]) for k in ref)
    whole, split = (strict_json(o / "history.json")["epochs"] for o in (numbers_run[0], out))
    assert [e["epoch"] for e in split] == [1, 2]
    figures = ("train_loss", "val_loss", "val_accuracy", "lr")
    assert [[e[k] for k in figures] for e in split] == [[e[k] for k in figures] for e in whole]


@pytest.mark.parametrize("args, fragment", [
    (["--label-smoothing", "0.1"], "--label-smoothing: does not apply to a line model"),
    (["--tta", "rot-zoom"], "--tta: does not apply to a line model"),
    (["--styles", "0.1"], "--styles: does not apply"),
    (["--not-digits", "0.1"], "--not-digits"),
    (["--test-data", "elsewhere.npz"], "--test-data: does not apply"),
    (["--augment", "elastic"], "a line model takes none or stroke"),
    (["--lines", "-1"], "--lines"),
])
def test_settings_a_line_model_cannot_use_are_refused_in_one_line(tmp_path, args, fragment):
    assert_user_error(run_cli("train", *TINY, *args, "--out", tmp_path / "r", in_process=True), fragment)


def test_lines_per_epoch_is_refused_for_a_digit_model(tmp_path):
    result = run_cli("train", "--model", "conv2-fc64", "--lines", "100", "--out", tmp_path / "r", in_process=True)
    assert_user_error(result, "--lines", "only a line model")


def test_fine_tuning_a_line_model_is_refused(tmp_path):
    """--init reads pictures of single digits into a digit model: the line model's file is no start."""
    import digitrec

    numbers = Path(digitrec.__file__).parent / "weights" / "numbers.safetensors"
    result = run_cli("train", "--init", numbers, "--data", tmp_path, "--out", tmp_path / "r", in_process=True)
    assert_user_error(result, "--init", "digits are 1x28x28")


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_the_line_model_trains_on_the_configured_device(mnist_train, tmp_path, monkeypatch, device):
    """--device moves the model and every batch there, and bfloat16 autocast is that device's
    (`--device cuda` on a machine with a GPU; only the CPU where there is none)."""
    from digitrec.training import loop
    from digitrec.training.recipes import recipe_config

    autocast_types = []
    real = torch.autocast

    def recording(device_type, *args, **kwargs):
        autocast_types.append(device_type)
        return real(device_type, *args, **kwargs)

    monkeypatch.setattr(loop.torch, "autocast", recording)
    cfg = recipe_config("numbers", epochs=1, lines=64, batch_size=32, device=device, threads=1, seed=2)
    data = mnist_train.subset(np.arange(300))
    trainer = loop.Trainer(cfg, data.subset(np.arange(200)), data.subset(np.arange(200, 300)), tmp_path,
                           log=lambda _: None, progress=False)
    assert trainer.device.type == device and {p.device.type for p in trainer.model.parameters()} == {device}
    x, _ = trainer.task.inputs(next(iter(trainer.task.batches(1)))[0])
    assert x.device.type == device and x.shape[:3] == (len(x), 1, 32)
    history = trainer.run(checkpoints=False)
    assert autocast_types and set(autocast_types) == {device}
    assert history[0].train_accuracy is None and 0 <= history[0].val_accuracy <= 1


def test_every_epoch_draws_its_own_lines_as_a_function_of_seed_and_epoch(mnist_train):
    """What makes resume exact with nothing in the checkpoint: epoch e of seed s always trains on the same
    lines in the same groups, and other epochs and seeds on others."""
    from digitrec.training.distributed import Dist
    from digitrec.training.lines import LineTask
    from digitrec.training.recipes import recipe_config

    data = mnist_train.subset(np.arange(100))

    def epoch(seed, e):
        task = LineTask(recipe_config("numbers", lines=40, batch_size=8, seed=seed), data, None,
                        torch.device("cpu"), Dist())
        groups = [idx.tolist() for idx, _ in task.batches(e)]
        return groups, [line.tobytes() for line, _ in task.lines]

    a = epoch(3, 2)
    assert a == epoch(3, 2) and a[1] != epoch(3, 3)[1] and a[1] != epoch(4, 2)[1]
    assert len(a[0]) == 5 and sorted(i for g in a[0] for i in g) == list(range(40))
