"""Reading Keras model files without Keras: a `.keras` zip or a legacy `.h5`.

Importing Keras (and a backend) to read a few arrays would cost seconds and a
heavy dependency, and the two formats are plain containers: a `.keras` file
is a zip of `config.json`, `metadata.json` and `model.weights.h5`; a legacy
`.h5` is HDF5 with a JSON `model_config` attribute and a `model_weights`
group. So `zipfile`, `json` and `h5py` are enough. This module only reads;
deciding which digitrec architecture a file holds is `keras_import`'s job.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from digitrec.errors import DigitrecError

_ZIP_MAGIC = b"PK\x03\x04"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
# Damage to a zip, its JSON or its HDF5 surfaces as any of these; JSON that is not a Keras
# config (a list where a dict belongs, …) as the last three.
_READ_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, KeyError, ValueError, TypeError, AttributeError,
                IndexError)


@dataclass
class KerasLayer:
    name: str
    class_name: str  # "Conv2D", "Dense", …
    config: dict[str, Any]
    inbound: list[str] | None = None  # functional models: names of the layers feeding this one
    weights: dict[str, np.ndarray] = field(default_factory=dict)  # "kernel", "bias"


@dataclass
class KerasModel:
    path: Path
    file_format: str  # "keras" (zip) or "h5" (legacy HDF5)
    model_class: str  # "Sequential", "Functional", …
    layers: list[KerasLayer]
    input_shape: tuple | None  # (None, 28, 28, 1) for a starting project's model
    keras_version: str
    backend: str | None
    sha256: str


def read_keras(path: str | Path) -> KerasModel:
    """Config and weights of a Keras model file; damage of any kind becomes a one-line DigitrecError."""
    path = Path(path)
    if path.is_dir():
        raise DigitrecError(f"{path}: is a folder (a TensorFlow SavedModel?); save the model as .keras or .h5")
    if not path.is_file():
        raise DigitrecError(f"{path}: Keras model file not found")
    with path.open("rb") as f:
        magic = f.read(8)
    try:
        if magic.startswith(_ZIP_MAGIC):
            return _read_zip(path)
        if magic == _HDF5_MAGIC:
            return _read_legacy_h5(path)
    except DigitrecError:
        raise
    except _READ_ERRORS as exc:
        raise DigitrecError(f"{path}: not a readable Keras model file "
                            f"(truncated or corrupt: {_one_line(exc)})") from None
    raise DigitrecError(f"{path}: not a Keras model file (neither a .keras zip nor an HDF5 .h5)")


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


# --- `.keras` (Keras 3, tf.keras 2.13+): zip(config.json, metadata.json, model.weights.h5) ---


def _read_zip(path: Path) -> KerasModel:
    with zipfile.ZipFile(path) as z:
        names = set(z.namelist())
        for needed in ("config.json", "model.weights.h5"):
            if needed not in names:
                raise DigitrecError(f"{path}: zip without {needed}; not a Keras 3 .keras model file")
        config = json.loads(z.read("config.json"))
        meta = json.loads(z.read("metadata.json")) if "metadata.json" in names else {}
        weights = z.read("model.weights.h5")
    layers = _layers_from_config(config, path)
    with h5py.File(io.BytesIO(weights), "r") as h5:
        _fill_weights_zip(layers, h5)
    return KerasModel(path, "keras", config.get("class_name", "?"), layers, _input_shape(config),
                      str(meta.get("keras_version", "unknown")), None, _sha256(path))


def _fill_weights_zip(layers: list[KerasLayer], h5: h5py.File) -> None:
    """Keras 3 keeps a layer's (kernel, bias) in `layers/<snake_case class>[_k]/vars/{0,1}` for the
    k-th layer of its class (the `vars` group also carries the layer's name, preferred when present);
    tf.keras 2.13-2.15 in `_layer_checkpoint_dependencies/<layer name>/vars/{0,1}`."""
    keras3 = h5["layers"] if "layers" in h5 else {}
    tf_keras = h5["_layer_checkpoint_dependencies"] if "_layer_checkpoint_dependencies" in h5 else {}
    by_name = {g["vars"].attrs.get("name"): g for g in keras3.values() if "vars" in g}
    seen: dict[str, int] = {}
    for layer in layers:
        snake = _snake_case(layer.class_name)
        k = seen[snake] = seen.get(snake, -1) + 1
        group = by_name.get(layer.name) or tf_keras.get(layer.name) or keras3.get(snake if k == 0 else f"{snake}_{k}")
        if group is None or "vars" not in group:
            continue
        arrays = [np.asarray(group["vars"][key]) for key in sorted(group["vars"], key=int)]
        layer.weights = dict(zip(("kernel", "bias"), arrays))


def _snake_case(name: str) -> str:
    """Keras' naming.to_snake_case for the layer classes we read: Conv2D → conv2d, MaxPooling2D → max_pooling2d."""
    out = ""
    for i, ch in enumerate(name):
        if ch.isupper() and i and (name[i - 1].islower() or (i + 1 < len(name) and name[i + 1].islower())):
            out += "_"
        out += ch.lower()
    return out


# --- legacy `.h5` (Keras 2 and Keras 3's h5 writer) ---


def _read_legacy_h5(path: Path) -> KerasModel:
    with h5py.File(path, "r") as h5:
        if "model_config" not in h5.attrs:
            raise DigitrecError(f"{path}: HDF5 file without a model_config (weights only?); save the whole model")
        config = json.loads(_text(h5.attrs["model_config"]))
        layers = _layers_from_config(config, path)
        group = h5["model_weights"] if "model_weights" in h5 else h5
        for layer in layers:
            if layer.name in group:
                layer.weights = _legacy_layer_weights(group[layer.name])
        version = _text(h5.attrs.get("keras_version", group.attrs.get("keras_version", "unknown")))
        backend = h5.attrs.get("backend")
    return KerasModel(path, "h5", config.get("class_name", "?"), layers, _input_shape(config),
                      version, _text(backend) if backend is not None else None, _sha256(path))


def _legacy_layer_weights(group: h5py.Group) -> dict[str, np.ndarray]:
    """`weight_names` lists the datasets in order, e.g. 'sequential/dense/kernel' or Keras 2's 'dense/kernel:0'."""
    out = {}
    for name in group.attrs.get("weight_names", []):
        name = _text(name)
        short = name.rsplit("/", 1)[-1].split(":")[0]
        out[short] = np.asarray(group[name])
    return out


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


# --- the model config (same JSON in both formats, with Keras 2 and 3 spellings) ---


def _entries(config: dict[str, Any]) -> Any:
    inner = config.get("config")
    return inner if isinstance(inner, list) else (inner or {}).get("layers")  # Keras 2.2 Sequential: a list


def _layers_from_config(config: dict[str, Any], path: Path) -> list[KerasLayer]:
    entries = _entries(config)
    if not isinstance(entries, list) or not entries:
        raise DigitrecError(f"{path}: model config lists no layers (class {config.get('class_name')!r})")
    functional = config.get("class_name") not in ("Sequential",)
    layers = []
    for entry in entries:
        cfg = entry.get("config", {})
        name = entry.get("name") or cfg.get("name") or "?"
        inbound = sorted(set(_inbound_names(entry.get("inbound_nodes", [])))) if functional else None
        layers.append(KerasLayer(name, entry.get("class_name", "?"), cfg, inbound))
    return layers


def _inbound_names(nodes: Any) -> list[str]:
    """Layer names feeding a functional layer: Keras 3 nests `keras_history: [name, node, index]`,
    Keras 2 writes `[[name, node, index, kwargs], …]`."""
    if isinstance(nodes, dict):
        if "keras_history" in nodes:
            return [nodes["keras_history"][0]]
        return [n for v in nodes.values() for n in _inbound_names(v)]
    if isinstance(nodes, list):
        if len(nodes) >= 3 and isinstance(nodes[0], str) and isinstance(nodes[1], int):
            return [nodes[0]]
        return [n for v in nodes for n in _inbound_names(v)]
    return []


def _input_shape(config: dict[str, Any]) -> tuple | None:
    """The first of: the InputLayer's shape, the first layer's batch_input_shape, the model's build shape."""
    inner = config.get("config") if isinstance(config.get("config"), dict) else {}
    first = _entries(config)[0]
    candidates = [first.get("config", {}).get(k) for k in ("batch_shape", "batch_input_shape")]
    candidates += [inner.get("build_input_shape"), (first.get("build_config") or {}).get("input_shape"),
                   (config.get("build_config") or {}).get("input_shape")]
    for shape in candidates:
        if isinstance(shape, list) and shape and all(isinstance(d, (int, type(None))) for d in shape):
            return tuple(shape)
    return None
