"""Recipes and ensembles as a user runs them: settings recorded, overrides honoured, averaging exact."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from helpers import assert_user_error, run_cli

from digitrec.inference.backends import load_backend
from digitrec.models import list_models, reads
from digitrec.training.recipes import RECIPES, recipe_config

QUICK = ["--subset", "1500", "--val-size", "500", "--threads", "1", "--quiet"]


# every recipe but the line reader's (a recipe naming an unknown model stays in, and fails below)
DIGIT_RECIPES = sorted(n for n in RECIPES if RECIPES[n]["model"] not in list_models("line"))


def test_the_numbers_recipe_trains_the_line_reader():
    assert reads(RECIPES["numbers"]["model"]) == "line" and recipe_config("numbers").validate() is None


@pytest.mark.parametrize("name", DIGIT_RECIPES)
def test_every_recipe_names_a_registered_model_and_valid_settings(name):
    """Each recipe's network is built, with its own arguments, and learns from one batch."""
    from digitrec.models import create_model, with_tta

    cfg = recipe_config(name)
    cfg.validate()
    assert cfg.recipe == name and cfg.model == RECIPES[name]["model"]
    torch.manual_seed(0)
    model = create_model(cfg.model, **cfg.model_kwargs)
    assert model.arch_kwargs == RECIPES[name].get("model_kwargs", {})
    x, y = torch.rand(8, 1, 28, 28), torch.arange(8)
    loss = torch.nn.functional.cross_entropy(model.train()(x), y)
    loss.backward()
    assert loss.isfinite() and any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.parameters())
    assert with_tta(model, cfg.tta).eval()(x).shape == (8, 10)


def test_command_line_options_override_the_recipe(tmp_path):
    out = tmp_path / "fast"
    result = run_cli("train", "--recipe", "fast", "--epochs", "1", "--lr", "0.02", *QUICK, "--no-report",
                     "--out", out)
    assert result.returncode == 0, result.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["recipe"] == "fast" and config["model"] == RECIPES["fast"]["model"]
    assert config["lr"] == 0.02 and config["bf16"] is True
    meta = load_backend(out / "model.safetensors").metadata
    assert meta["training"]["recipe"] == "fast"
    assert meta["metrics"]["test_accuracy"] > 0.15  # above chance after 6 steps








def test_unknown_recipe_is_a_one_line_error(tmp_path):
    assert_user_error(run_cli("train", "--recipe", "slowest", "--out", tmp_path / "r"), "--recipe")














def test_training_with_tta_saves_a_model_that_reads_through_its_views(tmp_path, mnist_test):
    out = tmp_path / "tta"
    result = run_cli("train", "--recipe", "fast", "--tta", "rot-zoom", *QUICK, "--no-report", "--out", out)
    assert result.returncode == 0, result.stderr
    backend = load_backend(out / "model.safetensors", device="cpu")
    meta = backend.metadata
    assert meta["arch"] == "tta" and meta["arch_kwargs"]["base"]["arch"] == RECIPES["fast"]["model"]
    assert 0 < meta["metrics"]["val_accuracy"] <= 1 and 0 < meta["metrics"]["val_accuracy_bare"] <= 1
    probs = backend.probabilities(mnist_test.images[:100])
    np.testing.assert_allclose(probs.sum(1), 1, atol=1e-5)
    assert_user_error(run_cli("train", "--recipe", "fast", "--tta", "spin", "--out", tmp_path / "x"), "--tta")


def test_training_with_non_digits_gives_a_calibrated_model_that_can_say_not_a_digit(tmp_path, mnist_test):
    """--not-digits adds the answer "not a digit"; the run fits its temperature and threshold on validation."""
    from digitrec import Recognizer

    out = tmp_path / "nd"
    result = run_cli("train", "--recipe", "fast", "--subset", "4000", "--val-size", "800", "--epochs", "2",
                     "--not-digits", "0.25", "--styles", "0.05", "--threads", "1", "--quiet", "--no-report",
                     "--out", out)
    assert result.returncode == 0, result.stderr
    r = Recognizer.load(out / "model.safetensors", device="cpu")
    meta = r.metadata
    assert meta["arch_kwargs"]["classes"] == 11 and meta["data"]["synthetic"]["non_digits"] > 1000
    assert 0.05 < meta["calibration"]["temperature"] < 5 and meta["rejection"]["not_digit_threshold"] >= 0.5
    assert meta["calibration"]["nll_after"] <= meta["calibration"]["nll_before"]
    assert r.probabilities(mnist_test.images[:5]).shape == (5, 11)
    answer = r.predict(mnist_test.images[0]).to_dict()
    assert {"not_digit", "not_digit_probability"} <= set(answer) and len(answer["probabilities"]) == 10
    text = run_cli("evaluate", out / "model.safetensors", "--threads", "1", in_process=True).stdout
    assert "answered 'not a digit':" in text and "calibrated (temperature" in text
    assert "expected calibration error" in text and "answer only above" in text


def test_an_unknown_recipe_names_the_recipes_there_are():
    from digitrec.errors import DigitrecError
    from digitrec.training.recipes import check_recipe

    with pytest.raises(DigitrecError) as caught:
        check_recipe("fastest")
    assert caught.value.field == "recipe"
    assert caught.value.message == f"unknown recipe 'fastest'; choose from {', '.join(sorted(RECIPES))}"
