"""Training speed and accuracy: digitrec's recipes against the plain PyTorch way, in one run.

    python bench/train_speed.py                       # classic vs baseline, fast recipe x 5 seeds
    python bench/train_speed.py --recipes fast,classic --seeds 3 --full-classic
    python bench/train_speed.py --recipes best --seeds 3
    python bench/train_speed.py --recipes fast,classic:1 --runs runs/best-s0 runs/best-s1 runs/best-s2

Times are wall-clock seconds of training only (data loaded beforehand, evaluation
between epochs not counted). Test accuracy is measured after training and, for
the "first reached 99%" columns, after each epoch; nothing here feeds back into
training, so the test set never steers it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from digitrec.data import load_mnist, train_val_split  # noqa: E402
from digitrec.models.modelfile import read_metadata  # noqa: E402
from digitrec.models.predict import predict_proba  # noqa: E402
from digitrec.training.loop import Trainer  # noqa: E402
from digitrec.training.recipes import recipe_config  # noqa: E402

# --- the plain PyTorch way: what people copy from tutorials ---------------------------------


class PlainNet(nn.Module):
    """conv2-fc64 as a tutorial writes it: conv → relu → pool, float32, eager."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 32, 3), nn.Conv2d(32, 64, 3)
        self.fc1, self.fc2 = nn.Linear(1600, 64), nn.Linear(64, 10)

    def forward(self, x):
        x = nn.functional.max_pool2d(torch.relu(self.conv1(x)), 2)
        x = nn.functional.max_pool2d(torch.relu(self.conv2(x)), 2)
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def baseline_epoch(train, seed: int) -> float:
    """One epoch: DataLoader over a TensorDataset, Adam, batch 64. Returns seconds."""
    torch.manual_seed(seed)
    model, x = PlainNet(), (torch.from_numpy(train.images).float().unsqueeze(1) / 255 - 0.1307) / 0.3081
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loader = DataLoader(TensorDataset(x, torch.from_numpy(train.labels)), batch_size=64, shuffle=True)
    start = time.perf_counter()
    for xb, yb in loader:
        opt.zero_grad()
        nn.functional.cross_entropy(model(xb), yb).backward()
        opt.step()
    return time.perf_counter() - start


def baseline_in_fresh_process(seed: int, data_dir: str | None, threads: int | None) -> float:
    """The baseline epoch in its own Python process: digitrec tunes the process's allocator
    (device.keep_freed_memory) and a plain script would not have that."""
    cmd = [sys.executable, __file__, "--baseline-epoch", str(seed)] + (["--data-dir", data_dir] if data_dir else [])
    cmd += ["--threads", str(threads)] if threads else []
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return float(out.strip().splitlines()[-1])


def digitrec_epoch(train, val, seed: int) -> float:
    cfg = recipe_config("classic", epochs=1, seed=seed)
    trainer = Trainer(cfg, train, val, Path("/tmp"), log=lambda s: None, progress=False)
    return trainer.run(checkpoints=False)[0].seconds


# --- recipes --------------------------------------------------------------------------------


def run_recipe(name: str, seed: int, train, val, test, **overrides) -> dict:
    cfg = recipe_config(name, seed=seed, **overrides)
    trainer = Trainer(cfg, train, val, Path("/tmp"), log=lambda s: None, progress=False)
    elapsed, first_val, first_test = 0.0, None, None

    def after_epoch(stats) -> None:
        nonlocal elapsed, first_val, first_test
        elapsed += stats.seconds
        acc = float((predict_proba(trainer.final_model(tta=False), test.images).argmax(1) == test.labels).mean())
        first_val = first_val or (elapsed if stats.val_accuracy >= 0.99 else None)
        first_test = first_test or (elapsed if acc >= 0.99 else None)
        stats.test_accuracy = acc

    history = trainer.run(after_epoch, checkpoints=False)
    final = history[-1].test_accuracy
    if cfg.tta != "none":  # the saved model reads through its test-time views
        final = float((predict_proba(trainer.final_model(), test.images).argmax(1) == test.labels).mean())
    return {"recipe": name, "model": cfg.model, "epochs": cfg.epochs, "seconds": elapsed,
            "first_val": first_val, "first_test": first_test, "test": final,
            "images_per_s": len(train) * cfg.epochs / elapsed}


def matmul_gflops(repeats: int = 9) -> float:
    """Median bfloat16 2048^3 matrix-product rate: how fast this machine is right now. On a shared
    machine the same epoch can take 30% longer from one minute to the next; this line says which
    kind of minute a table was measured in (this project's CPU peaks near 413 GFLOP/s)."""
    a = torch.randn(2048, 2048, dtype=torch.bfloat16)
    a @ a
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ a
        times.append(time.perf_counter() - start)
    return 2 * 2048 ** 3 / statistics.median(times) / 1e9


