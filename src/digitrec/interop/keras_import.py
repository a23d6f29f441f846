"""A Keras model of a starting project's architecture → the same digitrec model.

Both networks are written as a list of operations (`Op`: conv, activation,
pool, flatten, dense) — the Keras one from its layer config, digitrec's from
the registered `nn.Sequential` itself — so recognition is a comparison of two
lists, and any registered model built from these pieces can be imported
without a table kept by hand. The weights then need three changes:

- Conv2D kernels are (kh, kw, in, out) in Keras (HWIO), (out, in, kh, kw) in torch (OIHW);
- Dense kernels are (in, out) in Keras, (out, in) in torch;
- Keras flattens (H, W, C) feature maps, torch (C, H, W): the first Dense after
  Flatten gets its input columns permuted so it reads torch's order.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from digitrec.errors import DigitrecError
from digitrec.interop.keras_file import KerasLayer, KerasModel, read_keras
from digitrec.models import Normalize, create_model, list_models
from digitrec.models.modelfile import load_state
from digitrec.util import SIDE

# Layers that do nothing at inference time.
_NO_OPS = {"InputLayer", "Dropout", "SpatialDropout2D", "GaussianNoise", "GaussianDropout", "AlphaDropout",
           "ActivityRegularization"}


@dataclass(frozen=True)
class Op:
    """One step of a network. Equal ops (kind and params) compute the same function; `where` names
    the Keras layer or the torch module index it comes from, for messages and weight mapping."""

    kind: str  # conv | act | pool | flatten | dense | other
    params: tuple = ()
    where: str = field(default="", compare=False)

    def describe(self) -> str:
        p = self.params
        if self.kind == "conv":
            extra = "" if p[2:] == (1, "valid", 1, 1, True) else f", strides={p[2]}, padding={p[3]!r}, " \
                f"dilation={p[4]}, groups={p[5]}, use_bias={p[6]}"
            return f"Conv2D({p[0]}, {p[1][0]}x{p[1][1]}{extra})"
        if self.kind == "pool":
            return f"MaxPooling2D({p[0][0]}x{p[0][1]}, strides={p[1]}, padding={p[2]!r})"
        if self.kind == "dense":
            return f"Dense({p[0]}{'' if p[1] else ', use_bias=False'})"
        if self.kind == "act":
            return f"activation {p[0]!r}"
        return "Flatten" if self.kind == "flatten" else str(p[0])


@dataclass
class Imported:
    model: nn.Module
    arch: str
    keras: KerasModel
    scaling: dict[str, Any]  # what the Keras model expected as input, and the mean/std that reproduce it


def import_keras(path: str | Path) -> Imported:
    """Read a `.keras`/`.h5` file, recognise its architecture, return the digitrec model with its weights."""
    keras = read_keras(path)
    ops, scaling = keras_ops(keras)
    arch, pairs = recognise(ops, keras.path)
    model = create_model(arch, mean=scaling["mean"], std=scaling["std"])
    load_state(model, convert_weights(keras, pairs), keras.path)
    return Imported(model.eval(), arch, keras, scaling)


# --- Keras config → ops ---


def keras_ops(keras: KerasModel) -> tuple[list[Op], dict[str, Any]]:
    """The model's ops after its input handling (InputLayer, a leading Rescaling, a Reshape to 28x28x1)."""
    _check_chain(keras)
    layers = [layer for layer in keras.layers if layer.class_name not in _NO_OPS]
    shape = keras.input_shape[1:] if keras.input_shape else (SIDE, SIDE, 1)
    rescaling = None  # without a Rescaling layer, the starting projects feed pixel / 255
    while layers and layers[0].class_name in ("Rescaling", "Reshape"):
        first = layers.pop(0)
        if first.class_name == "Reshape":
            shape = tuple(first.config.get("target_shape", ()))
        else:  # scale2 * (scale1 * pixel + offset1) + offset2
            scale, offset = _rescaling(first, keras.path)
            rescaling = (scale, offset) if rescaling is None else \
                (scale * rescaling[0], scale * rescaling[1] + offset)
    if tuple(shape) != (SIDE, SIDE, 1):
        raise DigitrecError(f"{keras.path}: the model takes input of shape {tuple(shape)}; digitrec models take "
                            f"(28, 28, 1) digits")
    return [op for layer in layers for op in _layer_ops(layer)], _scaling(rescaling)


def _check_chain(keras: KerasModel) -> None:
    """Functional models are fine when they are a plain chain: each layer fed by the one before."""
    for before, layer in zip(keras.layers, keras.layers[1:]):
        if layer.inbound is not None and layer.inbound != [before.name]:
            raise DigitrecError(f"{keras.path}: layer {layer.name!r} takes input from {layer.inbound}, not from "
                                f"{before.name!r}; only a single chain of layers can be imported")


