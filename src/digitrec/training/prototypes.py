"""A nearest-prototype head over the network's features, folded into its last layer.

Fifteen pictures of a writer's 7 say where that writer's 7s lie among the network's penultimate
features; a few steps of gradient descent move the classifier only part of the way there. The
prototype of digit c is the mean feature p_c of the writer's pictures of c; reading a picture f by
how much nearer it lies to p_c than to the writer's average digit p̄ adds, to digit c's logit,

    β (‖f − p̄‖² − ‖f − p_c‖²) = β (2 f·(p_c − p̄) + ‖p̄‖² − ‖p_c‖²),

which is linear in f: a change of the last layer's weights and bias, nothing else. So the model file,
its views, ONNX export and every reader stay as they are, and the "not a digit" output is untouched
(its threshold is refitted after fine-tuning anyway). β = `strength` / the mean squared distance of the
writer's pictures to their own prototype: `strength` is then in units of the writer's own spread.
Digits the writer gave no pictures of are left alone. Chosen on held-out fonts and sklearn's digits:
docs/finetune.md.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from digitrec.errors import DigitrecError
from digitrec.models.predict import PREDICT_BATCH, to_input


def split_head(net: nn.Module) -> tuple[nn.Module, nn.Linear]:
    """(everything up to the last layer, the last layer) of a network ending in a linear classifier."""
    net = getattr(net, "base", net)  # a model in test-time views: the network inside them
    if not isinstance(net, nn.Sequential) or not isinstance(net[-1], nn.Linear):
        raise DigitrecError(f"{type(net).__name__} does not end in a linear classifier: no prototype head",
                            field="prototypes")
    return net[:-1], net[-1]


@torch.no_grad()
def features(net: nn.Module, images: np.ndarray) -> torch.Tensor:
    """The penultimate features (N, F) of uint8 digits (N, 28, 28), in eval mode, float32."""
    body, last = split_head(net)
    device = last.weight.device
    was_training = body.training
    body.eval()
    out = [body(to_input(torch.as_tensor(images[i:i + PREDICT_BATCH]).to(device))).float()
           for i in range(0, len(images), PREDICT_BATCH)]
    body.train(was_training)
    return torch.cat(out) if out else torch.zeros(0, last.in_features, device=device)


@torch.no_grad()
def fold_prototypes(net: nn.Module, images: np.ndarray, labels: np.ndarray, strength: float) -> dict:
    """Add the prototype head of the writer's pictures (images, digit labels) to `net`'s last layer, in
    place; what was done, for the model file. `strength` 0 changes nothing."""
    _, last = split_head(net)
    digits = [int(d) for d in np.unique(labels) if d < 10]
    if strength <= 0 or len(digits) < 2:
        return {"strength": 0.0, "digits": digits}
    f = features(net, images)
    y = torch.as_tensor(np.asarray(labels), device=f.device)
    protos = torch.stack([f[y == d].mean(0) for d in digits])
    spread = float(torch.cat([((f[y == d] - p) ** 2).sum(1) for d, p in zip(digits, protos)]).mean())
    beta = strength / max(spread, 1e-6)
    mean = protos.mean(0)
    rows = torch.as_tensor(digits, device=f.device)
    last.weight[rows] += (2 * beta * (protos - mean)).to(last.weight.dtype)
    last.bias[rows] += (beta * ((mean ** 2).sum() - (protos ** 2).sum(1))).to(last.bias.dtype)
    return {"strength": strength, "digits": digits, "pictures": int(len(labels)), "spread": round(spread, 4)}
