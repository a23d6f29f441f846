"""digitrec's optimizers (optim.py): PyTorch's Adam, AdamW and SGD to float rounding, with PyTorch's
state, so a checkpoint written by either resumes in the other."""

from __future__ import annotations

import pytest
import torch

from digitrec.training.native import kernels, optim

pytestmark = pytest.mark.skipif(kernels.unavailable() is not None, reason=f"{kernels.unavailable()}")

CASES = [
    (optim.Adam, torch.optim.Adam, {"lr": 1e-3}),  # the classic recipe
    (optim.Adam, torch.optim.Adam, {"lr": 1e-3, "weight_decay": 5e-4, "betas": (0.8, 0.99), "eps": 1e-6}),
    (optim.AdamW, torch.optim.AdamW, {"lr": 3e-3, "weight_decay": 5e-4}),  # the best recipe
    (optim.SGD, torch.optim.SGD, {"lr": 0.3, "momentum": 0.9, "nesterov": True, "weight_decay": 5e-4}),  # fast
    (optim.SGD, torch.optim.SGD, {"lr": 0.1, "momentum": 0.5, "dampening": 0.1}),
    (optim.SGD, torch.optim.SGD, {"lr": 0.1}),
]


def run(cls, kwargs, param, steps, seed=0):
    opt = cls([param], **kwargs)
    gen = torch.Generator().manual_seed(seed)
    for step in range(steps):
        param.grad = torch.randn(param.shape, generator=gen)
        opt.param_groups[0]["lr"] = kwargs["lr"] * (step + 1) / steps  # a schedule changes lr every step
        opt.step()
    return opt


@pytest.mark.parametrize("ours, theirs, kwargs", CASES)
def test_steps_match_pytorchs_optimizer(ours, theirs, kwargs):
    start = torch.randn(10_001)
    a, b = torch.nn.Parameter(start.clone()), torch.nn.Parameter(start.clone())
    opt_a, opt_b = run(ours, kwargs, a, 30), run(theirs, kwargs, b, 30)
    assert not torch.equal(a, start)
    torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for key, value in opt_b.state[b].items():
        torch.testing.assert_close(opt_a.state[a][key], value, rtol=1e-5, atol=1e-5, msg=key)


@pytest.mark.parametrize("ours, theirs, kwargs", CASES[::2])
def test_state_dicts_move_between_pytorchs_optimizer_and_ours(ours, theirs, kwargs):
    a, b = torch.nn.Parameter(torch.ones(1000)), torch.nn.Parameter(torch.ones(1000))
    theirs_trained, ours_trained = run(theirs, kwargs, b, 5), run(ours, kwargs, a, 5)
    resumed = ours([a], **kwargs)
    resumed.load_state_dict(theirs_trained.state_dict())
    back = theirs([b], **kwargs)
    back.load_state_dict(ours_trained.state_dict())
    assert set(back.state[b]) == set(resumed.state[a]) == set(theirs_trained.state[b])
    for key, value in theirs_trained.state[b].items():  # values, not just names, survive each way
        torch.testing.assert_close(resumed.state[a][key], value, msg=key)
        torch.testing.assert_close(back.state[b][key], ours_trained.state[a][key], msg=key)
    assert resumed.param_groups[0]["lr"] == theirs_trained.param_groups[0]["lr"]


def test_several_tensors_take_pytorchs_own_step():
    """Distributed runs keep per-tensor parameters: the same optimizer, PyTorch's loop."""
    params = [torch.nn.Parameter(torch.ones(3)), torch.nn.Parameter(torch.ones(4))]
    twins = [torch.nn.Parameter(p.detach().clone()) for p in params]
    for ps, cls in ((params, optim.Adam), (twins, torch.optim.Adam)):
        for p in ps:
            p.grad = torch.full_like(p, 0.5)
        cls(ps, lr=0.1).step()
    for p, q in zip(params, twins):
        assert torch.equal(p, q) and not torch.equal(p, torch.ones_like(p))
