"""One registry of networks, name → constructor, and a Keras-style summary table.

Every model takes (B, 1, 28, 28) float images in [0, 1] (ink = 1) and returns
(B, 10) logits. Input normalisation is the model's first layer, so whatever
runs a model (training, the CLI, the server, ONNX) feeds it the same thing.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from .deskew import Deskew
from .errors import DigitrecError

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
# A small, typical network: the export tests and the inference benchmark default to it. (The package
# ships a `best`-recipe model, bn-conv6-w32 read through test-time views: weights/default.safetensors.)
DEFAULT_MODEL = "conv2-fc128"
_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_DESCRIPTIONS: dict[str, str] = {}


def register_model(name: str, description: str) -> Callable:
    """Decorator: add a constructor to the registry under `name`."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _REGISTRY[name] = fn
        _DESCRIPTIONS[name] = description
        return fn

    return wrap


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def describe(name: str) -> str:
    return _DESCRIPTIONS[name]


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model; `arch` and `arch_kwargs` ride along so model files can rebuild it."""
    if name not in _REGISTRY:
        raise DigitrecError(f"model: unknown model {name!r}; choose from {', '.join(list_models())}")
    try:
        model = _REGISTRY[name](**kwargs)
    except TypeError as exc:
        raise DigitrecError(f"model: bad settings for {name!r}: {exc}") from None
    model.arch = name
    model.arch_kwargs = dict(kwargs)
    return model


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


class Normalize(nn.Module):
    """(x - mean) / std with constants, not buffers: no parameters, nothing to save.

    `used` > 0 keeps only the top-left used×used pixels: with valid convolutions and floor pooling
    the last rows and columns can never reach the output, so skipping them changes nothing but time.
    `crop` > 0 keeps the central crop×crop pixels: MNIST digits fill the central 20×20 box, and a
    24×24 crop keeps 99.7% of the ink for 27% less work in every layer.
    """

    def __init__(self, mean: float = MNIST_MEAN, std: float = MNIST_STD, used: int = 0, crop: int = 0) -> None:
        super().__init__()
        self.mean, self.std, self.used, self.crop = float(mean), float(std), int(used), int(crop)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.used:
            x = x[..., :self.used, :self.used]
        if self.crop:
            top = (x.shape[-2] - self.crop) // 2
            left = (x.shape[-1] - self.crop) // 2
            x = x[..., top:top + self.crop, left:left + self.crop]
        return (x - self.mean) / self.std

    def extra_repr(self) -> str:
        return (f"mean={self.mean}, std={self.std}" + (f", used={self.used}" if self.used else "")
                + (f", crop={self.crop}" if self.crop else ""))


class Dropout(nn.Dropout):
    """nn.Dropout drawing 16 random bits per value instead of a random float.

    On a CPU, dropout's per-value Bernoulli draws took a tenth of a bn-conv6-w32 training step;
    one 64-bit draw here covers four values (p is rounded to 1/65536). The mask reuses the input's
    strides, so a channels-last activation stays channels-last."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        n = x.numel()
        bits = torch.empty(n // 4 + 1, dtype=torch.int64, device=x.device).random_(-2**63, None).view(torch.int16)
        dense = x.is_contiguous() or (x.dim() == 4 and x.is_contiguous(memory_format=torch.channels_last))
        bits = bits.as_strided(x.shape, x.stride()) if dense else bits[:n].view(x.shape)
        keep = bits >= round(self.p * 65536) - 32768  # bits are uniform on [-32768, 32767]
        return x * keep.to(x.dtype).mul_(1 / (1 - self.p))


# --- the starting projects' architectures (Keras "valid" convs, 2x2 pools) ---


def _keras_cnn(convs: list[int], pools: bool, dense: list[int], mean: float, std: float) -> nn.Sequential:
    """Conv 3x3 [→ MaxPool 2] → ReLU per entry of `convs`, Flatten, Dense(relu) per `dense`, Dense 10."""
    layers: list[nn.Module] = [Normalize(mean, std, _used_side(len(convs), pools))]
    channels, side = 1, 28
    for out in convs:
        layers.append(nn.Conv2d(channels, out, 3))
        channels, side = out, side - 2
        if pools:  # max-pool before ReLU: the same function (both are monotone), ReLU on 4x fewer values
            layers.append(nn.MaxPool2d(2))
            side //= 2
        layers.append(nn.ReLU())
    layers.append(nn.Flatten())
    width = channels * side * side
    for units in dense:
        layers += [nn.Linear(width, units), nn.ReLU()]
        width = units
    layers.append(nn.Linear(width, 10))
    return nn.Sequential(*layers)


def _used_side(convs: int, pools: bool, side: int = 28) -> int:
    """How many input rows (and columns) reach the output of valid 3x3 convs each [+ floor 2x2 pool].

    For conv2-fc64: 28 → 26 → 13 → 11 → 5 uses only 10 of the 11 rows before the last pool, so only
    26 input rows: cropping them first saves 15% of the work and computes the same function."""
    sides = [side]
    for _ in range(convs):
        sides.append(sides[-1] - 2)
        if pools:
            sides.append(sides[-1] // 2)
    used = sides[-1]
    for _ in range(convs):
        used = used * 2 if pools else used
        used += 2
    return used if used < side else 0


@register_model("conv2-fc64", "project A: conv32-pool-conv64-pool-dense64")
def conv2_fc64(mean: float = MNIST_MEAN, std: float = MNIST_STD) -> nn.Module:
    return _keras_cnn([32, 64], True, [64], mean, std)


@register_model("conv1-fc128", "project B: conv28-pool-dense128")
def conv1_fc128(mean: float = MNIST_MEAN, std: float = MNIST_STD) -> nn.Module:
    return _keras_cnn([28], True, [128], mean, std)


@register_model("conv1-fc64x2", "project C: conv64-dense64-dense64 (no pooling)")
def conv1_fc64x2(mean: float = MNIST_MEAN, std: float = MNIST_STD) -> nn.Module:
    return _keras_cnn([64], False, [64, 64], mean, std)


@register_model("conv2-fc128", "project E: conv32-pool-conv64-pool-dense128")
def conv2_fc128(mean: float = MNIST_MEAN, std: float = MNIST_STD) -> nn.Module:
    return _keras_cnn([32, 64], True, [128], mean, std)


# --- digitrec's own models: BatchNorm CNNs ---


def _conv_bn(cin: int, cout: int, kernel: int = 3, stride: int = 1) -> list[nn.Module]:
    """Conv without bias (BatchNorm's shift replaces it), BatchNorm, ReLU."""
    return [nn.Conv2d(cin, cout, kernel, stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(cout), nn.ReLU()]


def _conv_pool_bn(cin: int, cout: int) -> list[nn.Module]:
    """Conv → MaxPool → BatchNorm → ReLU: pooling first leaves BN and ReLU a quarter of the values
    (on this CPU those memory-bound ops cost as much as the convolutions)."""
    return [nn.Conv2d(cin, cout, 3, padding=1, bias=False), nn.MaxPool2d(2), nn.BatchNorm2d(cout), nn.ReLU()]


@register_model("bn-conv3-w16", "fast: 3 conv-pool-BN blocks (16-32-64), global max pool; ~99% in one epoch")
def bn_conv3(width: int = 16, crop: int = 0, deskew: bool = False, stem: str = "pool", fixed_stem: bool = False,
             mean: float = MNIST_MEAN, std: float = MNIST_STD) -> nn.Module:
    """`crop` reads only the central crop×crop pixels; `deskew` straightens each digit first
    (deskew.Deskew), which lets one epoch learn more; `stem` "stride2" makes the first block a
    stride-2 convolution instead of convolution + max-pooling. The fast recipe uses all three
    (crop 20): the full-size first activation and its pooling were a third of its step time.
    `fixed_stem` leaves the first block's weights (convolution, BatchNorm scale and shift) at their
    random initial values: 16 random 3x3 filters, batch-normalised, serve one epoch as well as
    trained ones, and nothing then needs the gradient of the second block's input."""
    if stem not in ("pool", "stride2"):
        raise DigitrecError(f"model: stem must be 'pool' or 'stride2', got {stem!r}")
    w = width
    first = (_conv_pool_bn(1, w) if stem == "pool" else _conv_bn(1, w, 3, 2))  # (B, w, side/2, side/2)
    for layer in first if fixed_stem else []:
        layer.requires_grad_(False)
    return nn.Sequential(  # a deskewing model crops as it resamples: the same pixels, fewer computed
        *([Deskew(out=crop), Normalize(mean, std)] if deskew else [Normalize(mean, std, crop=crop)]),
        *first,
        *_conv_pool_bn(w, 2 * w),  # (B, 2w, side/4, side/4)
        *_conv_bn(2 * w, 4 * w), nn.AdaptiveMaxPool2d(1), nn.Flatten(),  # (B, 4w)
        nn.Linear(4 * w, 10),
    )


@register_model("bn-conv6-w32", "accurate: 6 conv-BN blocks (32-32-32-64-64-64), dropout, dense 128")
def bn_conv6(width: int = 32, dropout: float = 0.3, deskew: bool = False, mean: float = MNIST_MEAN,
             std: float = MNIST_STD) -> nn.Module:
    """`deskew` straightens each digit first (deskew.Deskew): members that err differently."""
    w = width
    return nn.Sequential(
        *([Deskew()] if deskew else []),
        Normalize(mean, std),
        *_conv_bn(1, w), *_conv_bn(w, w), *_conv_bn(w, w, 5, 2), Dropout(dropout),  # (B, w, 14, 14)
        *_conv_bn(w, 2 * w), *_conv_bn(2 * w, 2 * w), *_conv_bn(2 * w, 2 * w, 5, 2), Dropout(dropout),  # 7x7
        nn.Flatten(), nn.Linear(2 * w * 49, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(), Dropout(dropout),
        nn.Linear(128, 10),
    )


class Ensemble(nn.Module):
    """Averages its members' probabilities; returns log-probabilities so softmax gives the average."""

    def __init__(self, members: list[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        probs = torch.stack([torch.softmax(m(x).float(), dim=1) for m in self.members])  # (M, B, 10)
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
            raise DigitrecError(f"--tta: unknown view set {views!r}; choose from {', '.join(TTA_VIEWS)}")
        views = TTA_VIEWS[views]
    return TestTimeAugment(create_model(base["arch"], **base.get("arch_kwargs", {})), views)


def with_tta(model: nn.Module, views: str) -> nn.Module:
    """`model` wrapped in test-time augmentation (sharing its weights); `views` "none" returns it."""
    if views == "none":
        return model
    wrapped = create_model("tta", base={"arch": model.arch, "arch_kwargs": model.arch_kwargs}, views=views)
    wrapped.base = model
    return wrapped


# --- summary ---


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
            model.eval()(torch.zeros(batch, 1, 28, 28))
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
