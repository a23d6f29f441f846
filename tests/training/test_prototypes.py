"""The nearest-prototype head (`train --init … --prototypes STRENGTH`): a writer's own pictures pull its
digits' answers towards them, inside an ordinary model file that saves, loads and reads as before."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from helpers import assert_user_error, picture_folder, run_cli

from digitrec.errors import DigitrecError
from digitrec.models import create_model
from digitrec.models.modelfile import load_model, save_model, shipped_model_path
from digitrec.models.predict import predict_proba
from digitrec.training.metrics import digit_answers
from digitrec.training.prototypes import fold_prototypes


@pytest.fixture(scope="module")
def mirrored(mnist_test):
    """A made-up writer who writes every digit mirrored: 12 pictures a digit given, 40 a digit to read."""
    images, labels = mnist_test.images[:, :, ::-1].copy(), mnist_test.labels
    given = np.concatenate([np.flatnonzero(labels == d)[:12] for d in range(10)])
    rest = np.concatenate([np.flatnonzero(labels == d)[12:52] for d in range(10)])
    return images[given], labels[given], images[rest], labels[rest]


def read_right(model, images, labels) -> float:
    return float((digit_answers(predict_proba(model, images)) == labels).mean())


def test_the_head_reads_a_new_writer_better_and_keeps_not_a_digit(mirrored):
    shipped, _ = load_model(shipped_model_path())
    given, given_labels, rest, rest_labels = mirrored
    before = read_right(shipped, rest, rest_labels)
    model = copy.deepcopy(shipped)
    info = fold_prototypes(model, given, given_labels, 2.0)
    assert info["digits"] == list(range(10)) and info["pictures"] == 120 and info["spread"] > 0
    after = read_right(model, rest, rest_labels)
    assert after > before + 0.05, (before, after)  # 400 of the writer's digits it was not given
    old, new = shipped.base[-1], model.base[-1]
    assert torch.equal(old.weight[10], new.weight[10]) and old.bias[10] == new.bias[10]  # "not a digit" as it was


def test_strength_zero_or_one_digit_changes_nothing(mirrored):
    given, labels = mirrored[:2]
    model = create_model("bn-conv3-w16", classes=11)
    before = copy.deepcopy(model.state_dict())
    assert fold_prototypes(model, given, labels, 0.0)["strength"] == 0.0
    assert fold_prototypes(model, given[labels == 3], labels[labels == 3], 2.0)["strength"] == 0.0
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_the_folded_model_saves_loads_and_reads_the_same(tmp_path, mirrored):
    given, labels, rest, _ = mirrored
    torch.manual_seed(0)
    model = create_model("bn-conv3-w16", classes=11)
    fold_prototypes(model, given, labels, 1.0)
    save_model(model, tmp_path / "m.safetensors", {})
    loaded, _ = load_model(tmp_path / "m.safetensors")
    assert np.allclose(predict_proba(model, rest[:50]), predict_proba(loaded, rest[:50]), atol=1e-6)


def test_a_network_without_a_linear_classifier_is_refused(mirrored):
    with pytest.raises(DigitrecError, match="does not end in a linear classifier"):
        fold_prototypes(create_model("line-ctc"), mirrored[0], mirrored[1], 1.0)


@pytest.mark.parametrize("args, words", [
    (["--init", "default", "--prototypes", "-1"], ["prototypes", "must be 0 (off) or more"]),
    (["--prototypes", "1"], ["prototypes", "goes with --init"]),
])
def test_bad_strengths_are_one_line_errors(tmp_path, args, words):
    assert_user_error(run_cli("train", *args, "--out", tmp_path / "run", in_process=True), *words)


@pytest.mark.slow
def test_fine_tuning_on_a_made_up_writer_reads_the_rest_of_its_digits_better(tmp_path, mirrored):
    """`train --init default` on 15 mirrored pictures a digit (the default settings, prototype head included,
    shortened to one epoch): the writer's digits it was not given are read better, and the file loads."""
    given, labels, rest, rest_labels = mirrored
    folder = picture_folder(tmp_path / "mine", given, labels, 12)
    out = tmp_path / "run"
    result = run_cli("train", "--init", "default", "--data", folder, "--epochs", "1", "--min-pictures", "300",
                     "--no-test", "--threads", "1", "--quiet", "--no-report", "--out", out, in_process=True)
    assert result.returncode == 0, result.stderr
    shipped, _ = load_model(shipped_model_path())
    tuned, meta = load_model(out / "model.safetensors")
    assert meta["data"]["finetune"]["prototypes"]["strength"] > 0
    assert read_right(tuned, rest, rest_labels) > read_right(shipped, rest, rest_labels) + 0.2
