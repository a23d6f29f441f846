"""Models made of models: an ensemble averaging members, and test-time augmentation over fixed views."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from digitrec.errors import DigitrecError
from digitrec.models.registry import create_model, register_model


class Ensemble(nn.Module):
    """Averages its members' probabilities; returns log-probabilities so softmax gives the average."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([torch.softmax(m(x).float(), dim=1) for m in self.members])  # (M, B, C)
        return torch.log(probs.mean(0).clamp_min(1e-12))


@register_model("ensemble", "the average of several models' probabilities (`digitrec ensemble`)")
def ensemble(members: list[dict] | None = None) -> nn.Module:
    """`members` are {"arch", "arch_kwargs"} dicts, as a model file records them."""
    members = members or [{"arch": "bn-conv3-w16"}, {"arch": "bn-conv3-w16"}]
    return Ensemble([create_model(m["arch"], **m.get("arch_kwargs", {})) for m in members])


# Test-time augmentation: named sets of fixed views, each (rotation in degrees, zoom factor).
TTA_VIEWS: dict[str, list[tuple[float, float]]] = {
    "none": [],
    "rot-zoom": [(0.0, 1.0), (-6.0, 1.0), (6.0, 1.0), (0.0, 0.92), (0.0, 1.08)],
}


def view_grids(views: list[tuple[float, float]], side: int = 28) -> torch.Tensor:
    """Sampling grids (V, side, side, 2) of fixed rotations/zooms, the way training resamples images."""
    thetas = []
    for degrees, zoom in views:
        a = math.radians(degrees)
        c, s = math.cos(a) / zoom, math.sin(a) / zoom
        thetas.append([[c, -s, 0.0], [s, c, 0.0]])
    return F.affine_grid(torch.tensor(thetas), [len(views), 1, side, side], align_corners=False)


class TestTimeAugment(nn.Module):
    """Averages a model's probabilities over fixed rotated and zoomed copies of each digit.

    Why: a model trained on resampled (slightly smoothed) digits reads resampled copies better
    than the crisp originals, and averaging views cancels some of each view's mistakes."""

    def __init__(self, base: nn.Module, views: list[tuple[float, float]]) -> None:
        super().__init__()
        self.base, self.views = base, [tuple(v) for v in views]
        self.register_buffer("grids", view_grids(self.views), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b = x.shape[0]
        probs = 0
        for i in range(len(self.views)):  # a fixed count, so ONNX tracing unrolls it without warnings
            view = F.grid_sample(x, self.grids[i].expand(b, -1, -1, -1), mode="bilinear", padding_mode="zeros",
                                 align_corners=False)
            probs = probs + torch.softmax(self.base(view).float(), dim=1)
        return torch.log((probs / len(self.views)).clamp_min(1e-12))


@register_model("tta", "a model averaged over fixed rotated and zoomed views (`--tta`)")
def tta(base: dict | None = None, views: str | list = "rot-zoom") -> nn.Module:
    """`base` is an {"arch", "arch_kwargs"} dict; `views` a name in TTA_VIEWS or a list of (degrees, zoom)."""
    base = base or {"arch": "bn-conv3-w16"}
    if isinstance(views, str):
        if views not in TTA_VIEWS or not TTA_VIEWS[views]:
            raise DigitrecError(f"unknown view set {views!r}; choose from {', '.join(TTA_VIEWS)}", field="tta")
        views = TTA_VIEWS[views]
    return TestTimeAugment(create_model(base["arch"], **base.get("arch_kwargs", {})), views)


def with_tta(model: nn.Module, views: str) -> nn.Module:
    """`model` wrapped in test-time augmentation (sharing its weights); `views` "none" returns it."""
    if views == "none":
        return model
    wrapped = create_model("tta", base={"arch": model.arch, "arch_kwargs": model.arch_kwargs}, views=views)
    wrapped.base = model
    return wrapped
