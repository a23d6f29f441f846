"""The model registry: name → constructor, as in timm. Every model file names its architecture
here, so `create_model(meta["arch"], **meta["arch_kwargs"])` rebuilds any saved network.
"""

from __future__ import annotations

import inspect
from typing import Callable

from torch import nn

from digitrec.errors import DigitrecError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
_DESCRIPTIONS: dict[str, str] = {}
_READS: dict[str, str] = {}


def register_model(name: str, description: str, reads: str = "digit") -> Callable:
    """Decorator: add a constructor to the registry under `name`. `reads` says what a network takes in:
    "digit" (a 28×28 picture, ten or eleven class scores out) or "line" (a 32-pixel-tall line of digits,
    a CTC sequence out), so code and tests that feed digits only pick the digit readers."""

    def wrap(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:  # a second network under one name would silently replace the first
            raise ValueError(f"model name {name!r} is registered twice ({_REGISTRY[name].__qualname__} "
                             f"and {fn.__qualname__})")
        if reads not in ("digit", "line"):
            raise ValueError(f"model {name!r}: reads must be 'digit' or 'line', got {reads!r}")
        _REGISTRY[name] = fn
        _DESCRIPTIONS[name] = description
        _READS[name] = reads
        return fn

    return wrap


def list_models(reads: str | None = None) -> list[str]:
    """Every registered name, or only those that read `reads` ("digit" or "line")."""
    return sorted(n for n in _REGISTRY if reads is None or _READS[n] == reads)


def reads(name: str) -> str:
    """What registered model `name` takes in: "digit" or "line"."""
    return _READS[name]


def describe(name: str) -> str:
    return _DESCRIPTIONS[name]


def create_model(name: str, **kwargs) -> nn.Module:
    """Build a registered model; `arch` and `arch_kwargs` ride along so model files can rebuild it."""
    if name not in _REGISTRY:
        raise DigitrecError(f"unknown model {name!r}; choose from {', '.join(list_models())}", field="model")
    try:
        model = _REGISTRY[name](**kwargs)
    except TypeError as exc:
        raise DigitrecError(f"bad settings for {name!r}: {exc}", field="model") from None
    model.arch = name
    model.arch_kwargs = dict(kwargs)
    return model


def accepts(name: str, argument: str) -> bool:
    """Whether registered model `name` takes the keyword `argument` (e.g. `classes`)."""
    return name in _REGISTRY and argument in inspect.signature(_REGISTRY[name]).parameters


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


