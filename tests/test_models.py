"""Every registered model is tested (shape, gradient, summary) without anyone adding a test."""

from __future__ import annotations

import pytest
import torch

from digitrec.errors import DigitrecError
from digitrec.models import count_parameters, create_model, list_models, summary

from helpers import assert_user_error, run_cli

STARTING = {"conv2-fc64": 121_930, "conv1-fc128": 607_394, "conv1-fc64x2": 2_774_410, "conv2-fc128": 225_034}


@pytest.mark.parametrize("name, params", sorted(STARTING.items()))
def test_starting_architectures_have_their_exact_parameter_counts(name, params):
    assert count_parameters(create_model(name)) == params


@pytest.mark.parametrize("name", list_models())
def test_every_model_maps_images_to_ten_logits_and_learns(name):
    torch.manual_seed(0)
    model = create_model(name)
    x = torch.rand(4, 1, 28, 28)
    out = model(x)
    assert out.shape == (4, 10)
    torch.nn.functional.cross_entropy(out, torch.arange(4)).backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("name", list_models())
def test_summary_totals_the_parameters(name):
    table = summary(create_model(name))
    assert f"Total params: {count_parameters(create_model(name)):,}" in table


def test_unknown_model_name():
    with pytest.raises(DigitrecError, match="unknown model 'resnet-9000'"):
        create_model("resnet-9000")


def test_models_and_summary_commands():
    listing = run_cli("models")
    assert listing.returncode == 0
    for name, params in STARTING.items():
        assert any(line.split()[:2] == [name, f"{params:,}"] for line in listing.stdout.splitlines())
    table = run_cli("summary", "conv2-fc64")
    assert table.returncode == 0 and "(None, 64, 5, 5)" in table.stdout and "Total params: 121,930" in table.stdout
    assert_user_error(run_cli("summary", "nope"), "unknown model 'nope'")
