"""Named training recipes: settings chosen on the validation split, never on the test set.

`fast` reaches about 99% test accuracy in one epoch (a few seconds on a 2-core CPU); `best` trains a
larger network with affine + elastic augmentation and EMA weights and reads digits through test-time
views: 99.71% over seeds 0-2 in about 11 minutes. Options given on the command line override a
recipe's values. How each value was chosen, with its measurements: docs/training.md.
"""

from __future__ import annotations

from dataclasses import replace

from digitrec.errors import DigitrecError
from digitrec.training.config import TrainConfig

RECIPES: dict[str, dict] = {
    # a 24k-parameter BatchNorm CNN, one epoch of one-cycle SGD in bfloat16: seconds, not minutes
    "fast": dict(model="bn-conv3-w16", model_kwargs={"crop": 20, "deskew": True, "stem": "stride2",
                                                     "fixed_stem": True}, epochs=1,
                 batch_size=128, optimizer="sgd", lr=0.3, weight_decay=5e-4, schedule="onecycle", warmup=0.15,
                 label_smoothing=0.1, bf16=True, channels_last=True),
    # a 0.6M-parameter BatchNorm CNN with affine + elastic augmentation and EMA weights, read through
    # five test-time views
    "best": dict(model="bn-conv6-w32", model_kwargs={"dropout": 0.2}, epochs=18, batch_size=128,
                 optimizer="adamw", lr=3e-3, weight_decay=5e-4, schedule="onecycle", warmup=0.1,
                 label_smoothing=0.1, augment="elastic", ema=0.999, bf16=True, channels_last=True, tta="rot-zoom"),
    # the starting project A's settings (Adam, 10 epochs, batch 64) in digitrec's loop, with bfloat16
    # convolutions and channels-last memory: the same network and schedule, a fraction of the time
    "classic": dict(model="conv2-fc64", epochs=10, batch_size=64, optimizer="adam", lr=1e-3,
                    bf16=True, channels_last=True),
}
# `best` reading each digit deskewed (deskew.Deskew), for ensembles whose members err differently
RECIPES["best-deskew"] = {**RECIPES["best"], "model_kwargs": {**RECIPES["best"]["model_kwargs"], "deskew": True}}
# the shipped model: `best`, plus the answer "not a digit" learned from synthetic non-digits, digits
# redrawn with the world's writing habits (shares chosen on validation: docs/honesty.md), and digits and
# letters written by 55 handwriting fonts (`digitrec fonts` first; the share chosen on the held-out fonts
# and MNIST validation: docs/writers.md)
RECIPES["shipped"] = {**RECIPES["best"], "not_digits": 0.3, "styles": 0.05, "fonts": 0.3}
# the number reader's line model (weights/numbers.safetensors): a CTC network trained on synthetic lines of
# training digits (40,000 an epoch: TrainConfig.lines), for groups of ink that hold several digits
# (training/lines.py, docs/numbers.md); random stroke width, as the loop of the shipped file always drew it
RECIPES["numbers"] = dict(model="line-ctc", epochs=12, batch_size=64, optimizer="adamw", lr=2e-3,
                          weight_decay=1e-4, schedule="onecycle", warmup=0.1, augment="stroke", bf16=True)
# Fine-tuning a model file on a person's own pictures (`train --init MODEL`): not a recipe of its own
# (the network comes from the file), the settings that `training.finetune` starts from. A short
# schedule, the base recipe's affine + elastic augmentation, three quarters of the training set MNIST digits
# replayed and an EMA of the weights that starts at the model's own, so that MNIST is not forgotten,
# then the nearest-prototype head of the person's pictures folded into the last layer (training/prototypes.py)
# (chosen on validation, held-out fonts and sklearn's digits: docs/finetune.md).
FINETUNE: dict = dict(epochs=3, batch_size=128, optimizer="adamw", lr=2e-3, weight_decay=5e-4,
                      schedule="onecycle", warmup=0.1, label_smoothing=0.1, augment="elastic", ema=0.98, bf16=True,
                      channels_last=True, replay=0.75, min_pictures=1500,
                      prototypes=2.0)


def check_recipe(name: str) -> None:
    """A one-line error unless `name` is a recipe."""
    if name not in RECIPES:
        raise DigitrecError(f"unknown recipe {name!r}; choose from {', '.join(sorted(RECIPES))}", field="recipe")


def recipe_config(name: str | None, **overrides) -> TrainConfig:
    """TrainConfig of recipe `name` (None = defaults) with `overrides` applied."""
    if name is not None:
        check_recipe(name)
    base = TrainConfig(**RECIPES.get(name, {}), recipe=name)
    return replace(base, **overrides)
