"""Adam, AdamW and SGD whose step over one flat parameter tensor is a single native pass.

Why: with every parameter in one flat tensor (flatparams.py) an optimizer step is a handful of
elementwise passes over ~0.1M floats, yet torch.optim's Python bookkeeping and those passes took
~0.45 ms of a ~4.5 ms classic step (profiled). kernels.c's `adam_step` / `sgd_step` do the same
arithmetic as PyTorch's single-tensor implementations in one pass. These are subclasses: the state
(`step`, `exp_avg`, `exp_avg_sq`, `momentum_buffer`) and state_dict are PyTorch's own, so
checkpoints resume either way, and any other case (several tensors, another dtype or device,
amsgrad, maximize, no compiler) takes PyTorch's own step.
"""

from __future__ import annotations

import torch

from digitrec.training.native.kernels import library


def _flat_tensor(optimizer: torch.optim.Optimizer) -> torch.Tensor | None:
    """The single dense float32 CPU parameter the optimizer updates, when that is all it holds."""
    if len(optimizer.param_groups) != 1 or len(optimizer.param_groups[0]["params"]) != 1:
        return None
    p = optimizer.param_groups[0]["params"][0]
    ok = (p.grad is not None and p.device.type == "cpu" and p.dtype == torch.float32 and p.is_contiguous()
          and p.grad.dtype == torch.float32 and p.grad.is_contiguous() and not p.grad.is_sparse)
    return p if ok and library() is not None else None


def _plain(group: dict, *flags: str) -> bool:
    return not any(group.get(f) for f in ("maximize", "capturable", "differentiable", "fused", *flags))


class Adam(torch.optim.Adam):
    """torch.optim.Adam (AdamW with `decoupled_weight_decay=True`), one native pass over a flat tensor."""

    @torch.no_grad()
    def step(self, closure=None):
        p = _flat_tensor(self)
        group = self.param_groups[0]
        if p is None or closure is not None or not _plain(group, "amsgrad") or torch.is_tensor(group["lr"]):
            return super().step(closure)
        state = self.state[p]
        if not state:  # as Adam._init_group lays it out
            state["step"] = torch.tensor(0.0)
            state["exp_avg"] = torch.zeros_like(p)
            state["exp_avg_sq"] = torch.zeros_like(p)
        state["step"] += 1
        t = state["step"].item()
        beta1, beta2 = group["betas"]
        library().adam_step(p.data_ptr(), p.grad.data_ptr(), state["exp_avg"].data_ptr(),
                            state["exp_avg_sq"].data_ptr(), p.numel(), group["lr"], beta1, beta2, group["eps"],
                            group["weight_decay"], int(bool(group.get("decoupled_weight_decay"))),
                            1 - beta1 ** t, (1 - beta2 ** t) ** 0.5, torch.get_num_threads())
        return None


class AdamW(Adam, torch.optim.AdamW):
    """torch.optim.AdamW (decoupled weight decay), one native pass over a flat tensor."""


class SGD(torch.optim.SGD):
    """torch.optim.SGD, one native pass over a flat tensor."""

    @torch.no_grad()
    def step(self, closure=None):
        p = _flat_tensor(self)
        group = self.param_groups[0]
        if p is None or closure is not None or not _plain(group) or torch.is_tensor(group["lr"]):
            return super().step(closure)
        state = self.state[p]
        first = state.get("momentum_buffer") is None
        if first and group["momentum"] != 0:
            state["momentum_buffer"] = torch.empty_like(p)
        buf = state.get("momentum_buffer")
        library().sgd_step(p.data_ptr(), p.grad.data_ptr(), buf.data_ptr() if buf is not None else None,
                           p.numel(), group["lr"], group["momentum"], group["dampening"], group["weight_decay"],
                           int(group["nesterov"]), int(first), torch.get_num_threads())
        return None
