"""Writers beyond MNIST's: the shipped model (before) against a model file (after), in one run.

    python bench/writers.py [--model FILE ...] [--n 2000] [--no-finetune] [--validation] [--threads 2]

Sets, none of which any model here trained on or was chosen on except as said:

- held-out fonts (data.fonts.HELD_OUT, the cross-writer validation set: a model trained with --fonts
  never saw these fonts, and its mixture was chosen on them): `--n` digits, read right (a "not a
  digit" counted wrong), and as many of their letters (Latin, and Cyrillic where the family has
  them), called not a digit; drawn with a random stream (seed 9) no training run uses;
- sklearn's bundled digits (1,797 8×8 digits of 43 writers, upscaled through the folder reader as
  bench/finetune.py does): zero-shot on all of them, and after fine-tuning on 15 pictures of each
  digit (bench/finetune.py's split: the 1,297 outside the pools are the evaluation set);
- the restyled sets (synth.styles: a crossed 7, a flagged 1, … of MNIST test digits);
- MNIST test: accuracy, called not a digit, expected calibration error after calibration.

With --validation (choosing a mixture: docs/writers.md), MNIST's validation digits stand in for its test
digits everywhere and sklearn's digits are left out, so nothing chosen sees a test set.

The goals (docs/writers.md): held-out fonts >= 98% digits, >= 95% letters; sklearn >= 97% zero-shot,
>= 99% after the fine-tune; MNIST test >= 99.6%, <= 0.5% not a digit, ECE <= 1%.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

from digitrec.data import Dataset, load_mnist, train_val_split
from digitrec.data.fonts import load_fonts
from digitrec.models.calibration import NOT_A_DIGIT, calibrated, not_digit_threshold, said_not_digit
from digitrec.models.modelfile import load_model, shipped_model_path
from digitrec.models.predict import predict_proba
from digitrec.synth import styles, writers
from digitrec.training.metrics import digit_answers, ece
from digitrec.util.device import set_threads

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # the sibling bench whose sklearn split and folders this one shares
import finetune as finetune_bench  # noqa: E402

FINETUNE_PER_DIGIT = 15


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", nargs="*", default=[], help="model files to compare with the shipped one")
    p.add_argument("--validation", action="store_true",
                   help="MNIST validation digits instead of test, no sklearn digits: for choosing a mixture")
    p.add_argument("--n", type=int, default=2000, help="held-out fonts' digits (and as many letters)")
    p.add_argument("--no-finetune", action="store_true", help="skip the 15-per-digit fine-tune (minutes on a CPU)")
    p.add_argument("--seed", type=int, default=9)
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def build_sets(n: int, seed: int, validation: bool) -> dict:
    fonts = [f for f in load_fonts() if f.held_out]
    rng = np.random.default_rng(seed)
    digits, labels = writers.font_digits(n, fonts, rng)
    test = train_val_split(load_mnist("train"))[1] if validation else load_mnist("test")
    restyled = {h: styles.restyle(test.images, test.labels, h, rng) for h in styles.HABITS}
    letters = writers.font_letters(n, fonts, rng)
    return {"font_digits": Dataset(digits, labels, "held-out fonts"), "font_letters": letters,
            "test": test, "restyled": restyled, "fonts": len(fonts), "validation": validation}


def answers(path: Path, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The model file's answers (a digit, or NOT_A_DIGIT past its threshold) and its calibrated probabilities."""
    model, meta = load_model(path)
    probs = calibrated(predict_proba(model, images), meta)
    return np.where(said_not_digit(probs, not_digit_threshold(meta)), NOT_A_DIGIT, digit_answers(probs)), probs


