"""`digitrec train`: train a model on MNIST (or another source) into a run folder."""

from __future__ import annotations

import shlex
import sys
from dataclasses import fields
from pathlib import Path

from digitrec.errors import DigitrecError
from digitrec.models import TTA_VIEWS
from digitrec.training import distributed
from digitrec.training.config import TrainConfig
from digitrec.training.finetune import finetune_config
from digitrec.training.recipes import RECIPES, recipe_config
from digitrec.training.run import resume_run, train_run
from digitrec.training.runfolder import RunFolder

_DEFAULTS = TrainConfig()


def add_parser(sub) -> None:
    p = sub.add_parser("train", help="train a model and save it with its history and checkpoints")
    p.add_argument("--out", default=None, help="run folder (default runs/<model>)")
    p.add_argument("--resume", metavar="RUN_DIR", default=None,
                   help="continue a stopped run from its last checkpoint, with its saved settings")
    p.add_argument("--overwrite", action="store_true", help="allow training into a folder that holds a run")
    p.add_argument("--recipe", default=None, choices=sorted(RECIPES),
                   help="a tuned set of settings: fast (~99%% in one epoch), best (most accurate), classic")
    p.add_argument("--model", default=None, help=f"model name (default {_DEFAULTS.model})")
    p.add_argument("--init", metavar="MODEL", default=None,
                   help="fine-tune: start from this model file's weights and architecture ('default' = the "
                        "shipped model), with settings for a few dozen to a few thousand of your pictures "
                        "(3 epochs, MNIST replayed: docs/finetune.md)")
    p.add_argument("--replay", type=float, default=None, metavar="SHARE",
                   help="with --init: this share of the training set is MNIST digits, so MNIST is not forgotten")
    p.add_argument("--min-pictures", type=int, default=None, metavar="N",
                   help="with --init: repeat your pictures (each copy augmented anew) until there are N")
    p.add_argument("--prototypes", type=float, default=None, metavar="STRENGTH",
                   help="with --init: blend in a nearest-prototype head over your training pictures' features "
                        "(0 = off; docs/finetune.md)")
    p.add_argument("--val-share", type=float, default=None, metavar="SHARE",
                   help=f"of each digit's pictures held out for validation when --data is a folder of pictures "
                        f"(default {_DEFAULTS.val_share})")
    p.add_argument("--epochs", type=int, default=None, help=f"default {_DEFAULTS.epochs}")
    p.add_argument("--batch-size", type=int, default=None, help=f"default {_DEFAULTS.batch_size}")
    p.add_argument("--optimizer", default=None, choices=["adam", "adamw", "sgd"])
    p.add_argument("--lr", type=float, default=None, help=f"learning rate (default {_DEFAULTS.lr})")
    p.add_argument("--weight-decay", type=float, default=None)
    p.add_argument("--schedule", default=None, choices=["constant", "onecycle", "linear"])
    p.add_argument("--label-smoothing", type=float, default=None)
    p.add_argument("--augment", default=None, help="batch augmentation (none, affine, …)")
    p.add_argument("--ema", type=float, default=None, help="decay of a weight moving average, 0 = off")
    p.add_argument("--tta", default=None, choices=list(TTA_VIEWS),
                   help="test-time augmentation: the saved model averages fixed rotated/zoomed views")
    p.add_argument("--bf16", action="store_true", default=None, help="bfloat16 autocast")
    p.add_argument("--not-digits", type=float, default=None, metavar="SHARE",
                   help="train the answer 'not a digit' on synthetic non-digits, this share of the training set")
    p.add_argument("--styles", type=float, default=None, metavar="SHARE",
                   help="add digits redrawn with the world's writing habits (crossed 7s, …), this share")
    p.add_argument("--fonts", type=float, default=None, metavar="SHARE",
                   help="add digits (and, with --not-digits, letters) written by handwriting fonts, this share "
                        "(fetch them first: digitrec fonts)")
    p.add_argument("--val-size", type=int, default=None,
                   help=f"held-out training images (default {_DEFAULTS.val_size})")
    p.add_argument("--subset", type=int, default=None, help="train on the first N images only (quick runs)")
    p.add_argument("--lines", type=int, default=None, metavar="N",
                   help="line models (--recipe numbers): lines drawn afresh from the training digits every epoch "
                        "(default 40,000)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None, help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--data", default=None, help="training data: MNIST (default), a Kaggle .csv, a .npz or a folder")
    p.add_argument("--data-dir", default=None, help="folder of the MNIST IDX files ($DIGITREC_DATA)")
    p.add_argument("--test-data", default=None, help="labelled test data when --data has no test split")
    p.add_argument("--no-test", dest="measure_test", action="store_const", const=False, default=None,
                   help="do not measure the test set, so choices made on validation cannot see it")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--no-report", action="store_true", help="skip the figures and report.html in the run folder")
    p.add_argument("--nproc", type=int, default=None, metavar="N",
                   help="train on N local processes: runs torchrun --nproc-per-node N with the other options")
    p.set_defaults(run=run)


