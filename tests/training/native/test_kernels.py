"""The native training kernels (kernels.c): the same function and gradients as PyTorch's layers,
training the model's own parameters, and an ordinary PyTorch run where they cannot be built."""

from __future__ import annotations

import copy
import os
import subprocess
import sys

import pytest
import torch
import torch.nn.functional as F

from digitrec.models import create_model
from digitrec.training.native import kernels

pytestmark = pytest.mark.skipif(kernels.unavailable() is not None, reason=f"{kernels.unavailable()}")

FAST_MODEL = ("bn-conv3-w16", {"crop": 20, "deskew": True, "stem": "stride2"})


def forward_backward(model, net, x, y, bf16=False):
    model.train()
    model.zero_grad()
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        out = net(x)
    F.cross_entropy(out.float(), y).backward()
    return out.float().detach(), {n: p.grad.clone() for n, p in model.named_parameters()}


@pytest.mark.parametrize("arch, kwargs, fused", [
    ("conv2-fc64", {}, (kernels.FusedConvPoolReLU, kernels.FusedConvPool)),  # the classic recipe's network
    ("conv1-fc128", {}, (kernels.FusedConvPoolReLU,)),  # 28 channels: not a whole number of vectors
    (*FAST_MODEL, (kernels.FusedStem, kernels.MaxPool2x2)),  # the fast recipe's network
])
def test_training_view_computes_the_same_outputs_gradients_and_statistics(arch, kwargs, fused):
    torch.manual_seed(0)
    model = create_model(arch, **kwargs)
    twin = copy.deepcopy(model)
    view = kernels.training_view(twin)
    assert {type(m) for m in view} >= set(fused)
    x, y = torch.rand(64, 1, 28, 28), torch.randint(0, 10, (64,))
    out, grads = forward_backward(model, model, x, y)
    out_v, grads_v = forward_backward(twin, view, x, y)
    torch.testing.assert_close(out_v, out, atol=1e-4, rtol=1e-4)
    for name in grads:
        torch.testing.assert_close(grads_v[name], grads[name], atol=1e-5, rtol=1e-3, msg=name)
    for (name, a), (_, b) in zip(model.named_buffers(), twin.named_buffers()):  # BatchNorm's running statistics
        torch.testing.assert_close(b, a, atol=1e-5, rtol=1e-4, msg=name)


@pytest.mark.parametrize("arch, kwargs", [("conv2-fc64", {}), FAST_MODEL])
def test_bfloat16_gradients_are_no_further_from_float32_than_pytorchs(arch, kwargs):
    torch.manual_seed(0)
    model = create_model(arch, **kwargs)
    a, b, c = (copy.deepcopy(model) for _ in range(3))
    x, y = torch.rand(128, 1, 28, 28), torch.randint(0, 10, (128,))
    _, truth = forward_backward(a, a, x, y)
    _, torch_bf16 = forward_backward(b, b, x, y, bf16=True)
    _, ours = forward_backward(c, kernels.training_view(c), x, y, bf16=True)
    err = lambda g: sum((g[n] - truth[n]).norm() / truth[n].norm() for n in truth) / len(truth)  # noqa: E731
    assert err(ours) <= err(torch_bf16) * 1.1


def test_training_through_the_view_trains_the_model():
    torch.manual_seed(0)
    model = create_model("conv2-fc64")
    view = kernels.training_view(model)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    x, y = torch.rand(32, 1, 28, 28), torch.randint(0, 10, (32,))
    before = model[1].weight.detach().clone()
    F.cross_entropy(view(x), y).backward()
    opt.step()
    assert not torch.equal(model[1].weight, before)
    assert set(model.state_dict()) == set(create_model("conv2-fc64").state_dict())  # the model file is unchanged


