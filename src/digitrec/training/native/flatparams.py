"""All of a model's parameters (and their gradients) in one flat tensor, for a cheap optimizer step.

Why: PyTorch's CPU optimizers loop over the parameters in Python, a handful of small ops for each
tensor. For the small MNIST networks that loop costs as much as a convolution: Adam over
conv2-fc64's 8 tensors took 0.7 ms of a 5.5 ms step. With every parameter a view into one buffer
and every gradient a view into another, the optimizer updates a single tensor.
"""

from __future__ import annotations

import torch
from torch import nn


def flatten_parameters(model: nn.Module) -> nn.Parameter:
    """Move `model`'s trainable parameters into one flat tensor and return it, with its `.grad`
    set to one flat gradient tensor; each parameter becomes a view (same shape and strides, so
    channels-last weights stay channels-last) and backward accumulates into the gradient views.

    Give the returned tensor to the optimizer instead of model.parameters(), and clear gradients
    with zero_grad(set_to_none=False): setting them to None would cut the views loose."""
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("the model has no trainable parameters")
    first = params[0]
    total = sum(p.numel() for p in params)
    flat = torch.zeros(total, dtype=first.dtype, device=first.device)
    grad = torch.zeros_like(flat)
    offset = 0
    with torch.no_grad():
        for p in params:
            view = flat.as_strided(p.shape, p.stride(), offset)  # parameters are dense: n values from offset
            view.copy_(p)
            p.data = view
            p.grad = grad.as_strided(p.shape, p.stride(), offset)
            offset += p.numel()
    packed = nn.Parameter(flat)
    packed.grad = grad
    return packed