def config_from_args(args) -> TrainConfig:
    """Options the user gave override the recipe's values (or the defaults without a recipe; with --init,
    the fine-tuning settings for the network in that file)."""
    given = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
             if f.name != "recipe" and getattr(args, f.name, None) is not None}
    if args.init is None:
        return recipe_config(args.recipe, **given)
    for option in ("recipe", "model"):
        if getattr(args, option) is not None:
            raise DigitrecError("cannot be combined with --init: the model file gives the network and its settings",
                                field=option)
    return finetune_config(**given)


def run(args) -> int:
    if args.nproc is not None:
        return launch(args)
    dist = distributed.from_env()  # a world of one unless started by torchrun
    try:
        result = _train(args, dist)
        dist.finish()
    finally:
        dist.stop()
    if not dist.is_main:
        return 0
    if result.test is not None:
        print(f"test accuracy: {result.test.accuracy:.4f}")
    print(f"trained in {result.train_seconds:.1f}s (data loaded in {result.load_seconds:.1f}s); "
          f"model saved to {result.model_path}")
    if result.finetune is not None:
        print(f"use it: digitrec predict --model {result.model_path} PICTURES, "
              f"or digitrec serve --model {result.model_path}")
    if not args.no_report:
        _report(result.out_dir, args.device or "auto")
    return 0


def _train(args, dist: distributed.Dist):
    progress = False if args.quiet else None
    if args.resume:
        return resume_run(args.resume, epochs=args.epochs, progress=progress, dist=dist)
    cfg = config_from_args(args)
    cfg.command = "digitrec " + shlex.join(sys.argv[1:]) if sys.argv[1:2] == ["train"] else None
    cfg.validate()
    run = RunFolder(args.out or ("runs/finetune" if cfg.init else f"runs/{cfg.model}"))
    if run.holds_run() and not args.overwrite:
        raise DigitrecError(f"{run.path}: already holds a run; use --resume {run.path} to continue it or --overwrite")
    return train_run(cfg, run.path, progress=progress, dist=dist)


def launch(args) -> int:
    """`--nproc N`: check the options here (one-line errors), then run torchrun and return its exit code."""
    if args.nproc < 1:
        raise DigitrecError(f"must be at least 1, got {args.nproc}", field="nproc")
    cfg = RunFolder(args.resume).load_config() if args.resume else config_from_args(args)
    cfg.validate()
    distributed.Dist(world=args.nproc).check_batch(cfg.batch_size)
    return distributed.launch_local(args.nproc, ["train", *forwarded_args(args)], cfg.threads)


def forwarded_args(args) -> list[str]:
    """The options the user gave, minus --nproc, as a command line again."""
    argv: list[str] = []
    for action in args.parser._actions:
        value = getattr(args, action.dest, None)
        if not action.option_strings or action.dest in ("help", "nproc") or value is None or value is False:
            continue
        flag = max(action.option_strings, key=len)  # the long spelling
        argv += [flag] if value is True else [flag, str(value)]
    return argv


def _report(run_dir: Path, device: str) -> None:
    """Figures and report.html in the run folder; the model is saved already, so a problem here only warns."""
    from digitrec.cli.common import print_report

    # matplotlib loads only when a report is drawn
    from digitrec.report.page import write_report

    try:
        print_report(write_report(run_dir, device=device), accuracy=False)
    except DigitrecError as exc:
        print(f"digitrec: report skipped: {exc}", file=sys.stderr)
