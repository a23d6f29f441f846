"""Several model files → one ensemble model file that averages their probabilities."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from digitrec.errors import DigitrecError
from digitrec.models.modelfile import load_model
from digitrec.models import create_model, with_tta


def combine(paths: list[str | Path], tta: str = "none") -> tuple[Any, dict[str, Any]]:
    """Load every member and build the `ensemble` model holding their weights; `tta` wraps each
    member that has no test-time augmentation of its own in that view set."""
    if len(paths) < 2:
        raise DigitrecError("ensemble: needs at least two model files")
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
