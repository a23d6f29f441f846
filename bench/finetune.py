"""Fine-tuning the shipped model on another handwriting set: before and after, and what MNIST loses.

    python bench/finetune.py [--sizes 5,15,50] [--seed 0] [--threads 2]

The handwriting: scikit-learn's `load_digits` (1,797 digits, 8×8, 17 grey levels, from the UCI set's
test part; the shipped model never saw it). Each digit is upscaled to a 64×64 PNG (dark ink on white,
bicubic) in a temporary folder and read back through `--data`'s folder reader (`preprocess`, as
`predict` reads any picture). The digits carry no writer ids, so the split is by picture, not by
writer: a fixed random pool of 50 pictures per digit is the person's pictures (the first 5, 15 or 50
of each digit for the three runs), and the 1,297 digits outside that pool are the evaluation set for
every size. Fine-tuning sees only the pool (and holds out a fifth of it for its own validation); its
settings were chosen on that validation, never on the evaluation digits or on MNIST test.

Printed per size: accuracy on the evaluation digits before and after, MNIST test accuracy after (the
shipped model's is measured once, here, the same way), the training loop's seconds and the whole
`train_run` call's (reading pictures, measuring before and after, calibrating, MNIST test).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from digitrec.data import load_mnist  # noqa: E402
from digitrec.models.modelfile import load_model, shipped_model_path  # noqa: E402
from digitrec.pictures.folders import read_pictures  # noqa: E402
from digitrec.training.finetune import accuracy, finetune_config  # noqa: E402
from digitrec.training.run import train_run  # noqa: E402
from digitrec.util.device import set_threads  # noqa: E402

POOL = 50  # pictures per digit that may be given to fine-tuning; the rest are for evaluation


def picture(pixels: np.ndarray) -> Image.Image:
    """An 8×8 sklearn digit (0..16, ink high) → a 64×64 grey picture, dark ink on white paper."""
    grey = (255 - np.clip(pixels * 16, 0, 255)).astype(np.uint8)
    return Image.fromarray(grey).resize((64, 64), Image.Resampling.BICUBIC)


def write_folder(folder: Path, images: np.ndarray, labels: np.ndarray, index: np.ndarray) -> Path:
    """The pictures `index` of (images, labels) as folder/<digit>/<i>.png."""
    for i in index:
        (folder / str(labels[i])).mkdir(parents=True, exist_ok=True)
        picture(images[i]).save(folder / str(labels[i]) / f"{i:04d}.png")
    return folder


def split(labels: np.ndarray, seed: int) -> tuple[dict[int, np.ndarray], np.ndarray]:
    """({digit: its POOL pool pictures, in order}, the evaluation pictures: all outside the pools)."""
    order = np.random.default_rng(seed).permutation(len(labels))
    pools = {d: order[labels[order] == d][:POOL] for d in range(10)}
    rest = np.setdiff1d(np.arange(len(labels)), np.concatenate(list(pools.values())))
    return pools, rest


def main() -> None:
    from sklearn.datasets import load_digits

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="5,15,50", help="pictures per digit to fine-tune on")
    parser.add_argument("--seed", type=int, default=0, help="the split of sklearn's digits")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    set_threads(args.threads)
    digits = load_digits()
    images, labels = digits.images, digits.target.astype(np.int64)
    pools, rest = split(labels, args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        evaluation = read_pictures(write_folder(Path(tmp) / "eval", images, labels, rest), cache=False)
        base, _ = load_model(shipped_model_path())
        mnist_test = load_mnist("test")
        t0 = time.perf_counter()
        before = accuracy(base, evaluation_set(evaluation), "cpu")
        mnist_before = accuracy(base, mnist_test, "cpu")
        print(f"shipped model: {before:.2%} of {len(evaluation.labels)} sklearn digits, {mnist_before:.2%} of "
              f"MNIST test ({time.perf_counter() - t0:.0f}s to measure); {len(evaluation.skipped)} skipped")
        rows = [run_size(int(n), pools, images, labels, evaluation, Path(tmp), args) for n in args.sizes.split(",")]
    print_table(rows, before, mnist_before, len(evaluation.labels))


def evaluation_set(evaluation):
    from digitrec.data import Dataset

    return Dataset(evaluation.images, evaluation.labels, "sklearn-digits:eval")


def run_size(n: int, pools, images, labels, evaluation, tmp: Path, args) -> dict:
    """Fine-tune the shipped model on the first `n` pool pictures of each digit; measure."""
    mine = np.concatenate([pools[d][:n] for d in range(10)])
    folder = write_folder(tmp / f"mine-{n}", images, labels, mine)
    cfg = finetune_config(data=str(folder), threads=args.threads, seed=0)
    t0 = time.perf_counter()
    result = train_run(cfg, tmp / f"run-{n}", progress=False, log=lambda line: print(f"  [{n}/digit] {line}"))
    total = time.perf_counter() - t0
    model, _ = load_model(result.model_path)
    return {"n": n, "pictures": len(mine), "after": accuracy(model, evaluation_set(evaluation), "cpu"),
            "mnist_after": result.finetune["mnist_test_after"], "val": result.finetune["val_after"],
            "train_s": result.train_seconds, "total_s": total}


def print_table(rows: list[dict], before: float, mnist_before: float, n_eval: int) -> None:
    print(f"\n| pictures per digit | fine-tuned on | sklearn digits ({n_eval:,}) before | after | MNIST test after "
          f"(before {mnist_before:.2%}) | fine-tuning s | whole run s |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['n']} | {r['pictures']} | {before:.2%} | {r['after']:.2%} | {r['mnist_after']:.2%} "
              f"({(r['mnist_after'] - mnist_before) * 100:+.2f}) | {r['train_s']:.1f} | {r['total_s']:.0f} |")


if __name__ == "__main__":
    main()
