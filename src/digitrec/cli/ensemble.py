"""`digitrec ensemble`: train N seeds of a recipe (or take model files) and average them."""

from __future__ import annotations

from pathlib import Path

from digitrec.models import TTA_VIEWS
from digitrec.training.ensemble import (
    member_configs,
    member_plan,
    save_ensemble,
    train_members,
)
from digitrec.training.recipes import RECIPES
from digitrec.training.runfolder import RunFolder
from digitrec.util.files import check_writable_dir, check_writable_file


def add_parser(sub) -> None:
    p = sub.add_parser("ensemble", help="average the probabilities of several models in one model file")
    p.add_argument("models", nargs="*", help="model files to combine (instead of training)")
    p.add_argument("--recipe", default="best",
                   help=f"recipe of the members, or several separated by commas that the members take in "
                        f"turn, e.g. best,best-deskew (choose from {', '.join(sorted(RECIPES))})")
    p.add_argument("--n", type=int, default=5, help="number of members to train")
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs")
    p.add_argument("--out", required=True, help="output: a run folder when training, else a model file")
    p.add_argument("--subset", type=int, default=None, help="train each member on the first N images (quick runs)")
    p.add_argument("--val-size", type=int, default=None,
                   help="held-out images per member (default: the recipe's 5000; 0 trains on every training "
                        "image, once the recipe's settings are fixed)")
    p.add_argument("--data", default=None, help="the members' training data: MNIST (default), .csv, .npz, folder")
    p.add_argument("--data-dir", default=None, help="folder of the MNIST IDX files ($DIGITREC_DATA)")
    p.add_argument("--test-data", default=None, help="labelled test data when --data has no test split")
    p.add_argument("--tta", default="none", choices=list(TTA_VIEWS),
                   help="wrap members without test-time augmentation in these views")
    p.add_argument("--no-test", dest="measure_test", action="store_false",
                   help="measure neither the members nor the ensemble on the test set (choices on validation)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args) -> int:
    if args.models:
        out = check_writable_file(args.out, "out")
        paths = [Path(m) for m in args.models]
    else:
        plan = member_plan(args.recipe, args.n)
        overrides = {k: v for k, v in (("epochs", args.epochs), ("subset", args.subset), ("val_size", args.val_size),
                                       ("data", args.data), ("data_dir", args.data_dir),
                                       ("test_data", args.test_data)) if v is not None}
        configs = member_configs(plan, {**overrides, "threads": args.threads, "measure_test": args.measure_test})
        folder = check_writable_dir(args.out, "out")
        paths = train_members(plan, configs, folder, progress=False if args.quiet else None)
        out = RunFolder(folder).model
    path, accuracy = save_ensemble(paths, out, args.tta, args.measure_test,
                                   recipe=None if args.models else args.recipe, data_dir=args.data_dir)
    print(f"ensemble of {len(paths)} models saved to {path}")
    if accuracy is not None:
        print(f"test accuracy: {accuracy:.4f}")
    elif args.measure_test:
        print("no labelled test data to measure it on (pass --test-data)")
    return 0