def from_run(run_dir: Path) -> dict:
    """A finished `digitrec train` run folder as a result row (its own timings and test accuracy),
    for recipes too long to train inside the benchmark (the best recipe: ~11 min a seed)."""
    epochs = json.loads((run_dir / "history.json").read_text())["epochs"]
    meta = read_metadata(run_dir / "model.safetensors")
    first_val = next((e["total_seconds"] for e in epochs if e["val_accuracy"] >= 0.99), None)
    seconds = epochs[-1]["total_seconds"]
    training = meta["training"]
    return {"recipe": training.get("recipe"), "model": training["model"], "epochs": len(epochs),
            "seconds": seconds, "first_val": first_val, "first_test": None,
            "test": meta["metrics"]["test_accuracy"], "images_per_s": meta["data"]["n_train"] * len(epochs) / seconds}


def fmt(x, spec=".1f"):
    return "—" if x is None else format(x, spec)


def print_rows(rows: list[dict]) -> None:
    print(f"\n{'recipe / model':<26}{'epochs':>7}{'train s':>9}{'99% val s':>11}{'99% test s':>12}"
          f"{'test acc':>17}{'images/s':>10}{'runs':>6}")
    for r in rows:
        print(f"{r['name']:<26}{r['epochs']:>7}{r['seconds']:>9.2f}{fmt(r['first_val'], '.2f'):>11}"
              f"{fmt(r['first_test'], '.2f'):>12}{r['acc']:>17}{r['ips']:>10,.0f}{r['runs']:>6}")


def summarise(name: str, results: list[dict]) -> dict:
    accs = [100 * r["test"] for r in results]
    firsts = [r["first_val"] for r in results if r["first_val"] is not None]
    firsts_t = [r["first_test"] for r in results if r["first_test"] is not None]
    sd = statistics.stdev(accs) if len(accs) > 1 else 0.0
    return {"name": f"{name} ({results[0]['model']})", "epochs": results[0]["epochs"],
            "seconds": statistics.median(r["seconds"] for r in results),
            "first_val": statistics.median(firsts) if len(firsts) == len(results) else None,
            "first_test": statistics.median(firsts_t) if len(firsts_t) == len(results) else None,
            "acc": f"{statistics.mean(accs):.2f} ± {sd:.2f}%", "runs": len(results),
            "ips": statistics.median(r["images_per_s"] for r in results)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--recipes", default="fast", help="comma-separated: fast, classic, best; NAME:K runs K seeds")
    ap.add_argument("--seeds", type=int, default=5)
    ap.add_argument("--epoch-runs", type=int, default=3, help="A/B pairs of one conv2-fc64 epoch")
    ap.add_argument("--runs", nargs="*", default=[], metavar="RUN_DIR",
                    help="also summarise finished `digitrec train` run folders (one row)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--baseline-epoch", type=int, default=None, help=argparse.SUPPRESS)  # internal
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.baseline_epoch is not None:
        train, _ = train_val_split(load_mnist("train", args.data_dir), 5000)
        print(baseline_epoch(train, args.baseline_epoch))
        return
    t0 = time.perf_counter()
    train, val = train_val_split(load_mnist("train", args.data_dir), 5000)
    test = load_mnist("test", args.data_dir)
    print(f"data loaded in {time.perf_counter() - t0:.2f}s; torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads; bfloat16 matmul {matmul_gflops():.0f} GFLOP/s")

    base, ours = [], []
    for i in range(args.epoch_runs):  # A B A B: both see the same machine load
        base.append(baseline_in_fresh_process(i, args.data_dir, args.threads))
        ours.append(digitrec_epoch(train, val, i))
    b, o = statistics.median(base), statistics.median(ours)
    print(f"\none epoch of conv2-fc64, Adam, batch 64, {len(train):,} images (median of {args.epoch_runs}):")
    print(f"{'':<34}{'s/epoch':>9}{'images/s':>10}")
    print(f"{'plain PyTorch (DataLoader, fp32)':<34}{b:>9.2f}{len(train) / b:>10,.0f}")
    print(f"{'digitrec classic recipe':<34}{o:>9.2f}{len(train) / o:>10,.0f}")
    print(f"speed-up: {b / o:.2f}x  (per-run ratios: {', '.join(f'{x / y:.2f}' for x, y in zip(base, ours))})")

    rows = []
    for item in [r for r in args.recipes.split(",") if r]:
        name, _, seeds = item.partition(":")  # "classic:1": that recipe with its own seed count
        results = [run_recipe(name, seed, train, val, test) for seed in range(int(seeds or args.seeds))]
        rows.append(summarise(name, results))
        print(f"{name}: " + ", ".join(f"seed {i}: {100 * r['test']:.2f}% in {r['seconds']:.2f}s"
                                      for i, r in enumerate(results)), flush=True)
    if args.runs:
        results = [from_run(Path(d)) for d in args.runs]
        rows.append(summarise(f"{results[0]['recipe']} [runs]", results))
    print_rows(rows)
    print(f"bfloat16 matmul at the end: {matmul_gflops():.0f} GFLOP/s")


if __name__ == "__main__":
    main()
