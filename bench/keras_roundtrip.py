"""Keras → digitrec round trip for the four starting architectures, measured on all 10,000 test digits.

Trains each architecture in Keras 3 (torch backend, one thread) like its project does (pixel/255,
Adam, batch 64) for --epochs on the first --train training images, saves .keras and .h5, converts
each with the real `digitrec import-keras` command and evaluates it with `digitrec evaluate`, and
prints: parameters, Keras' test accuracy, digitrec's, the max |Δ probability| over the test set,
and the import command's wall time (median of --repeats runs, Python start-up included).

    python bench/keras_roundtrip.py [--train 60000] [--epochs 1] [--archs conv2-fc64 ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
from keras_models import ARCHS, keras_proba, train_keras  # noqa: E402  (sets KERAS_BACKEND=torch)

from digitrec.data import load_mnist  # noqa: E402
from digitrec.inference.backends import load_backend  # noqa: E402

CLI = [sys.executable, "-m", "digitrec"]


def import_and_evaluate(src: Path, out: Path, repeats: int) -> tuple[float, float]:
    """(median wall seconds of `digitrec import-keras`, accuracy `digitrec evaluate` reports)."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([*CLI, "import-keras", str(src), "--out", str(out), "--overwrite"], check=True,
                       capture_output=True)
        times.append(time.perf_counter() - start)
    report = subprocess.run([*CLI, "evaluate", str(out), "--json", "--threads", "1", "--device", "cpu"],
                            check=True, capture_output=True, text=True).stdout
    return statistics.median(times), json.loads(report)["accuracy"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=60000, help="training images (the first N)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--archs", nargs="+", default=list(ARCHS), choices=ARCHS)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train, test = load_mnist("train", download=False), load_mnist("test", download=False)
    print(f"{'architecture':<14}{'file':<8}{'params':>10}{'keras acc':>11}{'digitrec acc':>14}"
          f"{'max |Δp|':>11}{'import s':>10}")
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.archs:
            model = train_keras(arch, train.images[:args.train], train.labels[:args.train], args.epochs)
            expected = keras_proba(model, test.images)
            keras_acc = float((expected.argmax(1) == test.labels).mean())
            for fmt in ("keras", "h5"):
                src, out = Path(tmp) / f"{arch}.{fmt}", Path(tmp) / f"{arch}-{fmt}.safetensors"
                model.save(src)
                seconds, acc = import_and_evaluate(src, out, args.repeats)
                delta = np.abs(load_backend(out, device="cpu").probabilities(test.images) - expected).max()
                print(f"{arch:<14}{'.' + fmt:<8}{model.count_params():>10,}{keras_acc:>11.4f}{acc:>14.4f}"
                      f"{delta:>11.2e}{seconds:>10.2f}", flush=True)


if __name__ == "__main__":
    main()
