"""`digitrec ensemble` as a user runs it: members trained or combined, averaging exact, test data as configured."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_user_error, run_cli

from digitrec.inference.backends import load_backend
from digitrec.training.recipes import RECIPES


def test_ensemble_members_can_train_on_every_training_image(tmp_path):
    """--val-size 0: the members learn from the validation images too (settings already chosen)."""
    out = tmp_path / "full"
    result = run_cli("ensemble", "--recipe", "fast", "--n", "2", "--epochs", "1", "--subset", "900",
                     "--val-size", "0", "--threads", "1", "--quiet", "--out", out)
    assert result.returncode == 0, result.stderr
    data = [load_backend(out / f"seed-{s}" / "model.safetensors").metadata["data"] for s in (0, 1)]
    assert [(d["n_train"], d["n_val"]) for d in data] == [(900, 0), (900, 0)]
    assert_user_error(run_cli("ensemble", "--n", "2", "--val-size", "-1", "--out", tmp_path / "bad"), "--val-size")
    assert not (tmp_path / "bad" / "model.safetensors").exists()


def test_ensemble_no_test_leaves_the_test_set_to_a_later_choice(tmp_path):
    out = tmp_path / "blind"
    result = run_cli("ensemble", "--recipe", "fast", "--n", "2", "--epochs", "1", "--subset", "600",
                     "--threads", "1", "--quiet", "--no-test", "--out", out)
    assert result.returncode == 0, result.stderr
    assert "test accuracy" not in result.stdout
    assert "test_accuracy" not in load_backend(out / "model.safetensors").metadata["metrics"]
    members = [load_backend(out / f"seed-{s}" / "model.safetensors").metadata for s in (0, 1)]
    assert [m["metrics"]["test_accuracy"] for m in members] == [None, None]
    assert [m["data"]["n_test"] for m in members] == [0, 0]


def test_ensemble_members_can_take_turns_between_recipes(tmp_path):
    """--recipe fast,classic: members alternate recipes, each recipe counting its own seeds."""
    out = tmp_path / "mixed"
    result = run_cli("ensemble", "--recipe", "fast,classic", "--n", "3", "--epochs", "1", "--subset", "900",
                     "--val-size", "300", "--threads", "1", "--quiet", "--out", out)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == ["classic-seed-0", "fast-seed-0", "fast-seed-1"]
    members = load_backend(out / "model.safetensors").metadata["ensemble"]["members"]
    assert [(m["recipe"], m["seed"]) for m in members] == [("fast", 0), ("classic", 0), ("fast", 1)]
    assert [m["arch"] for m in members] == [RECIPES["fast"]["model"], "conv2-fc64", RECIPES["fast"]["model"]]
    bad = tmp_path / "bad"
    assert_user_error(run_cli("ensemble", "--recipe", "fast,slowest", "--n", "2", "--out", bad), "--recipe")
    assert not bad.exists()


@pytest.fixture(scope="module")
def two_members(tmp_path_factory):
    root = tmp_path_factory.mktemp("ens")
    result = run_cli("ensemble", "--recipe", "fast", "--n", "2", "--epochs", "1", "--subset", "1500",
                     "--threads", "1", "--quiet", "--out", root)
    assert result.returncode == 0, result.stderr
    return root, result


def test_ensemble_trains_members_and_saves_one_model(two_members):
    root, result = two_members
    assert (root / "seed-0" / "model.safetensors").exists() and (root / "seed-1" / "model.safetensors").exists()
    meta = load_backend(root / "model.safetensors").metadata
    assert meta["arch"] == "ensemble" and [m["seed"] for m in meta["ensemble"]["members"]] == [0, 1]
    assert "test accuracy:" in result.stdout


def test_ensemble_probabilities_are_the_members_average(two_members, mnist_test):
    """The networks' own probabilities average exactly; the ensemble then gets a temperature of its own."""
    from digitrec.models.modelfile import load_model
    from digitrec.models.predict import predict_proba

    root, _ = two_members
    images = mnist_test.images[:200]
    members = [predict_proba(load_model(root / f"seed-{s}" / "model.safetensors")[0], images) for s in (0, 1)]
    combined, meta = load_model(root / "model.safetensors")
    np.testing.assert_allclose(predict_proba(combined, images), (members[0] + members[1]) / 2, atol=1e-5)
    assert meta["calibration"]["fitted_on"].startswith("validation: 5000 digits")  # --subset thins training only


def test_combining_files_and_bad_inputs(two_members, tmp_path):
    root, _ = two_members
    files = [root / "seed-0" / "model.safetensors", root / "seed-1" / "model.safetensors"]
    out = tmp_path / "pair.safetensors"
    assert run_cli("ensemble", *files, "--out", out).returncode == 0
    assert load_backend(out).metadata["arch"] == "ensemble"
    assert_user_error(run_cli("ensemble", files[0], "--out", tmp_path / "one.safetensors"), "at least two")
    assert_user_error(run_cli("ensemble", files[0], out, "--out", tmp_path / "x.safetensors"), "already an ensemble")
    assert not (tmp_path / "x.safetensors").exists()


def test_ensemble_tta_wraps_members_without_their_own(two_members, tmp_path, mnist_test):
    root, _ = two_members
    files = [root / "seed-0" / "model.safetensors", root / "seed-1" / "model.safetensors"]
    out = tmp_path / "pair-tta.safetensors"
    assert run_cli("ensemble", *files, "--tta", "rot-zoom", "--out", out).returncode == 0
    meta = load_backend(out).metadata
    assert [m["arch"] for m in meta["arch_kwargs"]["members"]] == ["tta", "tta"]
