"""Choosing how to fine-tune on 15 pictures a digit: writers fine-tuned on, the rest of their digits read.

    python bench/finetune_writers.py --model FILE [--writers fonts,sklearn] [--draws 1] [--set epochs=6 ...]
                                     [--strengths 0,1,2] [--mnist-val 2000] [--threads 1] [--json OUT]

Each writer is fine-tuned on 15 pictures of each digit (a folder of PNGs, through `train --init`'s
code: `finetune_config` and `train_run`, which hold out a fifth of them) and measured on the rest of
its digits, through the model's test-time views:

- held-out fonts (`data.fonts.HELD_OUT`: no model here trained on them): each font is one writer,
  65 of its digits each (`synth.writers.font_digits`, slant, elastic, pen width and pressure varied),
  15 fine-tuned on and 50 read; draw d renders them with seed 100 + d;
- sklearn's digits: bench/finetune.py's split with seed `--sklearn-seed` + d (1 + d unless told; the
  bench's own figure is seed 0):
  15 of each digit's 50-picture pool fine-tuned on, the 1,297 outside the pools read.

Every fine-tuned model is read again with the prototype head (`training.prototypes`) folded in at each
`--strengths` (0 = none), from the pictures it was fine-tuned on. `--mnist-val N`: for the first
writer of each kind, MNIST validation digits read right and called not a digit, and validation non-digits
called not a digit, after the run's calibration is refitted on the model with the head folded in. Nothing
here reads MNIST test. Printed: one row per writer, then mean and spread (sample standard deviation over
writers) per strength. `--no-train`: the prototype head on the model file as it is, no fine-tuning.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling bench whose sklearn split this one shares

import finetune as finetune_bench  # noqa: E402

from digitrec.data import Dataset  # noqa: E402
from digitrec.data.dataset import stratified_split  # noqa: E402
from digitrec.data.fonts import load_fonts  # noqa: E402
from digitrec.models.calibration import NOT_A_DIGIT, calibrated, not_digit_threshold, said_not_digit  # noqa: E402
from digitrec.models.modelfile import load_model  # noqa: E402
from digitrec.models.predict import predict_proba  # noqa: E402
from digitrec.pictures.folders import load_data, read_pictures  # noqa: E402
from digitrec.synth import writers  # noqa: E402
from digitrec.synth.banks import nondigit_bank  # noqa: E402
from digitrec.training import finetune  # noqa: E402
from digitrec.training.metrics import digit_answers  # noqa: E402
from digitrec.training.prototypes import fold_prototypes  # noqa: E402
from digitrec.training.run import train_run  # noqa: E402
from digitrec.util.device import set_threads  # noqa: E402

PER_DIGIT, FONT_READ = 15, 50


def font_writer(font, draw: int, tmp: Path) -> tuple[Path, Dataset]:
    """(folder of 15 pictures a digit, the other 50 a digit read back through the folder reader)."""
    images, labels = writers.font_digits(10 * (PER_DIGIT + FONT_READ), [font], np.random.default_rng(100 + draw))
    order = np.arange(len(labels))
    mine, rest = order[:10 * PER_DIGIT], order[10 * PER_DIGIT:]
    folders = []
    for name, idx in (("mine", mine), ("rest", rest)):
        folder = tmp / f"{font.name}-{draw}-{name}"
        for i in idx:
            (folder / str(labels[i])).mkdir(parents=True, exist_ok=True)
            Image.fromarray(255 - images[i]).resize((56, 56), Image.Resampling.BICUBIC).save(
                folder / str(labels[i]) / f"{i:04d}.png")
        folders.append(folder)
    read = read_pictures(folders[1], cache=False)
    return folders[0], Dataset(read.images, read.labels, f"{font.name}:rest")


def sklearn_writer(seed: int, tmp: Path) -> tuple[Path, Dataset]:
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, labels = digits.images, digits.target.astype(np.int64)
    pools, rest = finetune_bench.split(labels, seed)
    mine = np.concatenate([pools[d][:PER_DIGIT] for d in range(10)])
    read = read_pictures(finetune_bench.write_folder(tmp / f"sk-{seed}-rest", images, labels, rest), cache=False)
    folder = finetune_bench.write_folder(tmp / f"sk-{seed}-mine", images, labels, mine)
    return folder, Dataset(read.images, read.labels, "sklearn:rest")


def writers_to_run(kinds: list[str], draws: int, tmp: Path, only: list[str], first_seed: int):
    """(kind, name, folder, the rest) for each writer asked for."""
    for draw in range(draws):
        if "fonts" in kinds:
            for font in [f for f in load_fonts() if f.held_out and (not only or f.name in only)]:
                yield ("fonts", f"{font.name}/{draw}", *font_writer(font, draw, tmp))
        if "sklearn" in kinds:
            yield ("sklearn", f"sklearn/seed {first_seed + draw}", *sklearn_writer(first_seed + draw, tmp))


def parse_value(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return {"true": True, "false": False}.get(text, text)


def mnist_check(cfg, model, val: Dataset, base_meta: dict, n: int) -> dict:
    """MNIST validation digits read right / called not a digit, validation non-digits called not a digit,
    with the calibration refitted on `model` as the run does."""
    mnist_val = finetune.mnist_split(cfg)[1]
    meta = finetune.calibration(cfg, model, val, mnist_val, base_meta, "cpu")
    pick = mnist_val.subset(np.arange(len(mnist_val) - n, len(mnist_val)))  # not the calibration's 1,000 draw
    others = nondigit_bank(n, pick, seed=3, tag="bench")

    def answers(images):
        probs = calibrated(predict_proba(model, images), meta)
        return np.where(said_not_digit(probs, not_digit_threshold(meta)), NOT_A_DIGIT, digit_answers(probs))

    got, other = answers(pick.images), answers(others.images)
    return {"mnist_val": float((got == pick.labels).mean()), "mnist_val_not_digit": float((got == NOT_A_DIGIT).mean()),
            "others_not_digit": float((other == NOT_A_DIGIT).mean()),
            "threshold": (meta.get("rejection") or {}).get("not_digit_threshold")}


def run_writer(args, overrides: dict, kind: str, name: str, folder: Path, rest: Dataset, tmp: Path,
               check: bool) -> dict:
    cfg = finetune.finetune_config(args.model, data=str(folder), threads=args.threads, seed=0,
                                   measure_test=False, **overrides)
    t0 = time.perf_counter()
    if args.no_train:
        path = finetune.init_path(args.model)
    else:
        path = train_run(cfg, tmp / f"run-{name.replace('/', '-')}", progress=False, log=lambda line: None).model_path
    seconds = time.perf_counter() - t0
    tuned, meta = load_model(path)
    base_meta = load_model(finetune.init_path(args.model))[1]
    mine, val = stratified_split(load_data(str(folder), "train"), cfg.val_share, cfg.seed)
    row = {"kind": kind, "writer": name, "seconds": round(seconds, 1)}
    for strength in args.strengths:
        model = copy.deepcopy(tuned)
        fold_prototypes(model, mine.images, mine.labels, strength)
        row[f"acc@{strength:g}"] = finetune.accuracy(model, rest, "cpu")
        if check:
            row[f"check@{strength:g}"] = mnist_check(cfg, model, val, base_meta, args.mnist_val)
    return row


def summary(rows: list[dict], strengths: list[float]) -> None:
    print("\n| writers | n | " + " | ".join(f"strength {s:g}" for s in strengths) + " |")
    print("|---|---:|" + "---:|" * len(strengths))
    for kind in sorted({r["kind"] for r in rows}):
        mine = [r for r in rows if r["kind"] == kind]
        cells = []
        for s in strengths:
            a = np.array([r[f"acc@{s:g}"] for r in mine]) * 100
            cells.append(f"{a.mean():.2f}% ± {a.std(ddof=1) if len(a) > 1 else 0:.2f}")
        print(f"| {kind} | {len(mine)} | " + " | ".join(cells) + " |")
    for r in rows:
        for key in [k for k in r if k.startswith("check@")]:
            print(f"{r['writer']} {key}: " + ", ".join(f"{k} {v:.4f}" for k, v in r[key].items() if v is not None))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="default", help="the model file to fine-tune (default: the shipped one)")
    p.add_argument("--writers", default="fonts,sklearn")
    p.add_argument("--only", default="", help="comma-separated held-out font names (default: all ten)")
    p.add_argument("--draws", type=int, default=1)
    p.add_argument("--set", nargs="*", default=[], help="fine-tuning settings KEY=VALUE (TrainConfig fields)")
    p.add_argument("--sklearn-seed", type=int, default=1,
                   help="sklearn's split of the first draw (0 is bench/finetune.py's and bench/writers.py's)")
    p.add_argument("--strengths", default="0,1,2")
    p.add_argument("--mnist-val", type=int, default=0)
    p.add_argument("--no-train", action="store_true")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", default="")
    args = p.parse_args()
    args.strengths = [float(s) for s in args.strengths.split(",")]
    set_threads(args.threads)
    # the run itself folds no head (unless --set prototypes=…): each strength is folded here, afterwards
    overrides = {"prototypes": 0.0, **{k: parse_value(v) for k, v in (item.split("=", 1) for item in args.set)}}
    rows, checked = [], set()
    with tempfile.TemporaryDirectory() as tmp:
        for kind, name, folder, rest in writers_to_run(args.writers.split(","), args.draws, Path(tmp),
                                                      [o for o in args.only.split(",") if o], args.sklearn_seed):
            check = bool(args.mnist_val) and kind not in checked
            checked.add(kind)
            rows.append(run_writer(args, overrides, kind, name, folder, rest, Path(tmp), check))
            print(json.dumps(rows[-1]), flush=True)
    summary(rows, args.strengths)
    if args.json:
        Path(args.json).write_text(json.dumps({"args": vars(args), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
