"""Deskewing: a model's optional first layer that straightens slanted digits.

Why: networks that all read the same pixels tend to make the same mistakes, so averaging more of
them stops paying (digitrec's `best` ensembles sit at 99.72% however many members they have). A
network that reads each digit straightened (its ink's slant sheared upright, its centre of mass
moved to the middle, as in LeCun's deskewed MNIST baselines) sees different evidence and can err on
different digits. The layer is plain tensor arithmetic plus one grid_sample, so it trains, runs and
exports to ONNX (GridSample, opset 16+) like the rest of the model.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class Deskew(nn.Module):
    """Shears each image so its ink's principal slant is vertical, centred on its centre of mass.

    With image moments over ink weights w: slant s = cov(x, y) / var(y), and output pixel (x, y)
    samples the input at (cx + x + s·y, cy + y) (coordinates from the centre, in grid_sample's
    normalised units). `out` < `side` returns only the central out×out pixels of the straightened
    image (what a centre-cropping model reads) without resampling the rest. `max_shear` bounds s so
    a blank or one-row image is not sheared wildly.
    """

    def __init__(self, side: int = 28, out: int = 0, max_shear: float = 1.0) -> None:
        super().__init__()
        self.side, self.out, self.max_shear = int(side), int(out or side), float(max_shear)
        # pixel centres in grid_sample's align_corners=False units: -1 + 1/side ... 1 - 1/side
        centres = (torch.arange(self.side, dtype=torch.float32) * 2 + 1) / self.side - 1
        top = (self.side - self.out) // 2
        window = centres[top:top + self.out]
        ys, xs = torch.meshgrid(window, window, indexing="ij")
        py, px = torch.meshgrid(centres, centres, indexing="ij")
        px, py = px.flatten(), py.flatten()
        self.register_buffer("moments", torch.stack([torch.ones_like(px), px, py, py * py, px * py], 1),
                             persistent=False)  # (side*side, 5)
        # the output pixels' own positions, and how far each moves per unit of slant: (out, out, 2)
        self.register_buffer("base", torch.stack([xs, ys], -1), persistent=False)
        self.register_buffer("shear", torch.stack([ys, torch.zeros_like(ys)], -1), persistent=False)

    def slant(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(cx, cy, s) per image of a (B, 1, side, side) batch: centre of mass and slant.

        The five moments come from one matrix product (ink × [1, x, y, y², xy] per pixel) rather
        than a dozen reductions: this layer runs on every training batch of the fast recipe."""
        m = torch.matmul(x.float().flatten(1), self.moments)  # (B, 5)
        mass = m[:, 0].clamp_min(1e-6)
        cx, cy = m[:, 1] / mass, m[:, 2] / mass
        var_y = m[:, 3] / mass - cy * cy
        cov = m[:, 4] / mass - cx * cy
        s = (cov / var_y.clamp_min(1e-6)).clamp(-self.max_shear, self.max_shear)
        return cx, cy, s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # float32 even under bfloat16 autocast: bfloat16 moments would misjudge the slant
        with torch.autocast(x.device.type, enabled=False):
            cx, cy, s = self.slant(x)
            shift = torch.stack([cx, cy], dim=1).view(-1, 1, 1, 2)
            grid = torch.addcmul(self.base + shift, s.view(-1, 1, 1, 1), self.shear)
            return F.grid_sample(x.float(), grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def extra_repr(self) -> str:
        return f"side={self.side}, out={self.out}, max_shear={self.max_shear}"
