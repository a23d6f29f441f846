"""Reading whole numbers: digitrec's reader against the gap-splitting reader it replaced, in one run.

    python bench/number_reading.py [--n 1000] [--model FILE] [--split test|validation] [--writers mnist|fonts]

For each kind of set (synth/numbers.py: apart, touching, overlapping, photographed, and ones-sevens:
apart, mostly 1s and 7s; 2-6 digits each, built from MNIST test digits, or with --split validation
from the held-out validation digits, the only split the reader's settings were chosen on), prints
whole-number accuracy, per-digit accuracy (digits right after aligning by edit distance), how many
readings are longer than the number (a digit counted twice, or a piece read as one) and the median
milliseconds per number (picture decoding included, one number at a time, as `digitrec predict
--number` reads them), for the current reader and the baseline (bench/gap_reader.py), taking turns.

With --writers fonts the numbers are written by the held-out fonts instead (data.fonts.HELD_OUT, 3,000
digits drawn by synth.writers; `digitrec fonts` first): writers MNIST never had, whose flagged 1s are where
a reader is most tempted to read one stroke as two digits.
"""

from __future__ import annotations

import argparse
import importlib.util
import statistics
import sys
import time
from pathlib import Path

import numpy as np

from digitrec.data import load_mnist, train_val_split
from digitrec.inference.recognizer import Recognizer
from digitrec.synth.numbers import BENCH_KINDS, number_set

HERE = Path(__file__).resolve().parent


def load_baseline():
    spec = importlib.util.spec_from_file_location("gap_reader", HERE / "gap_reader.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gap_reader"] = module  # its dataclasses look themselves up there
    spec.loader.exec_module(module)
    return module


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--n", type=int, default=1000, help="numbers per set (default 1000)")
    p.add_argument("--model", default=None, help="model file (default: the shipped one)")
    p.add_argument("--split", default="test", choices=["test", "validation"])
    p.add_argument("--writers", default="mnist", choices=["mnist", "fonts"],
                   help="the digits numbers are made of: MNIST's (--split), or the held-out fonts'")
    p.add_argument("--kinds", default=",".join(BENCH_KINDS))
    p.add_argument("--no-baseline", action="store_true")
    p.add_argument("--seed", type=int, default=11)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--backend", default="torch", help="the digit model's backend: torch (predict's default) or "
                                                      "onnx (serve's)")
    return p.parse_args()


def digits(split: str, writers: str = "mnist"):
    if writers == "fonts":
        from digitrec.data.fonts import load_fonts
        from digitrec.synth.writers import font_digits

        return font_digits(3000, [f for f in load_fonts() if f.held_out], np.random.default_rng(3))
    if split == "test":
        test = load_mnist("test")
        return test.images, test.labels
    val = train_val_split(load_mnist("train"))[1]
    return val.images, val.labels


def digits_right(got: str, truth: str) -> int:
    """len(truth) minus the edit distance between the readings (never below 0)."""
    prev = list(range(len(truth) + 1))
    for i, a in enumerate(got, 1):
        row = [i]
        for j, b in enumerate(truth, 1):
            row.append(min(prev[j] + 1, row[j - 1] + 1, prev[j - 1] + (a != b)))
        prev = row
    return max(0, len(truth) - prev[-1])


def run(read, pictures) -> tuple[float, float, int, float]:
    whole, right, total, longer, times = 0, 0, 0, 0, []
    for picture, truth in pictures:
        start = time.perf_counter()
        got = read(picture)
        times.append(time.perf_counter() - start)
        whole += got == truth
        longer += len(got) > len(truth)
        right += digits_right(got, truth)
        total += len(truth)
    return whole / len(pictures), right / total, longer, 1000 * statistics.median(times)


def main() -> None:
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)
    recognizer = Recognizer.load(args.model, backend=args.backend, device="cpu")
    images, labels = digits(args.split, args.writers)
    readers = {"digitrec": lambda p: recognizer.read_number(p).text}
    if not args.no_baseline:
        gap_reader = load_baseline()
        readers["gap-splitting (before)"] = lambda p: gap_reader.read(recognizer, p)
    source = "held-out fonts'" if args.writers == "fonts" else args.split
    print(f"{source} digits, {args.n} numbers per set, digit model on {args.backend}, {args.threads} threads")
    print(f"{'set':<14} {'reader':<24} {'numbers':>8} {'digits':>8} {'longer':>7} {'ms/number':>10}")
    for k, kind in enumerate(args.kinds.split(",")):
        pictures = number_set(kind, args.n, images, labels, np.random.default_rng(args.seed * 100 + k))
        for name, read in readers.items():
            whole, per_digit, longer, ms = run(read, pictures)
            print(f"{kind:<14} {name:<24} {whole:>8.2%} {per_digit:>8.2%} {longer:>7} {ms:>10.1f}", flush=True)


if __name__ == "__main__":
    main()
