"""Model files and checkpoints: safetensors weights plus JSON metadata, never pickle.

A model file carries the architecture name and its arguments, so any tool can
rebuild the network from the file alone. Everything is written to a temporary
name and renamed, so a crash never leaves a half-written file behind.
"""

from __future__ import annotations

import hashlib
import json
import platform
from importlib import resources
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save
from torch import nn

from digitrec.errors import DigitrecError
from digitrec.models.registry import create_model
from digitrec.util.files import atomic_path

FORMAT = "digitrec-model"
CHECKPOINT_FORMAT = "digitrec-checkpoint"
FORMAT_VERSION = 1


def shipped_model_path() -> Path:
    """The model shipped inside the package (src/digitrec/weights/default.safetensors)."""
    return Path(str(resources.files("digitrec") / "weights" / "default.safetensors"))


def shipped_number_reader_path() -> Path:
    """The line reader shipped inside the package (weights/numbers.safetensors, recipe `numbers`)."""
    return Path(str(resources.files("digitrec") / "weights" / "numbers.safetensors"))


def versions() -> dict[str, str]:
    from digitrec import __version__

    return {"digitrec": __version__, "torch": torch.__version__, "python": platform.python_version()}


def _atomic_save(tensors: dict[str, torch.Tensor], meta: dict[str, Any], path: Path) -> None:
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    meta = {**meta, "weights_sha256": weights_digest(tensors)}
    # serialised here and written by Python, not by safetensors' save_file: a full disk or a file-size limit
    # is then an OSError with its errno (atomic_path: a one-line CannotWrite), not a SafetensorError
    data = save(tensors, metadata={"digitrec": json.dumps(meta)})
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def weights_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name and bytes: safetensors itself would load flipped bits silently."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        h.update(name.encode())
        h.update(tensors[name].detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _read(path: Path, kind: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read tensors and metadata, turning every kind of damage into a one-line error."""
    path = Path(path)
    if not path.is_file():
        raise DigitrecError(f"{path}: {kind} file not found")
    try:
        with safe_open(str(path), framework="pt") as f:
            header = f.metadata() or {}
            tensors = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise DigitrecError(f"{path}: not a readable safetensors {kind} file (truncated or corrupt: {exc})") from None
    try:
        meta = json.loads(header["digitrec"])
    except (KeyError, ValueError):
        raise DigitrecError(f"{path}: safetensors file without digitrec metadata") from None
    if meta.get("weights_sha256") not in (None, weights_digest(tensors)):
        raise DigitrecError(f"{path}: weights are corrupt (checksum mismatch)")
    return tensors, meta


def save_model(model: nn.Module, path: str | Path, metadata: dict[str, Any] | None = None) -> None:
    """Write weights and metadata (architecture, its arguments, versions, plus `metadata`)."""
    meta = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "arch": model.arch,
        "arch_kwargs": model.arch_kwargs,
        "input": {"shape": [1, 28, 28], "range": "0..1 = pixel/255, ink bright, background 0"},
        "versions": versions(),
        **(metadata or {}),
    }
    _atomic_save(model.state_dict(), meta, Path(path))


def build_from_meta(meta: dict[str, Any], source: Path) -> nn.Module:
    try:
        return create_model(meta["arch"], **meta.get("arch_kwargs", {}))
    except KeyError:
        raise DigitrecError(f"{source}: metadata names no architecture") from None
    except DigitrecError as exc:
        raise DigitrecError(f"{source}: {exc}") from None


def load_state(model: nn.Module, state: dict[str, torch.Tensor], source: Path) -> None:
    """load_state_dict, with a one-line error when the weights belong to another architecture."""
    own = model.state_dict()
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    wrong = sorted(k for k in set(own) & set(state) if own[k].shape != state[k].shape)
    if missing or extra or wrong:
        detail = (missing and f"missing {missing[0]}") or (extra and f"unexpected {extra[0]}") or (
            f"{wrong[0]} is {tuple(state[wrong[0]].shape)}, expected {tuple(own[wrong[0]].shape)}"
        )
        raise DigitrecError(f"{source}: weights do not fit architecture {getattr(model, 'arch', '?')} ({detail})")
    model.load_state_dict(state)


def load_model(path: str | Path) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model a file describes, load its weights, return (model in eval mode, metadata)."""
    path = Path(path)
    tensors, meta = _read(path, "model")
    if meta.get("format") != FORMAT:
        raise DigitrecError(f"{path}: not a digitrec model file (format {meta.get('format')!r})")
    model = build_from_meta(meta, path)
    load_state(model, tensors, path)
    return model.eval(), meta


def read_metadata(path: str | Path) -> dict[str, Any]:
    """Only the metadata (the report, ensembles, the server's /v1/model), without building the model."""
    return _read(Path(path), "model")[1]


# --- checkpoints: model + optimizer + scheduler + loop state, in one safetensors file ---


def _flatten(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace every tensor in a nested state by a key into `tensors`; the rest stays JSON."""
    if isinstance(obj, torch.Tensor):
        tensors[prefix] = obj
        return {"__tensor__": prefix}
    if isinstance(obj, dict):
        return {"__dict__": [[_flatten(k, f"{prefix}.k{i}", tensors), _flatten(v, f"{prefix}.{i}", tensors)]
                             for i, (k, v) in enumerate(obj.items())]}
    if isinstance(obj, (list, tuple)):
        return [_flatten(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
    return obj


def _unflatten(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(obj, dict) and "__tensor__" in obj:
        return tensors[obj["__tensor__"]]
    if isinstance(obj, dict) and "__dict__" in obj:
        return {_unflatten(k, tensors): _unflatten(v, tensors) for k, v in obj["__dict__"]}
    if isinstance(obj, list):
        return [_unflatten(v, tensors) for v in obj]
    return obj


def save_checkpoint(path: str | Path, states: dict[str, Any], info: dict[str, Any]) -> None:
    """Save named state dicts (model, optimizer, …) and JSON `info` (epoch, history, config)."""
    tensors: dict[str, torch.Tensor] = {}
    skeleton = {name: _flatten(state, name, tensors) for name, state in states.items()}
    meta = {"format": CHECKPOINT_FORMAT, "format_version": FORMAT_VERSION, "states": skeleton, "info": info}
    _atomic_save(tensors, meta, Path(path))


def load_checkpoint(path: str | Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """Inverse of `save_checkpoint`: (named states, info)."""
    path = Path(path)
    tensors, meta = _read(path, "checkpoint")
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise DigitrecError(f"{path}: not a digitrec checkpoint (format {meta.get('format')!r})")
    states = {name: _unflatten(s, tensors) for name, s in meta["states"].items()}
    return states, meta["info"]
