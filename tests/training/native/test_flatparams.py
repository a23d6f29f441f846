"""The flat parameter buffer must train exactly like PyTorch's per-tensor optimizers."""

from __future__ import annotations

import pytest
import torch

from digitrec.models import create_model
from digitrec.training.native.flatparams import flatten_parameters


def _train(model, params, opt_name, steps=4, set_to_none=True):
    torch.manual_seed(1)
    opt = {"adam": lambda: torch.optim.Adam(params, lr=1e-2, weight_decay=1e-3),
           "sgd": lambda: torch.optim.SGD(params, lr=0.1, momentum=0.9, nesterov=True, weight_decay=5e-4)}[opt_name]()
    for _ in range(steps):
        x = torch.rand(8, 1, 28, 28).contiguous(memory_format=torch.channels_last)
        loss = torch.nn.functional.cross_entropy(model(x), torch.randint(0, 10, (8,)))
        opt.zero_grad(set_to_none=set_to_none)
        loss.backward()
        opt.step()
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("arch, opt", [("conv2-fc64", "adam"), ("bn-conv3-w16", "sgd")])
def test_flat_buffer_trains_like_the_separate_tensors(arch, opt):
    torch.manual_seed(0)
    plain = create_model(arch).to(memory_format=torch.channels_last)
    packed = create_model(arch).to(memory_format=torch.channels_last)
    packed.load_state_dict(plain.state_dict())
    flat = flatten_parameters(packed)
    assert flat.numel() == sum(p.numel() for p in plain.parameters())
    expected = _train(plain, plain.parameters(), opt)
    got = _train(packed, [flat], opt, set_to_none=False)
    for k in expected:
        torch.testing.assert_close(got[k], expected[k], rtol=1e-5, atol=1e-6, msg=k)
    conv = next(p for p in packed.parameters() if p.dim() == 4)
    assert conv.is_contiguous(memory_format=torch.channels_last)  # the views kept the weights' layout
    assert conv.untyped_storage().data_ptr() == flat.untyped_storage().data_ptr()
