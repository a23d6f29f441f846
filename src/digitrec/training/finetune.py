"""Fine-tuning a model file on a person's own pictures without forgetting MNIST.

`digitrec train --init MODEL --data DIR`, `Recognizer.finetune` and bench/finetune.py all come here,
through `run.train_run` (so a fine-tuning run has the run folder, checkpoints and --resume of any run):

- the network, its arguments and its test-time views come from MODEL's file, and training starts
  from its weights (the bare network; the views wrap it again when the model is saved);
- the person's pictures are split per digit: `val_share` of each digit is held out (measured before
  and after, never trained on), the rest is repeated up to `min_pictures` (each copy augmented anew);
- `replay` of the training set is MNIST training digits from the part of the usual split that
  leaves out MNIST's validation digits, so the model keeps what it knew; a model that can answer
  "not a digit" also sees synthetic non-digits (its `not_digits` share), so it keeps that answer;
- the nearest-prototype head of the person's training pictures is folded into the last layer
  (`prototypes`, training/prototypes.py), before anything is measured;
- the saved model's temperature (and not-a-digit threshold) are fitted again on validation: the
  person's held-out pictures plus MNIST validation digits (`calibration`). Why: docs/finetune.md.
"""

from __future__ import annotations

import functools
import math
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from digitrec.data import dataset as datamod
from digitrec.errors import DigitrecError
from digitrec.models import TTA_VIEWS
from digitrec.models.modelfile import FORMAT, load_model, read_metadata, shipped_model_path
from digitrec.models.predict import predict_proba
from digitrec.synth.banks import nondigit_bank
from digitrec.training.calibration import calibrate
from digitrec.training.config import TrainConfig
from digitrec.training.metrics import digit_answers
from digitrec.training.prototypes import fold_prototypes
from digitrec.training.recipes import FINETUNE
from digitrec.util import SIDE

SHIPPED = "default"  # --init default: the model shipped in the package
DEFAULT_NOT_DIGITS = 0.3  # the shipped recipe's share, for a base model file that does not record its own
CALIBRATION_MNIST = 1000  # MNIST validation digits beside the person's held-out pictures when calibrating
MIN_CALIBRATION = 200  # fewer validation pictures than this: the base model's calibration is kept


def init_path(init: str) -> Path:
    """The model file `--init` names ("default" = the shipped model)."""
    return shipped_model_path() if init == SHIPPED else Path(init)


def read_init(init: str) -> dict[str, Any]:
    """The metadata of the model file `init`, checked: a digitrec model of 1×28×28 digits, not an ensemble."""
    path = init_path(init)
    try:
        meta = read_metadata(path)
    except DigitrecError as exc:
        raise DigitrecError(exc.message, field="init") from None
    if meta.get("format") != FORMAT:
        raise DigitrecError(f"{path}: not a digitrec model file (format {meta.get('format')!r})", field="init")
    shape = (meta.get("input") or {}).get("shape")
    if shape != [1, SIDE, SIDE]:
        shown = "x".join(map(str, shape)) if isinstance(shape, list) else repr(shape)
        raise DigitrecError(f"{path}: the model reads {shown} inputs, digitrec's digits are 1x28x28", field="init")
    if meta.get("arch") == "ensemble":
        raise DigitrecError(f"{path}: an ensemble cannot be fine-tuned as one network; fine-tune a member",
                            field="init")
    return meta


def network_settings(meta: dict[str, Any], init: str) -> dict[str, Any]:
    """`model`, `model_kwargs` and `tta` of the network inside a model file (test-time views unwrapped)."""
    arch, kwargs = meta.get("arch"), dict(meta.get("arch_kwargs") or {})
    if arch != "tta":
        return {"model": arch, "model_kwargs": kwargs, "tta": "none"}
    views = kwargs.get("views", "rot-zoom")
    named = [name for name, v in TTA_VIEWS.items() if name == views or [list(x) for x in v] == views]
    if not named or named[0] == "none":
        raise DigitrecError(f"{init_path(init)}: its test-time views are not one of the named sets "
                            f"({', '.join(TTA_VIEWS)})", field="init")
    base = kwargs.get("base") or {}
    return {"model": base.get("arch"), "model_kwargs": dict(base.get("arch_kwargs") or {}), "tta": named[0]}


