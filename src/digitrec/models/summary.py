"""A Keras-style summary table: each leaf layer, its output shape and parameter count."""

from __future__ import annotations

import torch
from torch import nn

from digitrec.models.registry import count_parameters


def summary(model: nn.Module, batch: int = 1) -> str:
    """A Keras-style table: each leaf layer, its output shape and parameter count."""
    rows: list[tuple[str, str, int]] = []
    hooks = []
    for name, module in model.named_modules():
        if list(module.children()):
            continue

        def hook(mod, _inp, out, name=name):
            shape = "(None, " + ", ".join(str(d) for d in out.shape[1:]) + ")"
            rows.append((f"{name} ({type(mod).__name__})", shape, count_parameters(mod)))

        hooks.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(batch, *getattr(model, "example_input", (1, 28, 28))))
    finally:
        for h in hooks:
            h.remove()
    return _format_table(getattr(model, "arch", type(model).__name__), rows, count_parameters(model))


def _format_table(title: str, rows: list[tuple[str, str, int]], total: int) -> str:
    w0 = max([len("Layer (type)")] + [len(r[0]) for r in rows]) + 2
    w1 = max([len("Output Shape")] + [len(r[1]) for r in rows]) + 2
    rule = "─" * (w0 + w1 + 12)
    lines = [f'Model: "{title}"', rule, f"{'Layer (type)':<{w0}}{'Output Shape':<{w1}}{'Param #':>12}", rule]
    lines += [f"{a:<{w0}}{b:<{w1}}{c:>12,}" for a, b, c in rows]
    lines += [rule, f"Total params: {total:,}", rule]
    return "\n".join(lines)
