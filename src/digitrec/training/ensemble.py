"""Ensembles: train N members (one recipe, or several taking turns) and average them in one model file.

The members are ordinary runs in sub-folders of the ensemble's folder, so an
interrupted ensemble resumes where it stopped. The ensemble is measured on the
test data its members were configured with (their --data/--test-data), never
on a hard-coded MNIST.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from torch import nn

from digitrec.errors import DigitrecError
from digitrec.models import create_model, with_tta
from digitrec.models.modelfile import load_model, read_metadata, save_model
from digitrec.models.predict import predict_proba
from digitrec.training.config import TrainConfig
from digitrec.training.metrics import compute_metrics, digit_answers
from digitrec.training.recipes import check_recipe, recipe_config
from digitrec.training.run import calibrate_on_validation, load_test_data, resume_run, train_run, validation_digits
from digitrec.training.runfolder import RunFolder


@dataclass(frozen=True)
class Member:
    recipe: str
    seed: int
    folder: str  # sub-folder of the ensemble's run folder


def member_plan(recipes: str | list[str], n: int) -> list[Member]:
    """Each member's recipe, seed and folder. Several recipes take turns, each counting its own
    seeds from 0: members of different recipes err on different digits, so the average gains more."""
    names = [r.strip() for r in recipes.split(",")] if isinstance(recipes, str) else list(recipes)
    for name in names:
        check_recipe(name)
    if n < 2:
        raise DigitrecError(f"an ensemble needs at least 2 members, got {n}", field="n")
    plan = []
    for i in range(n):
        name, seed = names[i % len(names)], i // len(names)
        plan.append(Member(name, seed, f"seed-{seed}" if len(names) == 1 else f"{name}-seed-{seed}"))
    return plan


def member_configs(plan: list[Member], overrides: dict[str, Any]) -> list[TrainConfig]:
    """Every member's settings, checked before the first one trains."""
    configs = [recipe_config(m.recipe, seed=m.seed, **overrides) for m in plan]
    for cfg in configs:
        cfg.validate()
    return configs


def train_members(plan: list[Member], configs: list[TrainConfig], out: Path, log: Callable[[str], None] = print,
                  progress: bool | None = None) -> list[Path]:
    """Each member in OUT/<folder>; finished members are kept, interrupted ones resumed."""
    paths = []
    for i, (member, cfg) in enumerate(zip(plan, configs)):
        run = RunFolder(out / member.folder)
        if not run.model.exists():
            log(f"member {i + 1}/{len(plan)}: {member.recipe} recipe, seed {member.seed}")
            if run.holds_run():
                resume_run(run.path, log=log, progress=progress)
            else:
                train_run(cfg, run.path, log=log, progress=progress)
        paths.append(run.model)
    return paths


def combine(paths: list[str | Path], tta: str = "none") -> tuple[nn.Module, dict[str, Any]]:
    """Load every member and build the `ensemble` model holding their weights; `tta` wraps each
    member that has no test-time augmentation of its own in that view set."""
    if len(paths) < 2:
        raise DigitrecError("an ensemble needs at least two model files", field="models")
    members, metas = [], []
    for path in paths:
        model, meta = load_model(path)
        if meta["arch"] == "ensemble":
            raise DigitrecError(f"{path}: is already an ensemble; list its members instead")
        members.append(model if model.arch == "tta" else with_tta(model, tta))
        metas.append(meta)
    specs = [{"arch": m.arch, "arch_kwargs": m.arch_kwargs} for m in members]
    ensemble = create_model("ensemble", members=specs)
    for slot, member in zip(ensemble.members, members):
        slot.load_state_dict(member.state_dict())
    info = {"members": [{"file": str(p), "arch": m["arch"], "metrics": m.get("metrics"),
                         "recipe": m.get("training", {}).get("recipe"), "seed": m.get("training", {}).get("seed")}
                        for p, m in zip(paths, metas)]}
    return ensemble.eval(), info


def test_config(member_file: Path, data_dir: str | None = None) -> TrainConfig:
    """The settings a member was trained with (its model file records them): they name its test data."""
    cfg = TrainConfig.from_dict(read_metadata(member_file).get("training") or {})
    cfg.data_dir = data_dir or cfg.data_dir
    return cfg


def save_ensemble(paths: list[Path], out: Path, tta: str = "none", measure_test: bool = True,
                  recipe: str | None = None, data_dir: str | None = None) -> tuple[Path, float | None]:
    """Combine `paths` into the model file `out`; (its path, its test accuracy or None)."""
    model, info = combine(paths, tta)
    cfg = test_config(paths[0], data_dir)
    accuracy = None
    test = load_test_data(cfg) if measure_test else None
    if test is not None and test.labels is not None:
        accuracy = compute_metrics(test.labels, digit_answers(predict_proba(model, test.images))).accuracy
    meta = {"ensemble": info, "metrics": {} if accuracy is None else {"test_accuracy": accuracy},
            "training": {"recipe": recipe}}
    meta.update(calibrate_ensemble(model, cfg))
    save_model(model, out, meta)
    return out, accuracy


def calibrate_ensemble(model: nn.Module, cfg: TrainConfig) -> dict[str, Any]:
    """The averaged probabilities' own temperature (and not-a-digit threshold), fitted on the validation split
    the members held out; none when they trained on every image (`--val-size 0`)."""
    val = validation_digits(cfg)
    if not len(val):
        return {}
    return calibrate_on_validation(cfg, model, val, predict_proba(model, val.images))
