"""A whole training run: data → validation split → Trainer → test accuracy → model file.

The CLI, the notebook and the benchmarks all call `train_run`, so a run made
any of these ways gives the same files.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
from torch import nn

from digitrec.data import dataset as datamod
from digitrec.data import fonts as fontsmod
from digitrec.models import count_parameters, reads
from digitrec.models.predict import predict_proba
from digitrec.pictures.folders import load_data
from digitrec.synth import styles
from digitrec.synth.banks import font_bank, nondigit_bank, styled_bank
from digitrec.training import finetune
from digitrec.training.calibration import calibrate
from digitrec.training.config import TrainConfig
from digitrec.training.distributed import Dist
from digitrec.training.lines import LineTask, line_metadata
from digitrec.training.loop import EpochStats, Trainer
from digitrec.training.metrics import Metrics, compute_metrics, digit_answers
from digitrec.training.runfolder import RunFolder

VAL_NON_DIGITS = 3000  # validation non-digits for calibrating a model that can say "not a digit"
RESTYLED_SEED = 21  # the validation digits' restyling stream (training's is 0, bench/honesty.py's 7)
FONT_LETTERS = 0.4  # of the font pictures, letters (non-digits) when the model can say "not a digit" (docs/writers.md)
CROSS_WRITER = 2000  # held-out fonts' digits (and as many letters) measured after training


@dataclass
class RunResult:
    out_dir: Path
    model_path: Path
    history: list
    test: Metrics | None
    load_seconds: float
    train_seconds: float
    finetune: dict | None = None  # a run with --init: the figures before and after (training.finetune)


def load_run_data(cfg: TrainConfig) -> tuple[datamod.Dataset, datamod.Dataset, datamod.Dataset | None, dict]:
    """(train, validation, test or None, data info for the model file)."""
    full = load_data(cfg.data, "train", cfg.data_dir)
    train, val = split_validation(cfg, full)
    if cfg.subset:
        train = train.subset(np.arange(min(cfg.subset, len(train))))
    test = load_test_data(cfg) if _measures_test(cfg) else None
    info = {"source": cfg.data or "mnist", "train_sha256": full.checksum(), "n_train": len(train),
            "n_val": len(val), "n_test": len(test) if test is not None else 0}
    if cfg.init:
        replay = finetune.mnist_split(cfg)[0] if cfg.replay > 0 else None
        train, info["finetune"] = finetune.training_set(cfg, train, replay)
    else:
        train, info["synthetic"] = with_synthetic(cfg, train)
    if cfg.data in (None, "mnist"):
        info["mnist_sha256"] = datamod.mnist_checksums()
    return train, val, test, info


def split_validation(cfg: TrainConfig, full: datamod.Dataset) -> tuple[datamod.Dataset, datamod.Dataset]:
    """(train, validation): a person's picture folder holds out `val_share` of each digit; any other
    source a fixed random `val_size` images."""
    if datamod.class_folder(cfg.data, "train") is not None:
        return datamod.stratified_split(full, cfg.val_share, cfg.seed)
    return datamod.train_val_split(full, cfg.val_size)


def _measures_test(cfg: TrainConfig) -> bool:
    """Whether the run measures a test set: not with --no-test, nor a fine-tuning run without a test set
    of its own, nor a line model (its measure on test digits is bench/number_reading.py)."""
    if not cfg.measure_test or reads(cfg.model) == "line":
        return False
    return not cfg.init or _own_test(cfg)


def _own_test(cfg: TrainConfig) -> bool:
    """Whether the run's data has a test split of its own (--test-data, or DIR/test beside DIR/train)."""
    return bool(cfg.test_data) or datamod.class_folder(cfg.data, "test") == Path(str(cfg.data)) / "test"


def with_synthetic(cfg: TrainConfig, train: datamod.Dataset) -> tuple[datamod.Dataset, dict]:
    """The training digits plus the synthetic pictures the config asks for, each a share of the whole:
    non-digits (`not_digits`), digits in the world's styles (`styles`) and pictures written by the
    training fonts (`fonts`: digits, and FONT_LETTERS of letters for a model that can say "not a digit")."""
    n = len(train)
    rest = 1.0 - cfg.not_digits - cfg.styles - cfg.fonts
    banks = {"non_digits": (cfg.not_digits, nondigit_bank), "styled_digits": (cfg.styles, styled_bank),
             "font_pictures": (cfg.fonts, _training_fonts(cfg))}
    extra, info = [], {}
    for name, (share, bank) in banks.items():
        part = bank(round(share * n / rest), train, seed=0, tag="train") if share else None
        info[name] = len(part) if part is not None else 0
        extra += [part] if part is not None else []
    return (train.concat(*extra, source=train.source) if extra else train), info