def _rescaling(layer: KerasLayer, path: Path) -> tuple[float, float]:
    scale, offset = (_scalar(layer.config.get(k, d)) for k, d in (("scale", 1.0), ("offset", 0.0)))
    if scale is None or offset is None or scale == 0:
        raise DigitrecError(f"{path}: layer {layer.name!r}: Rescaling with per-channel or zero scale is not supported")
    return scale, offset


def _scalar(value: Any) -> float | None:
    if isinstance(value, list):
        return float(value[0]) if len(value) == 1 and isinstance(value[0], (int, float)) else None
    return float(value) if isinstance(value, (int, float)) else None


def _scaling(rescaling: tuple[float, float] | None) -> dict[str, Any]:
    """digitrec feeds x = pixel/255. Keras saw pixel/255 (the starting projects scale before the model)
    or, with a Rescaling layer, scale*pixel + offset = (x - mean)/std: std = 1/(255*scale), mean = -offset*std."""
    if rescaling is None:
        return {"keras_input": "pixel / 255", "mean": 0.0, "std": 1.0}
    scale, offset = rescaling
    std = 1.0 / (255.0 * scale)
    std = 1.0 if abs(std - 1.0) < 1e-9 else std
    return {"keras_input": f"pixel 0..255, then the model's Rescaling: pixel * {scale!r} + {offset!r}",
            "mean": -offset * std + 0.0, "std": std}


def _layer_ops(layer: KerasLayer) -> list[Op]:
    c, name = layer.config, layer.name
    if layer.class_name == "Conv2D":
        fmt = c.get("data_format") or "channels_last"
        params = (c.get("filters"), _pair(c.get("kernel_size")), _one(c.get("strides", 1)), c.get("padding", "valid"),
                  _one(c.get("dilation_rate", 1)), c.get("groups", 1), bool(c.get("use_bias", True)))
        conv = Op("conv", params, name) if fmt == "channels_last" else Op("other", (f"Conv2D({fmt})",), name)
        return [conv, *_activation(c.get("activation"), name)]
    if layer.class_name == "MaxPooling2D":
        size = _pair(c.get("pool_size", 2))
        return [Op("pool", (size, _one(c.get("strides") or size), c.get("padding", "valid")), name)]
    if layer.class_name == "Flatten":
        fmt = c.get("data_format") or "channels_last"
        return [Op("flatten", (), name) if fmt == "channels_last" else Op("other", (f"Flatten({fmt})",), name)]
    if layer.class_name == "Dense":
        return [Op("dense", (c.get("units"), bool(c.get("use_bias", True))), name),
                *_activation(c.get("activation"), name)]
    if layer.class_name in ("Activation", "Softmax"):
        return _activation(c.get("activation", "softmax"), name)
    if layer.class_name == "ReLU" and not c.get("max_value") and not c.get("negative_slope") \
            and not c.get("threshold"):
        return [Op("act", ("relu",), name)]
    return [Op("other", (layer.class_name,), name)]


def _activation(value: Any, where: str) -> list[Op]:
    if isinstance(value, dict):  # a serialised activation object
        value = (value.get("config") or {}).get("name") or value.get("class_name")
    name = str(value or "linear").lower()
    return [] if name == "linear" else [Op("act", (name,), where)]


def _pair(value: Any) -> tuple[int, int]:
    return (value, value) if isinstance(value, int) else tuple(value)


def _one(value: Any) -> Any:
    """(1, 1) → 1, (2, 2) → 2: square strides/dilations compare as one number."""
    pair = _pair(value)
    return pair[0] if pair[0] == pair[1] else pair


# --- registered digitrec models → ops ---


def torch_ops(model: nn.Module) -> list[Op] | None:
    """The ops of a flat nn.Sequential, or None when the model has pieces Keras configs cannot name."""
    if not isinstance(model, nn.Sequential):
        return None
    ops: list[Op] = []
    for idx, module in model.named_children():
        if isinstance(module, (Normalize, nn.Dropout)):
            continue  # Normalize takes the Keras input scaling; Dropout does nothing at inference
        op = _torch_op(module, idx)
        if op is None:
            return None
        ops.append(op)
    return ops


def _torch_op(m: nn.Module, idx: str) -> Op | None:
    if isinstance(m, nn.Conv2d):
        pad = "valid" if m.padding in (0, (0, 0)) else str(m.padding)
        return Op("conv", (m.out_channels, m.kernel_size, _one(m.stride), pad, _one(m.dilation), m.groups,
                           m.bias is not None), idx)
    if isinstance(m, nn.MaxPool2d) and not m.ceil_mode and m.padding in (0, (0, 0)):
        return Op("pool", (_pair(m.kernel_size), _one(m.stride), "valid"), idx)
    if isinstance(m, nn.ReLU):
        return Op("act", ("relu",), idx)
    if isinstance(m, nn.Flatten) and m.start_dim == 1:
        return Op("flatten", (), idx)
    if isinstance(m, nn.Linear):
        return Op("dense", (m.out_features, m.bias is not None), idx)
    return None