@pytest.mark.parametrize("cin", [16, 32, 48, 64])
@pytest.mark.parametrize("relu", [False, True])
def test_conv_pool_backward_matches_pytorchs_for_every_input_width(cin, relu):
    """Only the conv outputs the pooling passed a gradient to are multiplied: the same gradients."""
    torch.manual_seed(cin)
    conv = torch.nn.Conv2d(cin, 32, 3)
    fused = kernels.FusedConvPool(conv, relu)
    x = torch.randn(6, cin, 12, 10).contiguous(memory_format=torch.channels_last).requires_grad_()
    gy = torch.randn(6, 32, 5, 4)

    def grads(layer):
        conv.zero_grad()
        x.grad = None
        (layer(x) * gy).sum().backward()
        return x.grad.clone(), conv.weight.grad.clone(), conv.bias.grad.clone()

    pytorch = grads(lambda t: (torch.relu if relu else torch.nn.Identity())(F.max_pool2d(conv(t), 2)))
    for ours, theirs in zip(grads(fused), pytorch):
        torch.testing.assert_close(ours, theirs, atol=1e-5, rtol=1e-4)


def test_conv_pool_in_bfloat16_is_no_further_from_float32_than_pytorchs():
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(32, 64, 3)
    x = torch.randn(64, 32, 12, 12).contiguous(memory_format=torch.channels_last).requires_grad_()
    gy = torch.randn(64, 64, 5, 5)
    pytorch = lambda t: torch.relu(F.max_pool2d(conv(t), 2))  # noqa: E731

    def grads(layer, bf16):
        conv.zero_grad()
        x.grad = None
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
            y = layer(x)
        (y.float() * gy).sum().backward()
        return x.grad.clone(), conv.weight.grad.clone(), conv.bias.grad.clone()

    truth = grads(pytorch, False)
    err = lambda gs: max(((g - t).norm() / t.norm()).item() for g, t in zip(gs, truth))  # noqa: E731
    assert err(grads(kernels.FusedConvPool(conv, True), True)) <= err(grads(pytorch, True)) * 1.1


def test_conv_pool_sends_odd_sides_through_pytorchs_layers():
    conv = torch.nn.Conv2d(16, 16, 3)
    x = torch.randn(2, 16, 13, 13)  # an 11x11 conv output: max_pool2d drops the last row and column
    torch.testing.assert_close(kernels.FusedConvPool(conv, True)(x), torch.relu(F.max_pool2d(conv(x), 2)))


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("relu", [False, True])
def test_max_pool_matches_pytorch_exactly_including_ties(dtype, relu):
    torch.manual_seed(0)
    x = torch.randn(8, 32, 10, 12).round()  # rounding makes many ties: the first maximum must win, as in PyTorch
    x = x.to(dtype).contiguous(memory_format=torch.channels_last)
    g = torch.randn(8, 32, 5, 6).to(dtype).contiguous(memory_format=torch.channels_last)
    outs = []
    for pool in (lambda t: torch.relu(F.max_pool2d(t, 2)) if relu else F.max_pool2d(t, 2), kernels.MaxPool2x2(relu)):
        xi = x.clone().requires_grad_()
        y = pool(xi)
        y.backward(g)
        outs.append((y.detach(), xi.grad))
    assert torch.equal(outs[0][0], outs[1][0])
    assert torch.equal(outs[0][1], outs[1][1])
    assert outs[1][0].is_contiguous(memory_format=torch.channels_last)


def test_without_a_compiler_training_says_so_and_uses_pytorchs_layers(tmp_path, mnist_dir):
    env = {**os.environ, "CC": "/nonexistent/cc", "XDG_CACHE_HOME": str(tmp_path / "cache"),
           "DIGITREC_DATA": str(mnist_dir)}
    script = ("from digitrec.training.native import kernels; from digitrec.models import create_model; "
              "m = create_model('conv2-fc64'); print(kernels.training_view(m, print) is m)")
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    assert "training through PyTorch's layers: no fused kernel" in out
    assert out.strip().endswith("True")
    run = subprocess.run([sys.executable, "-m", "digitrec", "train", "--recipe", "classic", "--epochs", "1",
                          "--subset", "2000", "--val-size", "500", "--out", str(tmp_path / "run"), "--no-report"],
                         env=env, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "training through PyTorch's layers" in run.stdout + run.stderr
    assert (tmp_path / "run" / "model.safetensors").exists()