def _training_fonts(cfg: TrainConfig) -> Callable[..., datamod.Dataset]:
    """The font bank of the fonts not held out (a one-line error, before training, when none are fetched)."""
    fonts = [f for f in fontsmod.load_fonts() if not f.held_out] if cfg.fonts else []
    letters = FONT_LETTERS if cfg.not_digits else 0.0
    return lambda n, _train, seed, tag: font_bank(n, fonts, seed=seed, tag=tag, letters=letters)


def cross_writer(model: nn.Module, device="cpu", n: int = CROSS_WRITER) -> dict[str, float]:
    """The cross-writer validation figures: the held-out fonts' digits read right, and (for a model that
    can say "not a digit") their letters called not a digit, by the raw argmax."""
    bank = cross_writer_bank(n)
    probs = predict_proba(model, bank.images, device=device)
    answers, digits = probs.argmax(1), bank.labels < 10
    out = {"cross_writer_accuracy": float((answers[digits] == bank.labels[digits]).mean())}
    if probs.shape[1] > 10:
        out["cross_writer_letters_not_digit"] = float((answers[~digits] >= 10).mean())
    return out


def cross_writer_bank(n: int = CROSS_WRITER) -> datamod.Dataset:
    """The held-out fonts' `n` digits and `n` letters (labels 10 and up) that a run measures itself on."""
    fonts = [f for f in fontsmod.load_fonts() if f.held_out]
    return font_bank(2 * n, fonts, seed=5, tag="held-out", letters=0.5)


def validation_non_digits(cfg: TrainConfig, val: datamod.Dataset) -> datamod.Dataset | None:
    """Non-digits for calibrating a model that can say "not a digit": drawn from the validation digits' split."""
    if not cfg.not_digits or not len(val):
        return None
    return nondigit_bank(min(VAL_NON_DIGITS, len(val)), val, seed=1, tag="val")


def validation_restyled(cfg: TrainConfig, val: datamod.Dataset) -> dict[str, np.ndarray]:
    """For a model that can say "not a digit": the validation digits of each habit's class redrawn with that habit
    (synth.styles), which the "not a digit" threshold must leave as digits. Empty otherwise."""
    if not cfg.not_digits or not len(val):
        return {}
    rng = np.random.default_rng(RESTYLED_SEED)
    return {h: styles.restyle(val.images, val.labels, h, rng) for h in styles.HABITS}


def validation_digits(cfg: TrainConfig) -> datamod.Dataset:
    """The validation digits a run with `cfg` held out."""
    return split_validation(cfg, load_data(cfg.data, "train", cfg.data_dir))[1]


def load_test_data(cfg: TrainConfig) -> datamod.Dataset | None:
    """The labelled test set a run is measured on: --test-data, else the source's own test split."""
    if cfg.test_data:
        return load_data(cfg.test_data, "test", cfg.data_dir)
    if cfg.data in (None, "mnist") or str(cfg.data).endswith(".npz") or _own_test(cfg):
        return load_data(cfg.data, "test", cfg.data_dir)
    return None  # a single labelled CSV or class folder: validation is all there is


def resume_run(out_dir: str | Path, epochs: int | None = None, log: Callable[[str], None] = print,
               progress: bool | None = None, dist: Dist | None = None) -> RunResult:
    """Continue a run from its last checkpoint with its saved settings (`epochs` may extend it)."""
    cfg = RunFolder(out_dir).load_config()
    if epochs is not None:
        cfg.epochs = epochs
    return train_run(cfg, out_dir, resume=True, log=log, progress=progress, dist=dist)


