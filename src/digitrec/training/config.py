"""A training run's settings: one dataclass, saved as the run's config.json, checked before any work."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from digitrec.data.augment import get_augment, list_augments
from digitrec.data.dataset import DEFAULT_VAL_SIZE
from digitrec.errors import DigitrecError
from digitrec.models import DEFAULT_NETWORK, TTA_VIEWS, list_models, reads
from digitrec.models.registry import accepts
from digitrec.util.device import pick_device

OPTIMIZERS = ("adam", "adamw", "sgd")
# fields whose default is None: the type a value must have when there is one
_OPTIONAL: dict[str, type] = {"threads": int, "data": str, "data_dir": str, "test_data": str,
                              "recipe": str, "command": str, "init": str}
SCHEDULES = ("constant", "onecycle", "linear")


@dataclass
class TrainConfig:
    """Everything that decides a training run; saved as config.json so --resume can rebuild it."""

    model: str = DEFAULT_NETWORK
    epochs: int = 10
    batch_size: int = 64
    optimizer: str = "adam"  # adam | adamw | sgd (Nesterov, momentum 0.9)
    lr: float = 1e-3
    weight_decay: float = 0.0
    schedule: str = "constant"  # constant | onecycle | linear (decay to 0)
    warmup: float = 0.0  # fraction of steps of linear warm-up (onecycle/linear)
    label_smoothing: float = 0.0
    augment: str = "none"
    ema: float = 0.0  # decay of an exponential moving average of the weights; 0 = off
    tta: str = "none"  # test-time augmentation views of the saved model (models.TTA_VIEWS)
    bf16: bool = False  # bfloat16 autocast for convs and matmuls (fast on AVX-512 BF16 CPUs)
    channels_last: bool = False
    val_size: int = DEFAULT_VAL_SIZE
    subset: int = 0  # train on the first N training images only (quick runs); 0 = all
    lines: int = 0  # line models: lines drawn afresh from the training digits every epoch; 0 = 40,000
    seed: int = 0
    device: str = "auto"
    threads: int | None = None
    data: str | None = None  # None = MNIST IDX files; else a .csv, .npz or folder
    data_dir: str | None = None
    test_data: str | None = None
    measure_test: bool = True  # False: no test figure at all, for runs whose choices must rest on validation
    not_digits: float = 0.0  # share of the training set that is synthetic non-digits (answer "not a digit")
    styles: float = 0.0  # share of the training set that is digits redrawn with the world's writing habits
    fonts: float = 0.0  # share of the training set written by handwriting fonts (data.fonts, synth.writers)
    recipe: str | None = None
    model_kwargs: dict = field(default_factory=dict)
    # fine-tuning (training.finetune): start from a model file's weights ("default" = the shipped model)
    init: str | None = None
    replay: float = 0.0  # share of the fine-tuning set that is MNIST training digits, so MNIST is not forgotten
    min_pictures: int = 0  # repeat the user's pictures (each copy augmented anew) until there are this many
    prototypes: float = 0.0  # strength of the writer's nearest-prototype head folded into the last layer; 0 = off
    freeze_bn: bool = False  # keep BatchNorm's running statistics: fine-tuning batches would otherwise replace them
    val_share: float = 0.2  # of each digit's pictures held out for validation, when the data is a picture folder
    command: str | None = None  # the command line that started the run, kept in the model file

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        """The settings in `d` (a config.json, a model file's "training"); unknown keys are ignored, a value
        of the wrong type is a TypeError naming it (a hand-edited or damaged file)."""
        known = {f.name for f in fields(cls)}
        given = {k: v for k, v in d.items() if k in known}
        defaults = cls()
        for name, value in given.items():
            kind = _OPTIONAL.get(name) or type(getattr(defaults, name))
            if not (value is None and name in _OPTIONAL) and not _type_ok(value, kind):
                raise TypeError(f"{name} should be {kind.__name__}, not {value!r}")
        return cls(**given)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def validate(self) -> None:
        """Every setting checked before any data is read or any model is built, so a typo costs nothing."""
        checks = [
            (self.epochs >= 1, "epochs", f"must be at least 1, got {self.epochs}"),
            (self.batch_size >= 1, "batch_size", f"must be at least 1, got {self.batch_size}"),
            (self.lr > 0, "lr", f"must be positive, got {self.lr}"),
            (self.optimizer in OPTIMIZERS, "optimizer", f"unknown optimizer {self.optimizer!r}"),
            (self.schedule in SCHEDULES, "schedule", f"unknown schedule {self.schedule!r}"),
            (0 <= self.label_smoothing < 1, "label_smoothing", "must be in [0, 1)"),
            (0 <= self.ema < 1, "ema", "must be in [0, 1)"),
            (self.subset >= 0, "subset", "must be 0 (all) or positive"),
            (self.lines >= 0, "lines", f"must be 0 (the line model's default) or positive, got {self.lines}"),
            (self.val_size >= 0, "val_size", f"must be 0 or more, got {self.val_size}"),
            (self.threads is None or self.threads >= 1, "threads", f"must be at least 1, got {self.threads}"),
            (self.tta in TTA_VIEWS, "tta", f"unknown view set {self.tta!r}; choose from {', '.join(TTA_VIEWS)}"),
            (self.measure_test or not self.test_data, "test_data", "given with --no-test, which measures no test set"),
            (0 <= self.not_digits < 0.9, "not_digits", f"must be in [0, 0.9), got {self.not_digits}"),
            (0 <= self.styles < 0.5, "styles", f"must be in [0, 0.5), got {self.styles}"),
            (0 <= self.fonts < 0.6, "fonts", f"must be in [0, 0.6), got {self.fonts}"),
            (self.not_digits + self.styles + self.fonts < 0.9, "not_digits",
             "the synthetic shares (--not-digits, --styles, --fonts) must leave a tenth for real digits"),
            (0 <= self.replay < 1, "replay", f"must be in [0, 1), got {self.replay}"),
            (self.min_pictures >= 0, "min_pictures", f"must be 0 or more, got {self.min_pictures}"),
            (0 < self.val_share < 1, "val_share", f"must be in (0, 1), got {self.val_share}"),
            (not self.init or self.val_size > 0, "val_size", "fine-tuning (--init) needs held-out pictures to measure"),
            (self.init or not self.replay, "replay", "goes with --init (fine-tuning a model file)"),
            (self.init or not self.min_pictures, "min_pictures", "goes with --init (fine-tuning a model file)"),
            (self.prototypes >= 0, "prototypes", f"must be 0 (off) or more, got {self.prototypes}"),
            (self.init or not self.prototypes, "prototypes", "goes with --init (fine-tuning a model file)"),
            (self.model in list_models(), "model",
             f"unknown model {self.model!r}; choose from {', '.join(list_models())}"),
        ]
        for ok, name, why in checks:
            if not ok:
                raise DigitrecError(why, field=name)
        if self.not_digits and not accepts(self.model, "classes"):
            raise DigitrecError(f"{self.model} has no 'not a digit' output; use bn-conv3-w16 or bn-conv6-w32",
                                field="not_digits")
        get_augment(self.augment)
        self._check_fits_model()
        pick_device(self.device)

    def _check_fits_model(self) -> None:
        """A setting that means nothing to this kind of model is refused, never quietly ignored: a line
        model (line-ctc) trains on lines drawn from the digits, with a CTC loss, from scratch."""
        if reads(self.model) != "line":
            if self.lines:
                raise DigitrecError(f"only a line model (line-ctc) trains on lines; {self.model} reads single digits",
                                    field="lines")
            return
        why = f"does not apply to a line model ({self.model})"
        refusals = [
            (self.init, "init", f"{why}: fine-tuning reads your pictures of single digits"),
            (self.label_smoothing, "label_smoothing", f"{why}: its CTC loss has no label smoothing"),
            (self.tta != "none", "tta", f"{why}: the test-time views turn single digits"),
            (self.styles, "styles", f"{why}: it learns from MNIST's own digits"),
            (self.test_data, "test_data", f"{why}: it is judged on lines of validation digits "
                                          "(bench/number_reading.py measures it on test digits)"),
            (self.augment not in list_augments(any_size=True), "augment",
             f"{self.augment!r} turns 28x28 digits, not lines; a line model takes "
             f"{' or '.join(list_augments(any_size=True))}"),
        ]
        for refused, name, message in refusals:
            if refused:
                raise DigitrecError(message, field=name)

    def model_arguments(self) -> dict[str, Any]:
        """The network's arguments: the recipe's, plus the extra output when training with non-digits."""
        return {**self.model_kwargs, "classes": 11} if self.not_digits else dict(self.model_kwargs)


def _type_ok(value: Any, kind: type) -> bool:
    if isinstance(value, bool):  # JSON true/false: only for flags, never a number
        return kind is bool
    if kind is float:
        return isinstance(value, (int, float))
    return isinstance(value, kind)
