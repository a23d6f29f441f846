"""Exporting a model file to ONNX (float or int8) and TorchScript.

Every exported graph takes what users hold, uint8 digits (B, 28, 28) with ink
bright, and returns probabilities (B, C): C is 10, or 11 for a model with the answer "not a digit"
(the shipped model), its last column. The pixel scaling is `models.predict.to_input` itself, traced
into the graph, so an exported model cannot
scale pixels differently from training. The model file's metadata (arch,
arch_kwargs, metrics, versions, …) travels with the export as JSON: in the ONNX
model's `metadata_props["digitrec"]`, in TorchScript's `_extra_files`.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from digitrec.errors import DigitrecError
from digitrec.interop.onnxmeta import (
    INPUT_NAME,
    META_KEY,
    OUTPUT_NAME,
    export_metadata,
    set_onnx_metadata,
)
from digitrec.models.modelfile import load_model
from digitrec.models.predict import to_input
from digitrec.util.files import atomic_write, check_writable_file

FORMATS = ("onnx", "torchscript")
SUFFIXES = {"onnx": ".onnx", "torchscript": ".pt"}
MIN_OPSET, DEFAULT_OPSET = 17, 17
CALIBRATION_IMAGES = 500  # training images; the test set is never used


class Deployable(nn.Module):
    """uint8 (B, 28, 28) → probabilities (B, C), C = 10 or 11: the whole inference path in one graph."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return torch.softmax(self.model(to_input(images)), dim=1)


def _example(batch: int = 2) -> torch.Tensor:
    # Batch 2, not 1: a batch of 1 lets the tracer specialise shapes that must stay dynamic.
    return torch.zeros(batch, 28, 28, dtype=torch.uint8)


def onnx_model(model: nn.Module, meta: dict[str, Any], opset: int = DEFAULT_OPSET):
    """Export to an `onnx.ModelProto` with a dynamic batch axis and the metadata, checked by onnx.checker.

    We use the TorchScript-based exporter (`dynamo=False`): torch 2.13 defaults to the
    torch.export one, which needs onnxscript as an extra dependency and gives these plain
    CNNs nothing the legacy exporter lacks; the legacy one is deterministic, fast (~0.1 s)
    and produces a graph of standard ops (Conv, MaxPool, Gemm, Softmax) for opset 17+.
    """
    import onnx

    if opset < MIN_OPSET:
        raise DigitrecError(f"must be at least {MIN_OPSET}, got {opset}", field="opset")
    buf = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # "legacy exporter": chosen on purpose, see above
        torch.onnx.export(Deployable(model).eval(), (_example(),), buf, dynamo=False, opset_version=opset,
                          input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}})
    proto = onnx.load_from_string(buf.getvalue())
    set_onnx_metadata(proto, export_metadata(meta, "onnx", opset=opset, quantize=None))
    onnx.checker.check_model(proto, full_check=True)
    return proto


def calibration_images(n: int = CALIBRATION_IMAGES, data: str | None = None, data_dir: str | None = None,
                       seed: int = 0) -> np.ndarray:
    """`n` random training images (uint8 (n, 28, 28)) from the training part of the usual split."""
    from digitrec.data import dataset as datamod
    from digitrec.pictures.folders import load_data

    if n < 1:
        raise DigitrecError(f"must be at least 1, got {n}", field="calibration_images")
    full, held_out = load_data(data, "train", data_dir), datamod.DEFAULT_VAL_SIZE
    # Leave out training's validation images when there are enough: calibration then sees only
    # images the model was trained on (a small dataset is used whole).
    train = datamod.train_val_split(full, held_out)[0] if len(full) > 2 * held_out else full
    pick = np.random.default_rng(seed).choice(len(train), size=min(n, len(train)), replace=False)
    return train.images[np.sort(pick)]


def torchscript_bytes(model: nn.Module, meta: dict[str, Any]) -> bytes:
    """A traced TorchScript module (uint8 in, probabilities out) with the metadata as an extra file.

    torch 2.13 marks torch.jit deprecated, yet TorchScript is still what C++ (libtorch) and
    older deployments load; the warning is silenced here because the user asked for this format.
    """
    buf = io.BytesIO()
    extra = {f"{META_KEY}.json": json.dumps(export_metadata(meta, "torchscript"))}
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        traced = torch.jit.trace(Deployable(model).eval(), (_example(),))
        torch.jit.save(traced, buf, _extra_files=extra)
    return buf.getvalue()


def load_torchscript(path: str | Path) -> tuple[torch.jit.ScriptModule, dict[str, Any]]:
    """(module, metadata) of a TorchScript export."""
    extra = {f"{META_KEY}.json": ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # see torchscript_bytes
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except (RuntimeError, ValueError, OSError) as exc:
        raise DigitrecError(f"{path}: not a readable TorchScript file ({str(exc).splitlines()[0]})") from None
    return module.eval(), json.loads(extra[f"{META_KEY}.json"] or "{}")


def onnx_bytes_for(model: nn.Module, meta: dict[str, Any], opset: int = DEFAULT_OPSET,
                   quantize: str | None = None, calibration: np.ndarray | None = None) -> bytes:
    """Serialised ONNX model, float or (quantize="int8") int8 calibrated on `calibration` images."""
    proto = onnx_model(model, meta, opset)
    if quantize is None:
        return proto.SerializeToString()
    if quantize != "int8":
        raise DigitrecError(f"unknown quantisation {quantize!r}; choose int8", field="quantize")
    # imports onnxruntime.quantization, slow: only when asked
    from digitrec.interop.int8 import quantize_int8

    images = calibration if calibration is not None else calibration_images()
    return quantize_int8(proto, images).SerializeToString()


def check_options(fmt: str, quantize: str | None, opset: int) -> None:
    """Every export option checked before the model or any calibration data is read."""
    if fmt not in FORMATS:
        raise DigitrecError(f"unknown format {fmt!r}; choose from {', '.join(FORMATS)}", field="format")
    if quantize not in (None, "int8"):
        raise DigitrecError(f"unknown quantisation {quantize!r}; choose int8", field="quantize")
    if quantize and fmt != "onnx":
        raise DigitrecError("int8 quantisation is only available for the onnx format", field="quantize")
    if opset < MIN_OPSET:
        raise DigitrecError(f"must be at least {MIN_OPSET}, got {opset}", field="opset")


def default_out(model_path: Path, fmt: str, quantize: str | None) -> Path:
    """model.safetensors → model.onnx, model.int8.onnx or model.pt beside it."""
    stem = model_path.name.removesuffix(".safetensors")
    return model_path.with_name(stem + (f".{quantize}" if quantize else "") + SUFFIXES[fmt])


def export_file(model_path: str | Path, fmt: str = "onnx", out: str | Path | None = None,
                quantize: str | None = None, opset: int = DEFAULT_OPSET,
                calibration: np.ndarray | None = None) -> Path:
    """Export a model file; the result is written atomically. Returns the written path."""
    check_options(fmt, quantize, opset)
    model_path = Path(model_path)
    target = check_writable_file(out if out else default_out(model_path, fmt, quantize), "out")
    model, meta = load_model(model_path)
    if fmt == "torchscript":
        data = torchscript_bytes(model, meta)
    else:
        data = onnx_bytes_for(model, meta, opset, quantize, calibration)
    atomic_write(target, data)
    return target