def measure(path: Path, sets: dict, sklearn: dict | None) -> dict[str, str]:
    fd, test = sets["font_digits"], sets["test"]
    got, _ = answers(path, fd.images)
    letters, _ = answers(path, sets["font_letters"])
    mnist, probs = answers(path, test.images)
    row = {f"held-out fonts ({sets['fonts']}): digits right": pct((got == fd.labels).mean()),
           "  their digits called not a digit": pct((got == NOT_A_DIGIT).mean()),
           "  their letters called not a digit": pct((letters == NOT_A_DIGIT).mean())}
    if sklearn is not None:
        zero, _ = answers(path, sklearn["all"].images)
        row["sklearn digits, zero-shot"] = pct((zero == sklearn["all"].labels).mean())
        if "finetune" in sklearn:
            row[f"sklearn digits after {FINETUNE_PER_DIGIT}/digit fine-tune"] = sklearn["finetune"](path)
    for habit, (label, _) in styles.HABITS.items():
        row[f"restyled {habit}"] = pct((answers(path, sets["restyled"][habit])[0] == label).mean())
    split = "validation" if sets["validation"] else "test"
    row[f"MNIST {split} accuracy"] = pct((mnist == test.labels).mean())
    row[f"MNIST {split} called not a digit"] = pct((mnist == NOT_A_DIGIT).mean())
    row[f"MNIST {split} ECE (calibrated)"] = pct(ece(probs, test.labels))
    return row


def sklearn_sets(tmp: Path, finetune: bool, threads: int) -> dict | None:
    """sklearn's digits through the folder reader, and a function that fine-tunes a model file on 15 a digit."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        print("scikit-learn is not installed (pip install -e '.[dev]'): the sklearn rows are left out")
        return None
    from digitrec.pictures.folders import read_pictures

    digits = load_digits()
    images, labels = digits.images, digits.target.astype(np.int64)
    every = read_pictures(finetune_bench.write_folder(tmp / "all", images, labels, np.arange(len(labels))), cache=False)
    out = {"all": Dataset(every.images, every.labels, "sklearn")}
    if finetune:
        pools, rest = finetune_bench.split(labels, 0)
        evaluation = read_pictures(finetune_bench.write_folder(tmp / "eval", images, labels, rest), cache=False)
        out["finetune"] = lambda path: finetuned(path, pools, images, labels, evaluation, tmp, threads)
    return out


def finetuned(path: Path, pools, images, labels, evaluation, tmp: Path, threads: int) -> str:
    from digitrec.training.finetune import accuracy, finetune_config
    from digitrec.training.run import train_run

    mine = np.concatenate([pools[d][:FINETUNE_PER_DIGIT] for d in range(10)])
    folder = finetune_bench.write_folder(tmp / f"mine-{path.stem}", images, labels, mine)
    cfg = finetune_config(data=str(folder), threads=threads, seed=0, init=str(path))
    result = train_run(cfg, tmp / f"run-{path.stem}", progress=False, log=lambda line: None)
    model, _ = load_model(result.model_path)
    return pct(accuracy(model, Dataset(evaluation.images, evaluation.labels, "sklearn:eval"), "cpu"))


def pct(x: float) -> str:
    return f"{100 * float(x):.2f}%"


def main() -> None:
    args = parse_args()
    set_threads(args.threads)
    paths = {"before (shipped)": shipped_model_path()}
    paths.update({f"after: {Path(p).parent.name}/{Path(p).name}"[:28]: Path(p) for p in args.model})
    sets = build_sets(args.n, args.seed, args.validation)
    with tempfile.TemporaryDirectory() as tmp:
        sk = None if args.validation else sklearn_sets(Path(tmp), not args.no_finetune, args.threads)
        rows = {name: measure(p, sets, sk) for name, p in paths.items()}
    names = list(next(iter(rows.values())))
    width = max(len(n) for n in names)
    print("\n" + " " * width + "  " + "  ".join(f"{c:>28}" for c in rows))
    for name in names:
        print(f"{name:<{width}}  " + "  ".join(f"{rows[c][name]:>28}" for c in rows))


if __name__ == "__main__":
    main()
