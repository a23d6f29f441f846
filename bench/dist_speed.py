"""Training throughput: one process with T threads against P processes (DDP, gloo) with T/P threads each.

    python bench/dist_speed.py                      # 1 x 2 threads, 2 x 1 thread, 1 x 1 thread; 3 rounds
    python bench/dist_speed.py --rounds 5 --subset 20000

For each setting the same global batch is trained on `--subset` MNIST images for
two epochs; the table gives images per second of the second epoch (the first
also pays for oneDNN's kernel selection) as the median over rounds, with the
spread. Rounds interleave the settings, so load from other programs on a shared
machine hits them alike; the numbers are still noisy there.

Each run is a fresh process (or a torchrun job) that calls this file with
`--worker`; the worker trains through digitrec's Trainer and prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
sys.path.insert(0, str(SRC))

SETTINGS = {  # name: TrainConfig overrides
    "conv2-fc64 b64": dict(model="conv2-fc64", batch_size=64, optimizer="adam", lr=1e-3),
    "fast (bn-conv3-w16 b256)": dict(recipe="fast"),
}


def worker(setting: str, subset: int, threads: int) -> None:
    """Train two epochs (under torchrun: as one rank) and print rank 0's epoch seconds as JSON."""
    from digitrec.data import load_mnist
    from digitrec.training import distributed
    from digitrec.training.loop import Trainer
    from digitrec.training.recipes import recipe_config

    overrides = dict(SETTINGS[setting])
    cfg = recipe_config(overrides.pop("recipe", None), **overrides, epochs=2, threads=threads, seed=0)
    train = load_mnist("train", os.environ.get("DIGITREC_DATA")).subset(range(subset))
    dist = distributed.from_env()
    try:
        with tempfile.TemporaryDirectory() as tmp:
            history = Trainer(cfg, train, None, Path(tmp), log=lambda _: None, progress=False, dist=dist).run()
    finally:
        dist.stop()
    if dist.is_main:
        print(json.dumps({"seconds": [h.seconds for h in history], "world": dist.world, "n": subset}))


def measure(setting: str, procs: int, threads: int, subset: int) -> float:
    """Images per second of the second epoch for `procs` processes x `threads` threads each."""
    args = [__file__, "--worker", setting, "--subset", str(subset), "--threads", str(threads)]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    if procs > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={procs}", *args]
    else:
        cmd = [sys.executable, *args]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True).stdout
    doc = json.loads(out.strip().splitlines()[-1])
    assert doc["world"] == procs
    return subset / doc["seconds"][-1]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--subset", type=int, default=10000, help="training images per epoch")
    p.add_argument("--layouts", default="1x2,2x1,1x1",
                   help="PROCSxTHREADS, comma-separated; the first is the baseline of the last column")
    p.add_argument("--settings", default=",".join(SETTINGS), help="comma-separated names from: " + ", ".join(SETTINGS))
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.worker:
        return worker(args.worker, args.subset, args.threads)
    layouts = [tuple(int(v) for v in lay.split("x")) for lay in args.layouts.split(",")]  # (procs, threads)
    settings = args.settings.split(",")
    rates: dict[tuple, list[float]] = {(s, lay): [] for s in settings for lay in layouts}
    for r in range(args.rounds):
        for s in settings:
            for lay in layouts:
                rates[s, lay].append(measure(s, *lay, args.subset))
                print(f"round {r + 1}: {s:<26} {lay[0]} proc x {lay[1]} thr  {rates[s, lay][-1]:8.0f} img/s",
                      file=sys.stderr)
    print(f"\n{'setting':<26} {'layout':<16} {'images/s (median)':>18} {'min..max':>14} {'vs first':>10}")
    for s in settings:
        base = statistics.median(rates[s, layouts[0]])
        for lay in layouts:
            v = rates[s, lay]
            med = statistics.median(v)
            print(f"{s:<26} {f'{lay[0]} proc x {lay[1]} thr':<16} {med:>18.0f} "
                  f"{f'{min(v):.0f}..{max(v):.0f}':>14} {med / base:>9.2f}x")
    print(f"\n{args.rounds} rounds, {args.subset} images, second epoch; other programs' load makes these noisy.")


if __name__ == "__main__":
    main()