def finetune_config(init: str = SHIPPED, **overrides: Any) -> TrainConfig:
    """The fine-tuning settings (recipes.FINETUNE) for the network in `init`'s file (a model that can say
    "not a digit" keeps seeing non-digits, in the share it was trained with), then `overrides`."""
    meta = read_init(init)
    settings = network_settings(meta, init)
    if settings["model_kwargs"].get("classes", 10) > 10:
        settings["not_digits"] = float((meta.get("training") or {}).get("not_digits") or DEFAULT_NOT_DIGITS)
    return replace(TrainConfig(**FINETUNE), **{"init": init, **settings, **overrides})


def init_weights(init: str) -> dict[str, torch.Tensor]:
    """The bare network's weights in the model file `init` (the network inside its test-time views)."""
    try:
        model, meta = load_model(init_path(init))
    except DigitrecError as exc:
        raise DigitrecError(exc.message, field="init") from None
    return (model.base if meta["arch"] == "tta" else model).state_dict()


def mnist_split(cfg: TrainConfig) -> tuple[datamod.Dataset, datamod.Dataset]:
    """MNIST's training digits and validation digits, split as every digitrec run splits them."""
    return _mnist_split(str(datamod.default_data_dir(cfg.data_dir)))


@functools.lru_cache(maxsize=1)
def _mnist_split(data_dir: str) -> tuple[datamod.Dataset, datamod.Dataset]:
    """Read once per process: replay and calibration both need it (47 MB, kept while fine-tuning)."""
    return datamod.train_val_split(datamod.load_mnist("train", data_dir), datamod.DEFAULT_VAL_SIZE)


def training_set(cfg: TrainConfig, mine: datamod.Dataset,
                 mnist_train: datamod.Dataset | None) -> tuple[datamod.Dataset, dict[str, Any]]:
    """The person's training pictures, repeated up to `min_pictures`, plus `replay` of MNIST training
    digits and, for a model that can say "not a digit", `not_digits` of synthetic non-digits cut from those."""
    copies = max(1, math.ceil(cfg.min_pictures / max(1, len(mine))))
    parts = [mine.subset(np.tile(np.arange(len(mine)), copies), mine.source)]
    n_replay = round(len(parts[0]) * cfg.replay / (1 - cfg.replay)) if mnist_train is not None else 0
    if n_replay:
        pick = np.random.default_rng(cfg.seed).choice(len(mnist_train), min(n_replay, len(mnist_train)), False)
        parts.append(mnist_train.subset(np.sort(pick), "mnist:replay"))
    if cfg.not_digits:
        n_other = round(cfg.not_digits * sum(map(len, parts)) / (1 - cfg.not_digits))
        parts.append(nondigit_bank(n_other, mnist_train if mnist_train is not None else mine, seed=0, tag="finetune"))
    info = {"init": str(init_path(cfg.init)), "pictures": len(mine), "copies": copies,
            "replayed_mnist": len(parts[1]) if n_replay else 0,
            "non_digits": len(parts[-1]) if cfg.not_digits else 0}
    return parts[0].concat(*parts[1:], source=mine.source), info


def prototype_head(cfg: TrainConfig, model: nn.Module, train: datamod.Dataset, pictures: int) -> dict[str, Any]:
    """Fold the nearest-prototype head of the person's training pictures (the first `pictures` of `train`:
    `training_set` puts them first) into `model`'s last layer, at `cfg.prototypes` (training.prototypes)."""
    return fold_prototypes(model, train.images[:pictures], train.labels[:pictures], cfg.prototypes)


def accuracy(model: nn.Module, data: datamod.Dataset, device) -> float:
    """Share of `data`'s digits that `model` (through its test-time views, if any) reads right."""
    return float((digit_answers(predict_proba(model, data.images, device=device)) == data.labels).mean())


