"""Inference speed of the backends: torch eager vs onnxruntime (float and int8).

    python bench/infer_speed.py [--models conv2-fc128 conv2-fc64 | runs/x/model.safetensors] [--reps 7]

For each model and backend: images/s at batches of 1, 64 and 1,024, and the
latency of one image (p50/p99), all through `Backend.probabilities`, the path
every user of digitrec goes through (uint8 pixels in, probabilities out).
A model name gets random weights (speed does not depend on them); a model file
is used as it is. The machine is shared, so every number is the median of
`--reps` repetitions and backends are interleaved (A B C A B C …) so that
background load falls on all of them alike.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

# Before torch starts OpenMP: idle torch threads sleep instead of spinning. On a machine whose
# cores other processes share, spinning made 2-thread torch 10× slower at batch 1 and 7× at
# batch 64 (measured); onnxruntime gets the same treatment (allow_spinning=0, onnx_backend.py).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from digitrec import models  # noqa: E402
from digitrec.inference.backends import load_backend  # noqa: E402
from digitrec.models.modelfile import save_model  # noqa: E402

BATCHES = (1, 64, 1024)
BLOCK_SECONDS = 0.05  # one timed block of calls; short, so load changes hit every backend alike
LATENCY_CALLS = 300  # single-image calls per backend per repetition
LATENCY_BLOCK = 20  # consecutive single-image calls per backend before the next backend's turn


class TunedTorch:
    """torch eager at its best on this CPU: inference_mode and channels_last memory layout
    (oneDNN's preferred layout for convolutions: 1.6-2.4× faster than NCHW here at batch 64-1024)."""

    def __init__(self, path: Path, threads: int) -> None:
        from digitrec.models.modelfile import load_model
        from digitrec.models.predict import to_input

        self.name, self.threads, self.to_input = f"torch eager tuned, {threads} thr", threads, to_input
        self.model = load_model(path)[0].eval().to(memory_format=torch.channels_last)

    def probabilities(self, images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            x = self.to_input(torch.from_numpy(images)).contiguous(memory_format=torch.channels_last)
            return torch.softmax(self.model(x), dim=1).numpy()


class Timed:
    """A backend with the torch thread count it runs under (set before each of its calls)."""

    def __init__(self, label: str, backend, torch_threads: int) -> None:
        self.label, self.backend, self.torch_threads = label, backend, torch_threads

    def call(self, images: np.ndarray) -> float:
        if torch.get_num_threads() != self.torch_threads:
            torch.set_num_threads(self.torch_threads)
            self.backend.probabilities(images)  # untimed: the first call after a change resizes the pool
        start = time.perf_counter()
        self.backend.probabilities(images)
        return time.perf_counter() - start


def load_backends(path: Path, threads: int) -> list[Timed]:
    """digitrec's torch backend as users get it, then torch eager tuned and the onnxruntime
    backends at 1 and at `threads` threads (onnx backends: batches up to 16 always on one)."""
    timed = [Timed("torch backend, 1 thr", load_backend(path, "torch", device="cpu"), 1),
             Timed("torch eager tuned, 1 thr", TunedTorch(path, 1), 1)]
    if threads > 1:
        timed.append(Timed(f"torch eager tuned, {threads} thr", TunedTorch(path, threads), threads))
    for name, label in (("onnx", "onnxruntime"), ("onnx-int8", "onnxruntime int8")):
        for t in sorted({1, threads}):
            torch.set_num_threads(t)  # the onnx backends take torch's thread count for batches
            timed.append(Timed(f"{label}, {t} thr", load_backend(path, name), t))
    return timed


def model_files(names: list[str], tmp: Path) -> list[Path]:
    """Model files as given, or a random-init file for each model name."""
    files = []
    for name in names:
        if name.endswith(".safetensors"):
            files.append(Path(name))
            continue
        torch.manual_seed(0)
        path = tmp / f"{name}.safetensors"
        save_model(models.create_model(name), path)
        files.append(path)
    return files


def rotated(items: list, rep: int) -> list:
    return items[rep % len(items):] + items[:rep % len(items)]


def throughput_rep(timed: list[Timed], images: np.ndarray, batch: int, rep: int) -> dict[str, float]:
    """Images/s of each backend in one repetition: a block of calls each, in rotated order."""
    x, out = images[:batch], {}
    for t in rotated(timed, rep):
        calls, spent = 0, 0.0
        while spent < BLOCK_SECONDS or calls < 1:
            spent += t.call(x)
            calls += 1
        out[t.label] = calls * batch / spent
    return out


def latency_rep(timed: list[Timed], images: np.ndarray, rep: int) -> dict[str, tuple[float, float]]:
    """(p50, p99) ms of single-image calls, a new digit each call, backends taking turns in blocks."""
    samples: dict[str, list[float]] = {t.label: [] for t in timed}
    for block in range(0, LATENCY_CALLS, LATENCY_BLOCK):
        for t in rotated(timed, rep + block):
            samples[t.label] += [t.call(images[i:i + 1]) * 1e3 for i in range(block, block + LATENCY_BLOCK)]
    return {k: (float(np.percentile(v, 50)), float(np.percentile(v, 99))) for k, v in samples.items()}


def bench_model(path: Path, images: np.ndarray, reps: int, threads: int) -> list[tuple[str, dict]]:
    """Medians over `reps` of each number, for each backend."""
    timed = load_backends(path, threads)
    for t in timed:  # warm-up: first calls allocate and pick kernels
        for b in BATCHES:
            t.call(images[:b])
    runs: dict[str, list[dict]] = {t.label: [] for t in timed}
    for rep in range(reps):
        rates = {b: throughput_rep(timed, images, b, rep) for b in BATCHES}
        lat = latency_rep(timed, images, rep)
        for t in timed:
            runs[t.label].append({**{f"b{b}": rates[b][t.label] for b in BATCHES},
                                  "p50": lat[t.label][0], "p99": lat[t.label][1]})
    return [(label, {k: statistics.median(r[k] for r in rows) for k in rows[0]}) for label, rows in runs.items()]


def format_table(results: list[tuple[str, str, dict]]) -> str:
    head = f"| model | backend | {' | '.join(f'img/s @{b}' for b in BATCHES)} | p50 ms (1 img) | p99 ms (1 img) |"
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for model, label, r in results:
        rates = " | ".join(f"{r[f'b{b}']:,.0f}" for b in BATCHES)
        lines.append(f"| {model} | {label} | {rates} | {r['p50']:.3f} | {r['p99']:.3f} |")
    return "\n".join(lines)


def load_digits() -> np.ndarray:
    """Real test digits when MNIST is at hand ($DIGITREC_DATA; only their pixels are timed), else random ones.
    The int8 backend calibrates on MNIST training images from the same place."""
    from digitrec.data import load_mnist
    from digitrec.errors import DigitrecError

    try:
        return load_mnist("test", download=False).images[:max(BATCHES)]
    except DigitrecError:
        return np.random.default_rng(0).integers(0, 256, (max(BATCHES), 28, 28), dtype=np.uint8)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["conv2-fc128", "conv2-fc64"],
                   help="model names (random weights) or .safetensors files")
    p.add_argument("--reps", type=int, default=7, help="repetitions; the table shows medians")
    p.add_argument("--threads", type=int, default=torch.get_num_threads(),
                   help="threads for batched runs (default: torch's, one per core)")
    args = p.parse_args(argv)
    images = load_digits()
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        for path in model_files(args.models, Path(tmp)):
            name = path.stem if path.parent == Path(tmp) else str(path)
            results += [(name, label, row) for label, row in bench_model(path, images, args.reps, args.threads)]
            print(f"  {name} done", file=sys.stderr, flush=True)
    print(f"torch {torch.__version__}, {args.threads} threads for batches, medians of {args.reps} interleaved runs")
    print(format_table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
