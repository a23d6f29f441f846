"""Turning uint8 digits into model input and model output into probabilities.

Training, evaluation and the recogniser all go through `to_input`, so the
pixels a model sees are scaled the same way everywhere.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from digitrec.util.device import keep_freed_memory


def to_input(images: torch.Tensor) -> torch.Tensor:
    """(B, 28, 28) uint8 → (B, 1, 28, 28) float32 in [0, 1]."""
    return images.unsqueeze(1).float().div_(255.0)


# 256 digits keep the widest activation (bn-conv6-w32: 32×28×28 float32, 100 KB a digit) under the
# 32 MB that device.keep_freed_memory lets glibc reuse; larger batches page-fault on every call.
PREDICT_BATCH = 256


def model_device(model: nn.Module) -> torch.device:
    """Where the model's weights are (CPU for a model without any)."""
    tensor = next(model.parameters(), None)
    if tensor is None:
        tensor = next(model.buffers(), None)
    return tensor.device if tensor is not None else torch.device("cpu")


@torch.inference_mode()
def predict_proba(model: nn.Module, images: np.ndarray | torch.Tensor, batch_size: int = PREDICT_BATCH,
                  device: torch.device | str | None = None) -> np.ndarray:
    """Class probabilities (N, C) for uint8 images (N, 28, 28), in batches, in eval mode (C is 10, or 11
    for a model with the answer "not a digit"); raw, as the network computes them (no calibration).
    The images go to `device`, by default the model's own (a model trained on CUDA is read there)."""
    device = device if device is not None else model_device(model)
    keep_freed_memory()  # every torch inference comes through here; training calls it via set_threads
    images = torch.as_tensor(np.asarray(images)) if not isinstance(images, torch.Tensor) else images
    was_training = model.training
    model.eval()
    out = []
    for start in range(0, len(images), batch_size):
        batch = to_input(images[start:start + batch_size].to(device))
        out.append(torch.softmax(model(batch).float(), dim=1).cpu())
    model.train(was_training)
    if not out:
        return np.zeros((0, model.eval()(torch.zeros(1, 1, 28, 28, device=device)).shape[1]), dtype=np.float32)
    return torch.cat(out).numpy()
