"""Batch augmentation as tensor ops (there is no torchvision build here).

Each augmentation takes and returns a (B, 1, 28, 28) float batch, drawing its
randomness from torch's global generator so a seeded run repeats exactly. Those
registered with `any_size` (random stroke width) work on a batch of any height and
width too, so a line model (lines of digits, 32 pixels tall) can use them.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import torch
import torch.nn.functional as F

from digitrec.errors import DigitrecError

Augment = Callable[[torch.Tensor], torch.Tensor]
_AUGMENTS: dict[str, Augment | None] = {"none": None}
_ANY_SIZE = {"none"}  # those that do not assume a 28x28 digit


def register_augment(name: str, any_size: bool = False) -> Callable[[Augment], Augment]:
    def wrap(fn: Augment) -> Augment:
        _AUGMENTS[name] = fn
        if any_size:
            _ANY_SIZE.add(name)
        return fn

    return wrap


def list_augments(any_size: bool = False) -> list[str]:
    """The augmentations' names (`any_size`: only those that work on a batch of any height and width)."""
    return sorted(_ANY_SIZE if any_size else _AUGMENTS)


def get_augment(name: str) -> Augment | None:
    if name not in _AUGMENTS:
        raise DigitrecError(f"unknown augmentation {name!r}; choose from {', '.join(list_augments())}", field="augment")
    return _AUGMENTS[name]


def random_affine(x: torch.Tensor, degrees: float = 10.0, scale: float = 0.1, shear: float = 0.1,
                  shift: float = 2.0) -> torch.Tensor:
    """Per-image random rotation (±degrees), scale (1±scale), shear and shift (±pixels)."""
    grid = affine_grid(x, degrees, scale, shear, shift)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def elastic_field(b: int, device: torch.device, alpha: float = 1.5, smooth: int = 7) -> torch.Tensor:
    """A random smooth displacement field (B, 28, 28, 2) in grid units, about `alpha` pixels strong."""
    noise = torch.rand(b, 2, 28, 28, device=device) * 2 - 1
    blur = _field_blur(smooth, torch.device(device))
    noise = blur @ noise @ blur.T
    noise = noise / noise.flatten(1).abs().amax(1).clamp_min(1e-6).view(b, 1, 1, 1)
    return (noise * alpha * 2 / 28).permute(0, 2, 3, 1)


def box_blur_matrix(size: int, side: int = 28) -> torch.Tensor:
    """(side, side) matrix M with M @ v = the mean of v over a `size` window clipped to [0, side).

    The clipped 2-D window is a rectangle, so blurring an image X is M @ X @ M.T: two small matrix
    products instead of a size×size pooling pass (which cost 5% of a best-recipe step)."""
    i = torch.arange(side)
    band = ((i.view(-1, 1) - i.view(1, -1)).abs() <= size // 2).float()
    return band / band.sum(1, keepdim=True)


@functools.lru_cache(maxsize=None)
def _field_blur(smooth: int, device: torch.device) -> torch.Tensor:
    """Two box blurs (≈ a Gaussian) as one matrix, built once per size and device rather than every step."""
    return torch.linalg.matrix_power(box_blur_matrix(smooth), 2).to(device)


def affine_grid(x: torch.Tensor, degrees: float, scale: float, shear: float, shift: float) -> torch.Tensor:
    """The sampling grid (B, 28, 28, 2) of a random affine map per image."""
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
    return F.affine_grid(theta, list(x.shape), align_corners=False)


def random_erase(x: torch.Tensor, p: float = 0.3, size: int = 8) -> torch.Tensor:
    """Blank a random size×size square in a fraction `p` of the images (occlusion, broken strokes)."""
    b = x.shape[0]
    ys = torch.randint(0, 28 - size + 1, (b, 1, 1), device=x.device)
    xs = torch.randint(0, 28 - size + 1, (b, 1, 1), device=x.device)
    r = torch.arange(28, device=x.device)
    rows = (r.view(1, 28, 1) >= ys) & (r.view(1, 28, 1) < ys + size)  # (B, 28, 1)
    cols = (r.view(1, 1, 28) >= xs) & (r.view(1, 1, 28) < xs + size)  # (B, 1, 28)
    box = rows & cols
    keep = ~(box & (torch.rand(b, 1, 1, device=x.device) < p))
    return x * keep.unsqueeze(1)


@register_augment("elastic")
def elastic(x: torch.Tensor) -> torch.Tensor:
    """The best recipe's augmentation: a random affine and an elastic distortion in one resampling."""
    grid = affine_grid(x, degrees=12.0, scale=0.12, shear=0.15, shift=2.5) + elastic_field(x.shape[0], x.device)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@register_augment("mnist")
def mnist_augment(x: torch.Tensor) -> torch.Tensor:
    """`elastic`, then random erasing of a 7×7 square in a quarter of the digits (the first best recipe's)."""
    return random_erase(elastic(x), p=0.25, size=7)


@register_augment("affine")
def affine(x: torch.Tensor) -> torch.Tensor:
    return random_affine(x)


@register_augment("stroke", any_size=True)
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
