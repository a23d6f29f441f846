"""How well a model recognises MNIST test digits drawn the way people draw them.

For every picture variant in `digitrec.synthetic.VARIANTS` (black on white 300×300,
1200×1200, off-centre, thin strokes, RGB, RGBA, JPEG, uneven light, ...) each of
the 10,000 test digits is turned into such a picture, preprocessed exactly as
`digitrec predict` does, and classified; the table compares each accuracy with
the model's plain MNIST accuracy (goal: within 1 point). Whole numbers have their own
benchmark: bench/number_reading.py.

    python bench/predict_variants.py [--model FILE] [--limit N] [--workers K]

Preprocessing is CPU-bound Python and NumPy, so pictures are made and
preprocessed in worker processes; the model runs once per variant.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from digitrec.data import load_mnist
from digitrec.inference.recognizer import Recognizer
from digitrec.pictures.preprocess import preprocess
from digitrec.synth.variants import VARIANTS

IMAGES: np.ndarray | None = None  # the test digits, shared with forked workers


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default=None, help="model file (default: the one shipped with digitrec)")
    p.add_argument("--limit", type=int, default=10_000, help="test digits per variant (default all 10,000)")
    p.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated subset of variants ('' for none)")
    p.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--data-dir", default=None)
    return p.parse_args()


# --- worker side: make pictures and preprocess them ---


def _variant_chunk(job: tuple[str, np.ndarray, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """(inputs (n, 28, 28) uint8, blank (n,), thickened (n,), seconds spent in preprocess)."""
    name, index, seed = job
    rng = np.random.default_rng(seed)
    inputs, blank, thick, spent = [], [], [], 0.0
    for i in index:
        picture = VARIANTS[name](IMAGES[i], rng)
        start = time.perf_counter()
        out = preprocess(picture)
        spent += time.perf_counter() - start
        inputs.append(out.image)
        blank.append(out.blank)
        thick.append(out.thickened)
    return np.stack(inputs), np.array(blank), np.array(thick), spent


# --- main side ---


def chunks(index: np.ndarray, workers: int) -> list[np.ndarray]:
    return np.array_split(index, max(1, min(len(index), workers * 8)))


def run_variant(pool, name: str, index: np.ndarray, seed: int, workers: int):
    jobs = [(name, part, seed * 1000 + k) for k, part in enumerate(chunks(index, workers))]
    parts = list(pool.map(_variant_chunk, jobs))
    inputs = np.concatenate([p[0] for p in parts])
    labels, flags = np.concatenate([p[1] for p in parts]), np.concatenate([p[2] for p in parts])
    return inputs, labels, flags, sum(p[3] for p in parts)


def bench_variants(pool, recognizer: Recognizer, labels: np.ndarray, args) -> None:
    index = np.arange(min(args.limit, len(labels)))
    plain = float((recognizer.probabilities(IMAGES[index]).argmax(1) == labels[index]).mean())
    print(f"\n{'variant':<14} {'digits':>6} {'accuracy':>9} {'vs plain':>9} {'blank':>6} {'thickened':>9} "
          f"{'ms/pic':>7}")
    print(f"{'plain MNIST':<14} {len(index):>6} {plain:>9.4f} {'':>9} {'':>6} {'':>9} {'':>7}")
    for k, name in enumerate(v for v in args.variants.split(",") if v):
        inputs, blank, thick, spent = run_variant(pool, name, index, args.seed + k, args.workers)
        predicted = recognizer.probabilities(inputs).argmax(1)
        accuracy = float(((predicted == labels[index]) & ~blank).mean())
        print(f"{name:<14} {len(index):>6} {accuracy:>9.4f} {100 * (accuracy - plain):>+8.2f}p "
              f"{int(blank.sum()):>6} {int(thick.sum()):>9} {1000 * spent / len(index):>7.1f}", flush=True)


def main() -> int:
    global IMAGES
    args = parse_args()
    test = load_mnist("test", args.data_dir)
    IMAGES = test.images
    import torch

    torch.set_num_threads(max(1, min(4, args.workers)))
    recognizer = Recognizer.load(args.model, device="cpu")
    meta = recognizer.metadata
    print(f"model: {args.model or 'default (shipped)'}  arch {meta.get('arch')}  "
          f"recorded test accuracy {meta.get('metrics', {}).get('test_accuracy')}  workers {args.workers}")
    with ProcessPoolExecutor(args.workers) as pool:
        bench_variants(pool, recognizer, test.labels, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
