"""Training end to end through the CLI: files, determinism, resume after SIGKILL, evaluate."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from helpers import QUICK_TRAIN, assert_user_error, run_cli
from safetensors.torch import load_file

QUICK = QUICK_TRAIN  # the settings of the quick_run fixture


def _weights(path):
    return load_file(str(path))


def test_training_writes_model_history_and_checkpoint(quick_run):
    out, result = quick_run
    assert {"model.safetensors", "checkpoint.safetensors", "history.csv", "history.json", "config.json"} <= {
        p.name for p in out.iterdir()}
    history = json.loads((out / "history.json").read_text())
    assert [e["epoch"] for e in history["epochs"]] == [1, 2]
    assert history["total_train_seconds"] > 0 and all(e["seconds"] > 0 for e in history["epochs"])
    assert (out / "history.csv").read_text().splitlines()[0].startswith("epoch,train_loss,train_accuracy")
    assert "epoch  2/2" in result.stdout and "test accuracy: 0." in result.stdout
    assert history["epochs"][-1]["val_accuracy"] > 0.85


def test_same_seed_gives_identical_weights(quick_run, tmp_path):
    out, _ = quick_run
    again = run_cli("train", *QUICK, "--epochs", "2", "--seed", "7", "--out", tmp_path / "b")
    assert again.returncode == 0, again.stderr
    a, b = _weights(out / "model.safetensors"), _weights(tmp_path / "b" / "model.safetensors")
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_the_seed_chooses_the_first_weights(mnist_train, tmp_path):
    """Before any step: the same seed gives the same initial weights, another seed others."""
    from digitrec.training.loop import Trainer
    from digitrec.training.recipes import recipe_config

    small = mnist_train.subset(np.arange(256))

    def initial(seed: int) -> dict:
        cfg = recipe_config(None, model="conv2-fc64", seed=seed, threads=1, val_size=0)
        return {k: v.clone() for k, v in Trainer(cfg, small, None, tmp_path / f"s{seed}").model.state_dict().items()}

    a, again, other = initial(7), initial(7), initial(8)
    assert all(torch.equal(a[k], again[k]) for k in a)
    assert not any(torch.equal(a[k], other[k]) for k in a if a[k].dtype.is_floating_point)


def test_resume_after_sigkill_mid_epoch_finishes_with_the_same_weights(quick_run, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "digitrec", "train", *QUICK, "--epochs", "2", "--seed", "7", "--out", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    deadline = time.time() + 120
    while not (out / "checkpoint.safetensors").exists() and time.time() < deadline:
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)  # at once: epoch 2 of 1,500 images takes a fraction of a second
    proc.wait()
    assert not (out / "model.safetensors").exists()
    stale = out / ".checkpoint.safetensors.k1ll3d.tmp"  # what a kill during a checkpoint write leaves
    stale.write_bytes(b"half a checkpoint")
    resumed = run_cli("train", "--resume", out)
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming" in resumed.stdout and "after epoch 1" in resumed.stdout
    ref, got = _weights(quick_run[0] / "model.safetensors"), _weights(out / "model.safetensors")
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    assert [e["epoch"] for e in json.loads((out / "history.json").read_text())["epochs"]] == [1, 2]
    assert not [p for p in out.iterdir() if p.name.endswith(".tmp")]


def test_resume_repeats_the_random_augmentation_of_an_unbroken_run(tmp_path):
    args = [*QUICK, "--subset", "1000", "--augment", "affine", "--epochs", "2", "--seed", "3"]
    assert run_cli("train", *args, "--out", tmp_path / "whole").returncode == 0
    first = run_cli("train", *args, "--epochs", "1", "--out", tmp_path / "split")
    assert first.returncode == 0, first.stderr
    resumed = run_cli("train", "--resume", tmp_path / "split", "--epochs", "2")
    assert resumed.returncode == 0, resumed.stderr
    ref, got = _weights(tmp_path / "whole" / "model.safetensors"), _weights(tmp_path / "split" / "model.safetensors")
    assert all(torch.equal(ref[k], got[k]) for k in ref)


def test_refuses_to_overwrite_a_run(quick_run):
    assert_user_error(run_cli("train", *QUICK, "--epochs", "1", "--out", quick_run[0]), "already holds a run")


def test_resume_of_a_folder_that_is_no_run(tmp_path):
    assert_user_error(run_cli("train", "--resume", tmp_path), "config.json", "not found")


def test_resume_with_optimizer_state_of_another_layout_is_a_one_line_error(quick_run, tmp_path):
    """A checkpoint whose optimizer saw each tensor apart (a distributed run, or digitrec before the
    flat optimizer) cannot continue a single-process run; say so instead of a traceback."""
    from digitrec.models import create_model
    from digitrec.models.modelfile import load_checkpoint, save_checkpoint

    run = tmp_path / "run"
    shutil.copytree(quick_run[0], run)
    (run / "model.safetensors").unlink()
    states, info = load_checkpoint(run / "checkpoint.safetensors")
    model = create_model("conv2-fc64")
    per_tensor = torch.optim.Adam(model.parameters())
    model(torch.rand(2, 1, 28, 28)).sum().backward()
    per_tensor.step()
    states["optimizer"] = per_tensor.state_dict()
    info["epoch"] = 1
    save_checkpoint(run / "checkpoint.safetensors", states, info)
    assert_user_error(run_cli("train", "--resume", run), "checkpoint.safetensors", "optimizer state does not fit")




@pytest.mark.parametrize("args, fragment", [
    (["--model", "nope"], "unknown model 'nope'"),
    (["--epochs", "0"], "--epochs"),
    (["--device", "tpu"], "--device"),
    (["--augment", "flip"], "--augment"),
    (["--no-test", "--test-data", "elsewhere.npz"], "--test-data"),
])
def test_bad_options_are_one_line_errors(tmp_path, args, fragment):
    assert_user_error(run_cli("train", *QUICK, *args, "--out", tmp_path / "r"), fragment)


# --- the loop's arithmetic: schedule, label smoothing, EMA ---


def cfg_for(**kwargs):
    from digitrec.training.recipes import recipe_config

    return recipe_config(None, **{"model": "conv2-fc64", "threads": 1, "val_size": 0, **kwargs})


def test_learning_rate_schedules():
    from digitrec.training.loop import lr_factor

    assert [lr_factor(cfg_for(), s, 100) for s in (0, 50, 99)] == [1.0, 1.0, 1.0]
    linear = cfg_for(schedule="linear", warmup=0.1)
    assert lr_factor(linear, 0, 100) == pytest.approx(0.1) and lr_factor(linear, 9, 100) == pytest.approx(1.0)
    assert lr_factor(linear, 10, 100) == pytest.approx(1.0) and lr_factor(linear, 55, 100) == pytest.approx(0.5)
    assert lr_factor(cfg_for(schedule="linear"), 75, 100) == pytest.approx(0.25)
    cosine = cfg_for(schedule="onecycle", warmup=0.2)
    assert lr_factor(cosine, 4, 100) == pytest.approx(0.25)  # warm-up: 5 of 20 steps
    assert lr_factor(cosine, 20, 100) == pytest.approx(1.0) and lr_factor(cosine, 60, 100) == pytest.approx(0.5)
    assert lr_factor(cosine, 100, 100) == pytest.approx(0.0, abs=1e-12)
    tiny = cfg_for(schedule="linear", warmup=0.01)  # 0.5 of a step: warm-up still takes one whole step
    assert lr_factor(tiny, 0, 50) == pytest.approx(1.0) and lr_factor(tiny, 1, 50) == pytest.approx(1 - 0 / 49)
    assert lr_factor(tiny, 25, 50) == pytest.approx(1 - 24 / 49)


def test_the_loss_is_label_smoothed_as_configured(mnist_train, tmp_path):
    from digitrec.models.predict import to_input
    from digitrec.training.loop import Trainer

    small = mnist_train.subset(np.arange(128))
    for smoothing in (0.0, 0.2):
        trainer = Trainer(cfg_for(label_smoothing=smoothing, seed=3), small, None, tmp_path / f"s{smoothing}")
        idx = torch.arange(64)
        with torch.no_grad():
            trainer.model.train()
            torch.manual_seed(11)
            logits = trainer.model(to_input(trainer.task.images[idx]))
        expected = torch.nn.functional.cross_entropy(logits, trainer.task.labels[idx], label_smoothing=smoothing)
        torch.manual_seed(11)
        loss, _ = trainer._step(idx, lr=0.0)
        assert loss.item() == pytest.approx(expected.item(), rel=1e-5), smoothing


def test_ema_averages_the_weights_and_is_what_the_run_saves(mnist_train, tmp_path):
    from digitrec.training.loop import Trainer, WeightEMA

    model = torch.nn.Linear(3, 2)
    ema = WeightEMA(model, 0.9)
    start = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        model.weight.add_(1.0)
    ema.update(model)
    torch.testing.assert_close(ema.shadow["weight"], start["weight"] + 0.1)  # 0.9 old + 0.1 new
    torch.testing.assert_close(ema.shadow["bias"], start["bias"])

    small = mnist_train.subset(np.arange(256))
    trainer = Trainer(cfg_for(ema=0.5, epochs=1, batch_size=64), small, None, tmp_path / "ema")
    trainer.run(checkpoints=False)
    saved = trainer.final_model().state_dict()
    assert all(torch.equal(saved[k].cpu(), trainer.ema.shadow[k].cpu()) for k in saved)
    assert not all(torch.equal(saved[k].cpu(), v.cpu()) for k, v in trainer.model.state_dict().items())


def test_make_optimizer_builds_what_the_config_names():
    from digitrec.training.loop import make_optimizer
    from digitrec.training.native import optim

    params = [torch.nn.Parameter(torch.zeros(3))]
    sgd = make_optimizer(cfg_for(optimizer="sgd", lr=0.3, weight_decay=5e-4), params)
    assert isinstance(sgd, optim.SGD)
    assert {k: sgd.defaults[k] for k in ("lr", "momentum", "nesterov", "weight_decay")} == {
        "lr": 0.3, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}
    adamw = make_optimizer(cfg_for(optimizer="adamw", lr=3e-3, weight_decay=5e-4), params)
    assert type(adamw) is optim.AdamW and (adamw.defaults["lr"], adamw.defaults["weight_decay"]) == (3e-3, 5e-4)
    adam = make_optimizer(cfg_for(optimizer="adam", lr=1e-3, weight_decay=1e-4), params)
    assert type(adam) is optim.Adam and (adam.defaults["lr"], adam.defaults["weight_decay"]) == (1e-3, 1e-4)


def test_epoch_order_is_a_fixed_function_of_seed_and_epoch():
    from digitrec.training.digits import epoch_permutation

    a = epoch_permutation(3, 2, 1000)
    torch.manual_seed(123)  # the global generator plays no part
    assert torch.equal(a, epoch_permutation(3, 2, 1000)) and sorted(a.tolist()) == list(range(1000))
    assert not torch.equal(a, epoch_permutation(3, 3, 1000)) and not torch.equal(a, epoch_permutation(4, 2, 1000))
    # seeded with seed × 100003 + epoch: resumed runs on any machine must repeat exactly this order
    expected = torch.randperm(10, generator=torch.Generator().manual_seed(2 * 100_003 + 7))
    assert epoch_permutation(2, 7, 10).tolist() == expected.tolist()


def test_an_epoch_in_process_validates_checkpoints_and_resumes_exactly(mnist_train, tmp_path):
    """One epoch, a checkpoint, a fresh Trainer resumed from it: the second epoch ends with the same
    weights, optimizer, EMA and history as two epochs without a break."""
    from digitrec.training.loop import Trainer

    data = mnist_train.subset(np.arange(1200))
    train, val = data.subset(np.arange(1000)), data.subset(np.arange(1000, 1200))
    cfg = cfg_for(epochs=2, batch_size=100, ema=0.9, augment="affine", schedule="linear", seed=5)
    whole = Trainer(cfg, train, val, tmp_path / "whole", progress=False, log=lambda _: None)
    history = whole.run()
    assert [h.epoch for h in history] == [1, 2] and all(0.3 < h.val_accuracy <= 1 for h in history)
    probs = predict_proba_of(whole.final_model(tta=False), val)
    assert history[-1].val_accuracy == pytest.approx((probs.argmax(1) == val.labels).mean())
    assert history[1].lr == pytest.approx(cfg.lr * 1 / 20)  # the last step's linear factor

    def interrupt(stats):  # after epoch 1's checkpoint, as a Ctrl-C would
        raise KeyboardInterrupt

    first = Trainer(cfg, train, val, tmp_path / "broken", progress=False, log=lambda _: None)
    with pytest.raises(KeyboardInterrupt):
        first.run(on_epoch_end=interrupt)
    again = Trainer(cfg, train, val, tmp_path / "broken", progress=False, log=lambda _: None)
    again.resume()
    assert again.start_epoch == 2 and [h.epoch for h in again.history] == [1]
    again.run()
    for a, b in ((whole.model.state_dict(), again.model.state_dict()), (whole.ema.shadow, again.ema.shadow)):
        assert all(torch.equal(a[k], b[k]) for k in a)
    assert [h.train_loss for h in again.history] == [h.train_loss for h in history]
    assert json.loads((tmp_path / "broken" / "history.json").read_text())["epochs"][-1]["epoch"] == 2


def predict_proba_of(model, dataset):
    from digitrec.models.predict import predict_proba

    return predict_proba(model, dataset.images)


def test_a_run_without_validation_reports_none(tmp_path):
    """No validation pictures: the figures are None, and history.json says null (JSON has no NaN)."""
    from digitrec.training.loop import Trainer

    images = np.zeros((64, 28, 28), np.uint8)
    from digitrec.data import Dataset

    trainer = Trainer(cfg_for(epochs=1, batch_size=32), Dataset(images, np.arange(64) % 10, "z"), None, tmp_path,
                      log=lambda _: None, progress=False)
    assert trainer.validate() == (None, None)
    trainer.run()
    epoch = strict_json(tmp_path / "history.json")["epochs"][0]
    assert epoch["val_loss"] is None and epoch["val_accuracy"] is None and 0 <= epoch["train_accuracy"] <= 1


def strict_json(path):
    """The JSON document in `path`, read as a browser or jq would: NaN and Infinity are errors."""
    def refuse(name):
        raise ValueError(f"{path}: {name} is not JSON")

    return json.loads(path.read_text(), parse_constant=refuse)


@pytest.mark.parametrize("freeze", [False, True])
def test_freeze_bn_keeps_batchnorm_statistics_and_still_trains(mnist_train, tmp_path, freeze):
    """freeze_bn (fine-tuning): BatchNorm normalises with its running statistics, which stay as they
    were; the weights, BatchNorm's scale and shift included, still learn."""
    from digitrec.training.config import TrainConfig
    from digitrec.training.loop import Trainer

    cfg = TrainConfig(model="bn-conv3-w16", epochs=1, batch_size=64, lr=0.01, val_size=0, threads=1,
                      freeze_bn=freeze)
    trainer = Trainer(cfg, mnist_train.subset(np.arange(256)), None, tmp_path, log=lambda _: None, progress=False)
    start = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.run(checkpoints=False)
    after = trainer.model.state_dict()
    stats = [k for k in start if k.endswith(("running_mean", "running_var"))]
    scales = [k for k in start if k.endswith(".weight") and k.replace("weight", "running_mean") in start]
    assert stats and all(torch.equal(start[k], after[k]) == freeze for k in stats)
    assert any(not torch.equal(start[k], after[k]) for k in scales)