def train_run(cfg: TrainConfig, out_dir: str | Path, resume: bool = False,
              log: Callable[[str], None] = print, progress: bool | None = None,
              dist: Dist | None = None) -> RunResult:
    """Train `cfg` into `out_dir`; with `resume`, start after the last checkpointed epoch.

    Under torchrun pass `dist=distributed.from_env()`: every rank trains, rank 0 alone writes
    files and measures the test set (the others return a result with `test=None`).
    """
    cfg.validate()  # before any data is read: a bad option costs nothing
    run = RunFolder(out_dir)
    if dist is None or dist.is_main:
        run.prepare()
    t0 = time.perf_counter()
    train, val, test, info = load_run_data(cfg)
    load_seconds = time.perf_counter() - t0
    trainer = Trainer(cfg, train, val, run.path, log=log, progress=progress, dist=dist)
    figures = finetune.before(cfg, val, trainer.device, trainer.log) if cfg.init and trainer.dist.is_main else None
    if resume and run.holds_run():
        trainer.resume()
        trainer.log(f"resuming {run.path} after epoch {trainer.start_epoch - 1}")
        if trainer.dist.is_main:
            run.clean_temporaries()
    if trainer.dist.is_main:
        run.save_config(cfg)
    history = trainer.run()
    train_seconds = sum(h.seconds for h in history)
    if not trainer.dist.is_main:
        return RunResult(run.path, run.model, history, None, load_seconds, train_seconds)
    model = trainer.final_model()
    if figures is not None and cfg.prototypes:  # before anything is measured or calibrated
        info["finetune"]["prototypes"] = finetune.prototype_head(cfg, model, train, info["finetune"]["pictures"])
    metrics = None
    if test is not None and test.labels is not None:
        metrics = compute_metrics(test.labels, digit_answers(predict_proba(model, test.images, device=trainer.device)))
    meta = model_metadata(cfg, history, info, metrics.accuracy if metrics else None, model)
    if figures is not None:
        meta.update(finetune.after(cfg, model, val, figures, trainer.device, trainer.log))
        meta["metrics"]["val_accuracy"] = figures["val_after"]
    elif isinstance(trainer.task, LineTask):  # its measure is numbers read exactly; no calibration
        meta.update(line_metadata(trainer.task, history[-1].val_accuracy if history else None))
    elif len(val):
        meta.update(validate_and_calibrate(cfg, model, val, trainer.device, meta["metrics"]))
    if cfg.fonts and figures is None:
        meta["metrics"].update(cross_writer(model, trainer.device))
        trainer.log(", ".join(f"{k} {v:.2%}" for k, v in meta["metrics"].items() if k.startswith("cross_writer")))
    path = run.save_model(model.cpu(), meta)
    return RunResult(run.path, path, history, metrics, load_seconds, train_seconds, figures)


def validate_and_calibrate(cfg: TrainConfig, model: nn.Module, val: datamod.Dataset, device,
                           metrics: dict[str, Any]) -> dict[str, Any]:
    """The saved model's own validation accuracy (through its test-time views, if any), and its
    calibration and "not a digit" threshold, all fitted on the validation split (training.calibration)."""
    raw = predict_proba(model, val.images, device=device)
    if cfg.tta != "none":  # the saved model reads through its views: say how well
        metrics["val_accuracy_bare"] = metrics["val_accuracy"]
    metrics["val_accuracy"] = float((digit_answers(raw) == val.labels).mean())
    return calibrate_on_validation(cfg, model, val, raw, device)


def calibrate_on_validation(cfg: TrainConfig, model: nn.Module, val: datamod.Dataset, raw_val: np.ndarray,
                            device="cpu") -> dict[str, Any]:
    """Calibration and "not a digit" threshold (training.calibration) from the raw probabilities of the
    validation digits `raw_val`, of the validation non-digits and of the restyled validation digits: one
    place for runs and ensembles, so both are fitted on the same sets."""
    others = validation_non_digits(cfg, val)
    raw_others = predict_proba(model, others.images, device=device) if others is not None else None
    restyled = {h: predict_proba(model, images, device=device) for h, images in validation_restyled(cfg, val).items()}
    return calibrate(raw_val, val.labels, raw_others, restyled)


def model_metadata(cfg: TrainConfig, history: list[EpochStats], data_info: dict, test_accuracy: float | None,
                   model: nn.Module) -> dict[str, Any]:
    """What a model file records about how it was made."""
    total = sum(h.seconds for h in history)
    return {
        "command": cfg.command,
        "training": {**asdict(cfg), "epochs_done": len(history), "train_seconds": round(total, 3)},
        "data": data_info,
        "metrics": {"val_accuracy": history[-1].val_accuracy if history else None,
                    "test_accuracy": test_accuracy},
        "parameters": count_parameters(model),
    }
