"""Which backend `serve` defaults to: every backend's answers on the 10,000 MNIST test digits against torch's.

    python bench/backends.py [--model FILE] [--threads 2]

For each backend (torch, onnx, onnx-int8), through `Recognizer.probabilities` (the path the server
uses, calibration applied): test accuracy, how many answers differ from torch's, the largest
difference in any probability, and digits/s in batches of 64 (one run; the machine is shared, so
`bench/serve_load.py`'s bare-model line is the better speed figure). The default backend is the
fastest whose accuracy equals torch's.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from digitrec.data import load_mnist
from digitrec.inference.recognizer import Recognizer
from digitrec.models.calibration import NOT_A_DIGIT
from digitrec.training.metrics import digit_answers


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    test = load_mnist("test")
    reference = None
    print("| backend | test accuracy | answers unlike torch's | max probability difference | digits/s @64 |")
    print("|---|---:|---:|---:|---:|")
    for name in ("torch", "onnx", "onnx-int8"):
        r = Recognizer.load(args.model, backend=name, device="cpu")
        start = time.perf_counter()
        probs = np.concatenate([r.probabilities(test.images[i:i + 64]) for i in range(0, len(test), 64)])
        rate = len(test) / (time.perf_counter() - start)
        answers = digit_answers(probs)
        accuracy = float((answers == test.labels).mean())
        if reference is None:
            reference = (answers, probs)
            unlike, diff = "—", "—"
        else:
            unlike = str(int((answers != reference[0]).sum()))
            diff = f"{float(np.abs(probs - reference[1]).max()):.1e}"
        declined = int((probs[:, NOT_A_DIGIT] >= r.not_digit_threshold).sum()) if probs.shape[1] > NOT_A_DIGIT else 0
        print(f"| {name} | {accuracy:.2%} ({declined} not a digit) | {unlike} | {diff} | {rate:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
