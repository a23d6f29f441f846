"""Fine-tuning (`digitrec train --init MODEL --data DIR`): the network from the file, a person's pictures
learnt, MNIST replayed, figures before and after, calibration refitted; every bad input one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import assert_user_error, bad_cases, picture_folder, run_cli
from PIL import Image

from digitrec.models import create_model, with_tta
from digitrec.models.modelfile import load_model, read_metadata, save_model, shipped_model_path
from digitrec.training.finetune import finetune_config, init_weights, training_set

QUICK = ["--epochs", "1", "--min-pictures", "64", "--batch-size", "32", "--threads", "1", "--no-report", "--quiet"]


def small_model(path, classes=10, tta=True, **extra):
    """A small model file (bn-conv3-w16, random weights), in test-time views unless `tta` is False."""
    torch.manual_seed(0)
    model = create_model("bn-conv3-w16", **({"classes": classes} if classes != 10 else {}))
    save_model(with_tta(model, "rot-zoom") if tta else model, path,
               {"data": {"source": "mnist", "n_test": 10_000}, "metrics": {"test_accuracy": 0.5},
                "training": {"not_digits": 0.2} if classes == 11 else {}, **extra})
    return path


@pytest.fixture(scope="module")
def mine(tmp_path_factory, mnist_test):
    """A person's folder: 4 pictures of each digit (64×64, dark on light), plus a blank and a broken one."""
    root = picture_folder(tmp_path_factory.mktemp("mine") / "digits", mnist_test.images, mnist_test.labels, 4)
    Image.new("L", (64, 64), 255).save(root / "3" / "blank.png")
    (root / "8" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    return root


def test_the_network_comes_from_the_model_file(tmp_path):
    shipped = finetune_config("default")
    assert (shipped.model, shipped.tta, shipped.model_kwargs, shipped.init) == \
        ("bn-conv6-w32", "rot-zoom", {"dropout": 0.2, "classes": 11}, "default")
    assert shipped.replay > 0 and shipped.lr < 3e-3 and shipped.not_digits == 0.3  # the shipped model's own share
    eleven = finetune_config(str(small_model(tmp_path / "m11.safetensors", classes=11, tta=False)), epochs=2)
    assert (eleven.model, eleven.tta, eleven.epochs, eleven.not_digits) == ("bn-conv3-w16", "none", 2, 0.2)
    assert eleven.model_arguments()["classes"] == 11
    weights = init_weights(str(tmp_path / "m11.safetensors"))
    last = [k for k in weights if k.endswith(".weight")][-1]
    assert weights[last].shape[0] == 11 and not last.startswith("base.")  # the bare network's own keys


def test_the_training_set_repeats_the_pictures_and_replays_mnist(mnist_test, mnist_train):
    cfg = finetune_config("default", min_pictures=100, replay=0.5)
    mine = mnist_test.subset(np.arange(30), "mine")
    train, info = training_set(cfg, mine, mnist_train)
    # 120 of the person's (4 copies) and 120 MNIST digits are 70%; the shipped model's non-digits the rest
    assert info["copies"] == 4 and info["replayed_mnist"] == 120 and info["non_digits"] == 103
    assert len(train) == 343 and (train.labels == 10).sum() == 103
    assert np.array_equal(train.images[:30], mine.images) and np.array_equal(train.images[30:60], mine.images)


def test_fine_tuning_end_to_end(tmp_path, mine):
    init = small_model(tmp_path / "small.safetensors")
    out = tmp_path / "run"
    result = run_cli("train", "--init", init, "--data", mine, *QUICK, "--out", out, in_process=True)
    assert result.returncode == 0, result.stderr
    assert "before fine-tuning" in result.stdout and "after fine-tuning" in result.stdout
    assert "MNIST test:" in result.stdout and "(before: 50.00%, as the model file records)" in result.stdout
    assert f"digitrec serve --model {out / 'model.safetensors'}" in result.stdout
    skipped = [line for line in result.stderr.splitlines() if line.startswith("digitrec: skipped")]
    assert len(skipped) == 2 and "blank (no ink found)" in " ".join(skipped)
    assert "40 pictures read (digits 0 1 2 3 4 5 6 7 8 9; 2 skipped" in result.stdout
    model, meta = load_model(out / "model.safetensors")
    assert meta["arch"] == "tta" and meta["arch_kwargs"]["base"]["arch"] == "bn-conv3-w16"
    figures, info = meta["finetune"], meta["data"]["finetune"]
    assert figures["n_val"] == 10 and 0 <= figures["val_after"] <= 1 and "mnist_test_after" in figures
    assert info["pictures"] == 30 and info["copies"] == 3 and info["replayed_mnist"] == 270  # 3/4 of the set
    assert info["prototypes"]["strength"] == 2.0 and info["prototypes"]["pictures"] == 30  # the default head
    assert "10 of your held-out pictures and 1000 MNIST validation digits" in meta["calibration"]["fitted_on"]
    before = init_weights(str(init))
    assert any(not torch.equal(before[k], v) for k, v in model.base.state_dict().items())
    assert json.loads((out / "config.json").read_text())["init"] == str(init)


def test_a_model_that_can_say_not_a_digit_keeps_its_eleventh_answer(tmp_path, mine):
    init = small_model(tmp_path / "m11.safetensors", classes=11)
    out = tmp_path / "run"
    result = run_cli("train", "--init", init, "--data", mine, *QUICK, "--no-test", "--out", out, in_process=True)
    assert result.returncode == 0, result.stderr
    model, meta = load_model(out / "model.safetensors")
    assert model.eval()(torch.zeros(1, 1, 28, 28)).shape == (1, 11)
    assert meta["data"]["finetune"]["non_digits"] > 0 and "rejection" in meta
    assert "mnist_test_after" not in meta["finetune"]  # --no-test measures no test set


def test_the_shipped_model_without_mnist_keeps_its_calibration(tmp_path, mine):
    """--init default; no replay and no test: nothing of MNIST is read, and ten held-out pictures are
    too few to fit a temperature on, so the shipped model's calibration is kept."""
    out = tmp_path / "run"
    result = run_cli("train", "--init", "default", "--data", mine, *QUICK, "--min-pictures", "32", "--replay", "0",
                     "--no-test", "--out", out, in_process=True)
    assert result.returncode == 0, result.stderr
    meta, shipped = read_metadata(out / "model.safetensors"), read_metadata(shipped_model_path())
    if "calibration" in shipped:
        assert meta["calibration"]["temperature"] == shipped["calibration"]["temperature"]
        assert meta["calibration"]["kept_from"].endswith("default.safetensors")
    else:
        assert "calibration" not in meta
    assert meta["data"]["finetune"]["replayed_mnist"] == 0 and meta["arch_kwargs"]["base"]["arch"] == "bn-conv6-w32"


def bad_init_not_a_model(tmp_path, mnist_test):
    mine = picture_folder(tmp_path / "mine", mnist_test.images, mnist_test.labels, 3)
    (tmp_path / "notes.txt").write_text("hello")
    return [tmp_path / "notes.txt", mine], [], ["--init", "notes.txt", "not a readable safetensors model file"]


def bad_init_missing(tmp_path, mnist_test):
    mine = picture_folder(tmp_path / "mine", mnist_test.images, mnist_test.labels, 3)
    return [tmp_path / "nope.safetensors", mine], [], ["--init", "nope.safetensors", "model file not found"]


def bad_init_other_input_shape(tmp_path, mnist_test):
    mine = picture_folder(tmp_path / "mine", mnist_test.images, mnist_test.labels, 3)
    init = small_model(tmp_path / "wide.safetensors", input={"shape": [1, 32, 32]})
    return [init, mine], [], ["--init", "wide.safetensors", "reads 1x32x32 inputs"]


def bad_init_ensemble(tmp_path, mnist_test):
    mine = picture_folder(tmp_path / "mine", mnist_test.images, mnist_test.labels, 3)
    members = [{"arch": "bn-conv3-w16"}, {"arch": "bn-conv3-w16"}]
    save_model(create_model("ensemble", members=members), tmp_path / "ens.safetensors")
    return [tmp_path / "ens.safetensors", mine], [], ["--init", "ensemble cannot be fine-tuned"]


def bad_model_beside_init(tmp_path, mnist_test):
    mine = picture_folder(tmp_path / "mine", mnist_test.images, mnist_test.labels, 3)
    return ["default", mine], ["--model", "conv2-fc64"], ["--model", "cannot be combined with --init"]


def bad_one_picture_of_a_digit(tmp_path, mnist_test):
    mine = picture_folder(tmp_path / "mine", mnist_test.images, mnist_test.labels, 3)
    for extra in sorted((mine / "5").iterdir())[1:]:
        extra.unlink()
    return ["default", mine], [], [f"{mine}/5: 1 usable picture of 5", "at least 2"]


def bad_a_word_for_a_digit(tmp_path, mnist_test):
    mine = picture_folder(tmp_path / "mine", mnist_test.images, mnist_test.labels, 3)
    (mine / "7").rename(mine / "seven")
    return ["default", mine], [], ["seven", "holds pictures but is not a digit folder"]


def bad_replay_without_init(tmp_path, mnist_test):
    mine = picture_folder(tmp_path / "mine", mnist_test.images, mnist_test.labels, 3)
    return [None, mine], ["--replay", "0.5"], ["--replay", "goes with --init"]


def bad_empty_folder(tmp_path, mnist_test):
    (tmp_path / "empty").mkdir()
    return ["default", tmp_path / "empty"], [], ["empty", "no class sub-folders named 0-9"]


# each case returns the command line's --init and --data, extra options, and the words its error must hold
BAD_INPUTS = bad_cases(bad_init_not_a_model, bad_init_missing, bad_init_other_input_shape, bad_init_ensemble,
                       bad_model_beside_init, bad_one_picture_of_a_digit, bad_a_word_for_a_digit, bad_empty_folder,
                       bad_replay_without_init)


@pytest.mark.parametrize("bad_input", BAD_INPUTS)
def test_bad_input_is_one_line_and_leaves_nothing(bad_input, tmp_path, mnist_test):
    (init, data), extra, words = bad_input(tmp_path, mnist_test)
    out = tmp_path / "run"
    options = ["--init", init, *QUICK] if init is not None else ["--epochs", "1"]
    result = run_cli("train", *options, "--data", data, *extra, "--out", out, in_process=True)
    assert_user_error(result, *words)
    assert not out.exists()


def test_a_train_and_test_layout_measures_its_own_test_pictures(tmp_path, mnist_test):
    """DIR/train and DIR/test: the run learns from train/ and measures test/ too; train/ alone is fine."""
    init = small_model(tmp_path / "small.safetensors")
    picture_folder(tmp_path / "d" / "train", mnist_test.images, mnist_test.labels, 3)
    result = run_cli("train", "--init", init, "--data", tmp_path / "d", *QUICK, "--no-test", "--out",
                     tmp_path / "r1", in_process=True)
    assert result.returncode == 0, result.stderr
    assert "test accuracy" not in result.stdout
    picture_folder(tmp_path / "d" / "test", mnist_test.images[500:], mnist_test.labels[500:], 2)
    result = run_cli("train", "--init", init, "--data", tmp_path / "d", *QUICK, "--out", tmp_path / "r2",
                     in_process=True)
    assert result.returncode == 0, result.stderr
    assert f"{tmp_path / 'd' / 'test'}: 20 pictures read" in result.stdout and "test accuracy: " in result.stdout
