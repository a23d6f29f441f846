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


