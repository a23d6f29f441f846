"""Every registered model is tested (shape, gradient, summary) without anyone adding a test."""

from __future__ import annotations

import pytest
import torch
from helpers import assert_user_error, run_cli

from digitrec.errors import DigitrecError
from digitrec.models import count_parameters, create_model, list_models, summary

STARTING = {"conv2-fc64": 121_930, "conv1-fc128": 607_394, "conv1-fc64x2": 2_774_410, "conv2-fc128": 225_034}


@pytest.mark.parametrize("name, params", sorted(STARTING.items()))
def test_starting_architectures_have_their_exact_parameter_counts(name, params):
    assert count_parameters(create_model(name)) == params


@pytest.mark.parametrize("name", list_models("digit"))
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


def test_every_line_reader_maps_a_line_to_frames_of_digit_and_blank_scores_and_learns():
    """A line 32 pixels tall and W wide gives W/4 frames of 11 scores (ten digits, CTC's blank)."""
    assert list_models("line") == ["line-ctc"] and "line-ctc" not in list_models("digit")
    torch.manual_seed(0)
    model = create_model("line-ctc")
    out = model(torch.rand(2, 1, 32, 96))
    assert out.shape == (2, 24, 11)
    logp = out.log_softmax(2).transpose(0, 1)
    loss = torch.nn.functional.ctc_loss(logp, torch.tensor([[2, 0], [7, 7]]), torch.tensor([24, 24]),
                                        torch.tensor([2, 2]), blank=10)
    loss.backward()
    assert loss.isfinite() and all(p.grad is not None for p in model.parameters())


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


def test_test_time_augmentation_averages_the_views_it_names():
    """A 90° view must equal the base model on torch.rot90 of the digit: an independent check of
    the view geometry; the identity view must be the base model itself."""
    torch.manual_seed(0)
    base = create_model("bn-conv3-w16").eval()
    x = torch.rand(3, 1, 28, 28)
    p = lambda logits: torch.softmax(logits, 1)  # noqa: E731
    with torch.no_grad():
        identity = create_model("tta", base={"arch": "bn-conv3-w16"}, views=[(0.0, 1.0)]).eval()
        identity.base.load_state_dict(base.state_dict())
        torch.testing.assert_close(p(identity(x)), p(base(x)), atol=1e-6, rtol=0)
        turned = create_model("tta", base={"arch": "bn-conv3-w16"}, views=[(90.0, 1.0), (0.0, 1.0)]).eval()
        turned.base.load_state_dict(base.state_dict())
        both = [(p(base(torch.rot90(x, k, (2, 3)))) + p(base(x))) / 2 for k in (1, -1)]
        assert any(torch.allclose(p(turned(x)), b, atol=1e-5) for b in both)


def test_unknown_tta_view_set_is_an_error_about_the_tta_field():
    with pytest.raises(DigitrecError, match="unknown view set 'spin'") as caught:
        create_model("tta", base={"arch": "conv2-fc64"}, views="spin")
    assert caught.value.field == "tta"


@pytest.mark.parametrize("name", sorted(STARTING))
def test_cropping_unused_pixels_changes_nothing(name):
    """The starting models skip input pixels that cannot reach their output; the outputs must be
    those of the full computation (to float rounding)."""
    torch.manual_seed(0)
    model = create_model(name).eval()
    x = torch.rand(4, 1, 28, 28)
    with torch.no_grad():
        cropped = model(x)
        used, model[0].used = model[0].used, 0
        full = model(x)
    torch.testing.assert_close(cropped, full, rtol=1e-6, atol=1e-6)
    assert used in (0, 26) and (used == 26) == name.startswith("conv2")


def test_centre_crop_reads_only_the_middle_of_the_picture():
    """The fast recipe's model reads the central 24×24 pixels: ink outside them changes nothing,
    ink inside does."""
    torch.manual_seed(0)
    model = create_model("bn-conv3-w16", crop=24).eval()
    x = torch.rand(2, 1, 28, 28)
    border, centre = x.clone(), x.clone()
    border[..., :2, :] = 1.0
    border[..., :, -2:] = 1.0
    centre[..., 2, 2] += 1.0
    with torch.no_grad():
        assert torch.equal(model(border), model(x))
        assert not torch.equal(model(centre), model(x))


def test_dropout_drops_its_share_keeps_the_mean_and_the_memory_layout():
    from digitrec.models import Dropout

    torch.manual_seed(0)
    x = torch.ones(64, 32, 14, 14).contiguous(memory_format=torch.channels_last)
    drop = Dropout(0.2).train()
    y = drop(x)
    assert abs((y == 0).float().mean().item() - 0.2) < 0.005
    assert abs(y.mean().item() - 1.0) < 0.01
    assert y.is_contiguous(memory_format=torch.channels_last)
    assert not torch.equal(drop(x), y)  # a fresh mask each call
    assert drop(torch.ones(5, 3)).shape == (5, 3)  # sizes that are no multiple of four
    assert torch.equal(drop.eval()(x), x)


def test_fast_model_stem_choice_and_unknown_stem():
    """stem='stride2' replaces the first convolution + max-pooling by one stride-2 convolution:
    the same output shape, one layer fewer; anything else is a one-line error."""
    x = torch.rand(2, 1, 28, 28)
    pooled, strided = create_model("bn-conv3-w16", crop=20), create_model("bn-conv3-w16", crop=20, stem="stride2")
    assert pooled(x).shape == strided(x).shape == (2, 10)
    assert len(strided) == len(pooled) - 1 and strided[1].stride == (2, 2)
    with pytest.raises(DigitrecError, match="stem"):
        create_model("bn-conv3-w16", stem="fancy")


def test_fixed_stem_trains_everything_but_the_first_block():
    """fixed_stem=True (the fast recipe): the stem keeps its initial weights, the rest learns."""
    torch.manual_seed(0)
    model = create_model("bn-conv3-w16", crop=20, deskew=True, stem="stride2", fixed_stem=True)
    stem = [p for layer in list(model)[2:4] for p in layer.parameters()]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    x, y = torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,))
    torch.nn.functional.cross_entropy(model(x), y).backward()
    opt.step()
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert len(stem) == 3 and not any(p.requires_grad for p in stem)  # conv weight, BatchNorm scale and shift
    assert changed == {n for n, p in model.named_parameters() if p.requires_grad} and changed


def test_registry_refuses_a_second_network_under_a_taken_name():
    from digitrec.models.registry import register_model

    taken = list_models()[0]
    with pytest.raises(ValueError, match=f"{taken!r} is registered twice"):
        register_model(taken, "an impostor")(lambda: torch.nn.Identity())
    assert create_model(taken).arch == taken  # the first one still answers to the name
