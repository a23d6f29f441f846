"""Batch augmentation as tensor ops (there is no torchvision build here).

Each augmentation takes and returns a (B, 1, 28, 28) float batch, drawing its
randomness from torch's global generator so a seeded run repeats exactly.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

from .errors import DigitrecError

Augment = Callable[[torch.Tensor], torch.Tensor]
_AUGMENTS: dict[str, Augment | None] = {"none": None}


def register_augment(name: str) -> Callable[[Augment], Augment]:
    def wrap(fn: Augment) -> Augment:
        _AUGMENTS[name] = fn
        return fn

    return wrap


def list_augments() -> list[str]:
    return sorted(_AUGMENTS)


def get_augment(name: str) -> Augment | None:
    if name not in _AUGMENTS:
        raise DigitrecError(f"--augment: unknown augmentation {name!r}; choose from {', '.join(list_augments())}")
    return _AUGMENTS[name]


def random_affine(x: torch.Tensor, degrees: float = 10.0, scale: float = 0.1, shear: float = 0.1,
                  shift: float = 2.0) -> torch.Tensor:
    """Per-image random rotation (±degrees), scale (1±scale), shear and shift (±pixels)."""
    b = x.shape[0]
    u = torch.rand(b, 5, device=x.device) * 2 - 1  # (B, 5) uniform in [-1, 1]
    angle = u[:, 0] * math.radians(degrees)
    s = 1 + u[:, 1] * scale
    sh = u[:, 2] * shear
    cos, sin = torch.cos(angle) / s, torch.sin(angle) / s
    theta = torch.stack([
        torch.stack([cos, -sin + sh * cos, u[:, 3] * shift * 2 / 28], 1),
        torch.stack([sin, cos + sh * sin, u[:, 4] * shift * 2 / 28], 1),
    ], 1)  # (B, 2, 3): maps output coords to input coords, in [-1, 1] units
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@register_augment("affine")
def affine(x: torch.Tensor) -> torch.Tensor:
    return random_affine(x)


def random_stroke(x: torch.Tensor, thicker: float = 1.0, thinner: float = 0.5) -> torch.Tensor:
    """Per-image random stroke width: blend towards a 3×3 dilation (up to `thicker`) or
    erosion (up to `thinner`). Pens, markers and mouse strokes differ far more than MNIST's."""
    b = x.shape[0]
    amount = (torch.rand(b, 1, 1, 1, device=x.device) * (thicker + thinner) - thinner)  # (B,1,1,1)
    dilated = F.max_pool2d(x, 3, stride=1, padding=1)
    eroded = -F.max_pool2d(-x, 3, stride=1, padding=1)
    target = torch.where(amount > 0, dilated, eroded)
    return x + amount.abs() * (target - x)


@register_augment("digits")
def digits(x: torch.Tensor) -> torch.Tensor:
    """For people's own pictures: random stroke width, then a slightly wider random affine
    (preprocessing already fixes size and centre; this covers what it cannot)."""
    return random_affine(random_stroke(x), degrees=12.0, scale=0.12, shear=0.15, shift=2.0)
