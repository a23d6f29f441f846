"""onnxruntime backends: `onnx` (float) and `onnx-int8` (static int8), CPU.

Both take a `.onnx` file exported by `digitrec export` or a `.safetensors` model
file, which is exported in memory (and, for `onnx-int8`, quantised with
calibration on training images). The graph holds the whole inference path
(uint8 pixels → `to_input` scaling → model → softmax), so answers match the
torch backend to float rounding.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from digitrec.errors import DigitrecError
from digitrec.inference.backends import register_backend
from digitrec.interop.export import onnx_bytes_for
from digitrec.interop.onnxmeta import INPUT_NAME, onnx_metadata
from digitrec.models.calibration import calibrated
from digitrec.models.modelfile import load_model
from digitrec.util.system import usable_cores

CHUNK = 1024  # images per run: bounds activation memory (~110 MB for conv2-fc128) on big inputs
SMALL_BATCH = 16  # batches up to this size run on the single-thread session


def session_options(threads: int):
    """Options tuned for a small CPU: sequential graph (these CNNs have no parallel branches),
    every graph optimisation (Conv+Relu fusion, QDQ → QLinearConv), `threads` intra-op threads,
    and no spinning threads, which only steal cycles from other processes on a shared machine."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3  # errors only: no warnings about unused initialisers on stderr
    return opts


def default_threads() -> int:
    """Threads for large batches: torch's setting (`--threads`), at most the cores we may use."""
    import torch

    return max(1, min(torch.get_num_threads(), usable_cores()))


class OnnxBackend:
    """An onnxruntime session over an exported digitrec graph (uint8 in, probabilities out).

    Small batches (single images, the server's case) run on a one-thread session: waking
    a second thread costs more than it saves for 28×28 inputs. Big batches run on a session
    with `default_threads()` threads.
    """

    def __init__(self, model: bytes, metadata: dict[str, Any], name: str = "onnx", threads: int | None = None,
                 source: str | Path = "model") -> None:
        self.name = name
        self.metadata = metadata
        threads = threads or default_threads()
        self._single = _session(model, 1, source)
        self._multi = self._single if threads == 1 else _session(model, threads, source)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        """(N, 28, 28) uint8 (ink bright) → (N, C) float32 probabilities, calibrated as the file says."""
        return calibrated(self._raw(images), self.metadata)

    def _raw(self, images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, dtype=np.uint8)
        if images.ndim != 3 or images.shape[1:] != (28, 28):
            raise DigitrecError(f"expected shape (N, 28, 28), got {images.shape}", field="images")
        if len(images) == 0:
            return np.zeros((0, self.classes), dtype=np.float32)
        if len(images) <= SMALL_BATCH:
            return self._single.run(None, {INPUT_NAME: images})[0]
        out = [self._multi.run(None, {INPUT_NAME: images[i:i + CHUNK]})[0] for i in range(0, len(images), CHUNK)]
        return np.concatenate(out)

    @property
    def classes(self) -> int:
        return int(self._single.get_outputs()[0].shape[1] or 10)


def _session(model: bytes, threads: int, source: str | Path):
    """A CPU InferenceSession; onnxruntime's refusals (unsupported op, bad graph) become one line."""
    import onnxruntime as ort
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    refusals = (state.Fail, state.InvalidGraph, state.InvalidArgument, state.InvalidProtobuf, state.NotImplemented)
    try:
        return ort.InferenceSession(model, session_options(threads), providers=["CPUExecutionProvider"])
    except refusals as exc:
        raise DigitrecError(f"{source}: onnxruntime cannot run this model ({str(exc).splitlines()[0]})") from None


def read_onnx(path: Path) -> tuple[bytes, dict[str, Any]]:
    """(model bytes, digitrec metadata) of an exported .onnx file, with one-line errors."""
    import onnx
    from google.protobuf.message import DecodeError

    if not path.is_file():
        raise DigitrecError(f"{path}: ONNX file not found")
    data = path.read_bytes()
    try:
        proto = onnx.load_from_string(data)
        onnx.checker.check_model(proto)
    except (DecodeError, onnx.checker.ValidationError, ValueError) as exc:
        raise DigitrecError(f"{path}: not a readable ONNX model ({str(exc).splitlines()[0] or 'corrupt'})") from None
    return data, onnx_metadata(proto, path)


def _check_device(device: str) -> None:
    if device not in ("auto", "cpu"):
        raise DigitrecError(f"the onnx backends run on the CPU only, not {device!r}", field="device")


def load_onnx(path: str | Path, device: str = "auto", quantize: str | None = None, **kw) -> OnnxBackend:
    """The `onnx` loader: an exported .onnx file, or a .safetensors model exported in memory."""
    _check_device(device)
    path = Path(path)
    name = "onnx-int8" if quantize else "onnx"
    if path.suffix.lower() == ".onnx":
        data, meta = read_onnx(path)
        quantized = (meta.get("export", {}).get("quantize") or {}).get("type")
        return OnnxBackend(data, meta, "onnx-int8" if quantized else "onnx", source=path, **kw)
    model, meta = load_model(path)
    return OnnxBackend(onnx_bytes_for(model, meta, quantize=quantize), meta, name, source=path, **kw)


def load_onnx_int8(path: str | Path, device: str = "auto", **kw) -> OnnxBackend:
    """The `onnx-int8` loader: a .safetensors model is quantised on the fly (a few seconds)."""
    return load_onnx(path, device, quantize="int8", **kw)


register_backend("onnx", load_onnx)
register_backend("onnx-int8", load_onnx_int8)