def canonical(ops: list[Op]) -> list[Op]:
    """Move each ReLU after the max-pool that follows it: the two commute (ReLU is monotone), and
    digitrec pools first because it is cheaper, while Keras configs usually say conv → relu → pool."""
    out = list(ops)
    for i in range(len(out) - 1):
        if out[i].kind == "act" and out[i].params == ("relu",) and out[i + 1].kind == "pool":
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


@lru_cache(maxsize=1)
def candidates() -> dict[str, tuple[Op, ...]]:
    """Every registered architecture whose network can be written as Keras layers."""
    out = {}
    for name in list_models("digit"):
        model = create_model(name)
        ops = torch_ops(model)
        if ops and isinstance(model[0], Normalize):
            out[name] = tuple(canonical(ops))
    return out


# --- recognition and weights ---


def recognise(ops: list[Op], path: Path) -> tuple[str, list[tuple[Op, Op]]]:
    """The architecture whose ops equal the Keras ops (a final softmax aside), and the (keras, torch)
    pairs of weighted ops; otherwise a one-line error at the first layer where the closest one differs."""
    if ops and ops[-1] == Op("act", ("softmax",)):
        ops = ops[:-1]  # Keras outputs probabilities, digitrec logits; the softmax of both is the same
    ops = canonical(ops)
    best, best_score = "", (-1, -1)
    for name, want in candidates().items():
        at = next((i for i, (a, b) in enumerate(zip(ops, want)) if a != b), min(len(ops), len(want)))
        if at == len(ops) == len(want):
            return name, [(a, b) for a, b in zip(ops, want) if a.kind in ("conv", "dense")]
        score = (at, sum(a == b for a, b in zip(ops, want)))  # longest equal start, then most equal ops
        if score > best_score:
            best, best_score = name, score
    want, best_at = candidates()[best], best_score[0]
    if best_at == len(ops):
        detail = f"the model ends after layer {ops[-1].where!r}" if ops else "the model has no layers"
        detail += f"; expected {want[best_at].describe()} next"
    elif best_at == len(want):
        detail = f"layer {ops[best_at].where!r}: found {ops[best_at].describe()} after where {best} ends"
    else:
        detail = f"layer {ops[best_at].where!r}: found {ops[best_at].describe()}, expected {want[best_at].describe()}"
    raise DigitrecError(f"{path}: not a digitrec architecture: {detail} (closest: {best}; "
                        f"importable: {', '.join(candidates())})")


def convert_weights(keras: KerasModel, pairs: list[tuple[Op, Op]]) -> dict[str, torch.Tensor]:
    """Keras kernels/biases → the torch state dict, with the Flatten order folded into the first Dense."""
    layers = {layer.name: layer for layer in keras.layers}
    state: dict[str, torch.Tensor] = {}
    channels, first_dense = 1, True
    for k_op, t_op in pairs:
        weights = layers[k_op.where].weights
        if "kernel" not in weights:
            raise DigitrecError(f"{keras.path}: layer {k_op.where!r} has no weights in the file")
        kernel = np.asarray(weights["kernel"], dtype=np.float32)
        if k_op.kind == "conv":
            kernel, channels = kernel.transpose(3, 2, 0, 1), t_op.params[0]  # (kh, kw, in, out) → (out, in, kh, kw)
        else:
            kernel = kernel.T  # (in, out) → (out, in)
            if first_dense:
                kernel, first_dense = _torch_flatten_order(kernel, channels), False
        state[f"{t_op.where}.weight"] = torch.from_numpy(np.ascontiguousarray(kernel))
        if "bias" in weights:
            state[f"{t_op.where}.bias"] = torch.from_numpy(np.asarray(weights["bias"], dtype=np.float32))
    return state


def _torch_flatten_order(kernel: np.ndarray, channels: int) -> np.ndarray:
    """(out, H*W*C) columns in Keras' (H, W, C) flatten order → torch's (C, H, W) order (square maps)."""
    side = math.isqrt(kernel.shape[1] // channels)
    if side * side * channels != kernel.shape[1]:
        return kernel  # not a square map: load_state reports the shape mismatch
    # torch column j holds feature (c, h, w); Keras holds it at column perm[j]
    perm = np.arange(kernel.shape[1]).reshape(side, side, channels).transpose(2, 0, 1).ravel()
    return kernel[:, perm]