def recorded_mnist_test(meta: dict[str, Any]) -> float | None:
    """The MNIST test accuracy a model file records, when it was measured on MNIST's 10,000 test digits."""
    data, metrics = meta.get("data") or {}, meta.get("metrics") or {}
    if data.get("source") == "mnist" and data.get("n_test") == 10_000 and metrics.get("test_accuracy") is not None:
        return float(metrics["test_accuracy"])
    return None


def before(cfg: TrainConfig, val: datamod.Dataset, device, log: Callable[[str], None]) -> dict[str, Any]:
    """What the model file `cfg.init` makes of the person's held-out pictures, before any fine-tuning."""
    model, meta = load_model(init_path(cfg.init))
    figures = {"val_before": accuracy(model.to(device), val, device), "n_val": len(val),
               "mnist_test_before": recorded_mnist_test(meta), "base_meta": meta}
    log(f"your held-out pictures: {figures['val_before']:.2%} of {len(val)} read right before fine-tuning")
    return figures


def after(cfg: TrainConfig, model: nn.Module, val: datamod.Dataset, figures: dict[str, Any], device,
          log: Callable[[str], None]) -> dict[str, Any]:
    """The fine-tuned model's figures (the person's held-out pictures; MNIST test unless --no-test) and
    its calibration, as model-file metadata {"finetune", "calibration", "rejection", "metrics" updates}."""
    base_meta = figures.pop("base_meta")
    figures["val_after"] = accuracy(model, val, device)
    log(f"your held-out pictures: {figures['val_after']:.2%} of {len(val)} read right after fine-tuning "
        f"(before: {figures['val_before']:.2%})")
    mnist_val = mnist_split(cfg)[1] if cfg.replay > 0 or cfg.measure_test else None
    if cfg.measure_test:
        test = datamod.load_mnist("test", cfg.data_dir)
        recorded = figures["mnist_test_before"] is not None
        if not recorded:
            figures["mnist_test_before"] = accuracy(load_model(init_path(cfg.init))[0].to(device), test, device)
        figures["mnist_test_after"] = accuracy(model, test, device)
        log(f"MNIST test: {figures['mnist_test_after']:.2%} after fine-tuning (before: "
            f"{figures['mnist_test_before']:.2%}{', as the model file records' if recorded else ''})")
    return {"finetune": figures, **calibration(cfg, model, val, mnist_val, base_meta, device)}


def calibration(cfg: TrainConfig, model: nn.Module, val: datamod.Dataset, mnist_val: datamod.Dataset | None,
                base_meta: dict[str, Any], device) -> dict[str, Any]:
    """Temperature (and not-a-digit threshold) refitted on the person's held-out pictures plus
    CALIBRATION_MNIST of MNIST's validation digits (and validation non-digits for a model that can say
    "not a digit"): the fine-tuned model serves both kinds. With fewer than MIN_CALIBRATION pictures to fit
    on, the base model's calibration is kept, and the file says so."""
    digits = val
    if mnist_val is not None:
        pick = np.random.default_rng(0).permutation(len(mnist_val))[:CALIBRATION_MNIST]
        digits = val.concat(mnist_val.subset(np.sort(pick)), source=f"{val.source}+mnist:val")
    if len(digits) < MIN_CALIBRATION:
        kept = {k: base_meta[k] for k in ("calibration", "rejection") if k in base_meta}
        if "calibration" in kept:
            kept["calibration"] = {**kept["calibration"], "kept_from": str(init_path(cfg.init))}
        return kept
    others = None
    if cfg.not_digits:
        others = nondigit_bank(min(len(digits), 3000), mnist_val if mnist_val is not None else val, seed=1, tag="val")
    raw = predict_proba(model, digits.images, device=device)
    raw_others = predict_proba(model, others.images, device=device) if others is not None else None
    meta = calibrate(raw, digits.labels, raw_others)
    meta["calibration"]["fitted_on"] = (f"validation: {len(val)} of your held-out pictures and "
                                        f"{len(digits) - len(val)} MNIST validation digits"
                                        + (f" and {len(others)} synthetic non-digits" if others is not None else ""))
    return meta
