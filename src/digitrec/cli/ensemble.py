"""`digitrec ensemble`: train N seeds of a recipe (or take model files) and average them."""

from __future__ import annotations

from pathlib import Path

from digitrec.data import dataset as datamod
from digitrec.training.ensemble import combine
from digitrec.errors import DigitrecError
from digitrec.training.metrics import compute_metrics
from digitrec.models.predict import predict_proba
from digitrec.models.modelfile import save_model
from digitrec.models import TTA_VIEWS
from digitrec.training.recipes import RECIPES, check_recipe, recipe_config
from digitrec.training.loop import CHECKPOINT, MODEL
from digitrec.training.run import resume_run, train_run


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
    p.add_argument("--tta", default="none", choices=list(TTA_VIEWS),
                   help="wrap members without test-time augmentation in these views")
    p.add_argument("--no-test", dest="measure_test", action="store_false",
                   help="measure neither the members nor the ensemble on the test set (choices on validation)")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def member_plan(recipe_arg: str, n: int) -> list[tuple[str, int, str]]:
    """(recipe, seed, folder name) of each member. Several recipes take turns, each counting its own
    seeds from 0: members of different recipes err on different digits, so the average gains more."""
    recipes = [r.strip() for r in recipe_arg.split(",")]
    for name in recipes:
        check_recipe(name)
    if n < 2:
        raise DigitrecError(f"--n: an ensemble needs at least 2 members, got {n}")
    plan = []
    for i in range(n):
        name, seed = recipes[i % len(recipes)], i // len(recipes)
        plan.append((name, seed, f"seed-{seed}" if len(recipes) == 1 else f"{name}-seed-{seed}"))
    return plan


def _train_members(args) -> list[Path]:
    """Each member in OUT/seed-K (OUT/RECIPE-seed-K for several recipes); finished members are kept,
    interrupted ones resumed."""
    plan = member_plan(args.recipe, args.n)
    paths = []
    for i, (recipe, seed, folder) in enumerate(plan):
        run_dir = Path(args.out) / folder
        progress = False if args.quiet else None
        if not (run_dir / MODEL).exists():
            print(f"member {i + 1}/{args.n}: {recipe} recipe, seed {seed}")
            if (run_dir / CHECKPOINT).exists():
                resume_run(run_dir, progress=progress)
            else:
                overrides = {"seed": seed, "threads": args.threads, "measure_test": args.measure_test}
                overrides.update({k: v for k, v in (("epochs", args.epochs), ("subset", args.subset),
                                                    ("val_size", args.val_size)) if v is not None})
                train_run(recipe_config(recipe, **overrides), run_dir, progress=progress)
        paths.append(run_dir / MODEL)
    return paths


def run(args) -> int:
    paths = args.models or _train_members(args)
    out = Path(args.out) if args.models else Path(args.out) / MODEL
    model, info = combine(paths, args.tta)
    metrics = {}
    if args.measure_test:
        test = datamod.load_mnist("test")
        metrics["test_accuracy"] = compute_metrics(test.labels, predict_proba(model, test.images).argmax(1)).accuracy
    save_model(model, out, {"ensemble": info, "metrics": metrics,
                            "training": {"recipe": None if args.models else args.recipe}})
    print(f"ensemble of {len(paths)} models saved to {out}")
    if metrics:
        print(f"test accuracy: {metrics['test_accuracy']:.4f}")
    return 0
