"""The networks: the starting projects' architectures and digitrec's own BatchNorm CNNs.

Every digit model takes (B, 1, 28, 28) float images in [0, 1] (ink = 1) and returns (B, 10) logits,
or (B, 11) with the answer "not a digit" (`classes=11`, the shipped model); a line reader
(`reads="line"`) takes (B, 1, 32, W) lines and returns (B, W/4, 11) frames of CTC scores.
Input normalisation is the model's first layer, so whatever runs a model (training, the CLI, the
server, ONNX) feeds it the same thing.
"""

from __future__ import annotations

import torch
from torch import nn

from digitrec.errors import DigitrecError
from digitrec.models.deskew import Deskew
from digitrec.models.layers import MNIST_MEAN, MNIST_STD, Dropout, Normalize
from digitrec.models.registry import register_model

# A small, typical network: the export tests and the inference benchmark default to it. (The package
# ships a `best`-recipe model, bn-conv6-w32 read through test-time views: weights/default.safetensors.)
# the network `digitrec train` builds when no --model or recipe says otherwise: starting project A's
DEFAULT_NETWORK = "conv2-fc64"


def check_classes(classes: int) -> None:
    if classes not in (10, 11):
        raise DigitrecError(f"classes must be 10 (digits) or 11 (digits and 'not a digit'), got {classes}",
                            field="model")


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
             mean: float = MNIST_MEAN, std: float = MNIST_STD, classes: int = 10) -> nn.Module:
    """`crop` reads only the central crop×crop pixels; `deskew` straightens each digit first
    (deskew.Deskew), which lets one epoch learn more; `stem` "stride2" makes the first block a
    stride-2 convolution instead of convolution + max-pooling. The fast recipe uses all three
    (crop 20): the full-size first activation and its pooling were a third of its step time.
    `fixed_stem` leaves the first block's weights (convolution, BatchNorm scale and shift) at their
    random initial values: 16 random 3x3 filters, batch-normalised, serve one epoch as well as
    trained ones, and nothing then needs the gradient of the second block's input. `classes` 11 adds
    the answer "not a digit" (training with synthetic non-digits, the `not_digits` setting)."""
    check_classes(classes)
    if stem not in ("pool", "stride2"):
        raise DigitrecError(f"stem must be 'pool' or 'stride2', got {stem!r}", field="model")
    w = width
    first = (_conv_pool_bn(1, w) if stem == "pool" else _conv_bn(1, w, 3, 2))  # (B, w, side/2, side/2)
    for layer in first if fixed_stem else []:
        layer.requires_grad_(False)
    return nn.Sequential(  # a deskewing model crops as it resamples: the same pixels, fewer computed
        *([Deskew(out=crop), Normalize(mean, std)] if deskew else [Normalize(mean, std, crop=crop)]),
        *first,
        *_conv_pool_bn(w, 2 * w),  # (B, 2w, side/4, side/4)
        *_conv_bn(2 * w, 4 * w), nn.AdaptiveMaxPool2d(1), nn.Flatten(),  # (B, 4w)
        nn.Linear(4 * w, classes),
    )


@register_model("bn-conv6-w32", "accurate: 6 conv-BN blocks (32-32-32-64-64-64), dropout, dense 128")
def bn_conv6(width: int = 32, dropout: float = 0.3, deskew: bool = False, mean: float = MNIST_MEAN,
             std: float = MNIST_STD, classes: int = 10) -> nn.Module:
    """`deskew` straightens each digit first (deskew.Deskew): members that err differently. `classes`
    11 adds the answer "not a digit"."""
    check_classes(classes)
    w = width
    return nn.Sequential(
        *([Deskew()] if deskew else []),
        Normalize(mean, std),
        *_conv_bn(1, w), *_conv_bn(w, w), *_conv_bn(w, w, 5, 2), Dropout(dropout),  # (B, w, 14, 14)
        *_conv_bn(w, 2 * w), *_conv_bn(2 * w, 2 * w), *_conv_bn(2 * w, 2 * w, 5, 2), Dropout(dropout),  # 7x7
        nn.Flatten(), nn.Linear(2 * w * 49, 128, bias=False), nn.BatchNorm1d(128), nn.ReLU(), Dropout(dropout),
        nn.Linear(128, classes),
    )


# --- reading a line of digits: a convolutional-recurrent network with a CTC output ---

LINE_HEIGHT = 32  # the line reader's input height (pixels); its width is free
LINE_STRIDE = 4  # input columns per output frame
BLANK = 10  # the CTC "no digit here" class; 0-9 are the digits


def _strided(cin: int, cout: int, stride: tuple[int, int]) -> list[nn.Module]:
    """Conv → BatchNorm → ReLU that folds `stride` rows into one (kernel as high as the stride, 3 wide)."""
    return [nn.Conv2d(cin, cout, (stride[0], 3), stride, padding=(0, 1), bias=False), nn.BatchNorm2d(cout),
            nn.ReLU()]


class LineReader(nn.Module):
    """(B, 1, 32, W) float ink (bright on 0) → (B, W/4, 11) logits: per frame of 4 columns, the digits and
    CTC's blank. Convolutions over the line see each digit's shape; dilated convolutions along the frames
    (13 frames, about two digits, either side) see its neighbours, so digits that touch or overlap are
    told apart by what comes before and after. (A recurrent layer did the same at several times the
    cost on this CPU.)"""

    example_input = (1, 32, 128)  # one channel, 32 pixels tall, about five digits wide (for summaries)

    def __init__(self, width: int = 16, context: int = 128) -> None:
        super().__init__()
        w = width
        # strided convolutions rather than max-pooling: on this CPU the pooling layers and their backward
        # cost more than the convolutions of these small maps
        self.features = nn.Sequential(
            Normalize(MNIST_MEAN, MNIST_STD),
            *_conv_bn(1, w, 3, 2),  # (B, w, 16, W/2)
            *_conv_bn(w, 2 * w, 3, 2),  # (B, 2w, 8, W/4)
            *_conv_bn(2 * w, 3 * w),  # (B, 3w, 8, W/4)
            *_strided(3 * w, 4 * w, (2, 1)),  # (B, 4w, 4, W/4)
            *_strided(4 * w, 4 * w, (4, 1)),  # (B, 4w, 1, W/4)
        )
        self.context = nn.Sequential(
            nn.Conv1d(4 * w, context, 5, padding=2, bias=False), nn.BatchNorm1d(context), nn.ReLU(),
            nn.Conv1d(context, context, 5, padding=4, dilation=2, bias=False), nn.BatchNorm1d(context), nn.ReLU(),
            nn.Conv1d(context, BLANK + 1, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.context(self.features(x).squeeze(2)).transpose(1, 2)  # (B, W/4, 11)


@register_model("line-ctc", "numbers: reads a whole line of digits (touching, overlapping) with a CTC output",
                reads="line")
def line_ctc(width: int = 16, context: int = 128) -> nn.Module:
    return LineReader(width, context)
