"""Distributed training: 2 processes on this machine through `digitrec train --nproc 2` and torchrun.

Each rank writes what it trained on and digests of its weights to $DIGITREC_DIST_TRACE
(rank<R>.json), so the tests can compare ranks with each other and with one process.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from helpers import assert_user_error, free_port, run_cli
from safetensors.torch import load_file

QUICK = ["--no-report", "--quiet", "--subset", "2000", "--val-size", "500", "--batch-size", "64", "--threads", "1"]
N_TRAIN, BATCH = 2000, 64
TRACER = Path(__file__).resolve().parents[1] / "support" / "dist_trace"


def _env(trace) -> dict[str, str]:
    """The environment of a traced run: the ranks load support/dist_trace/sitecustomize.py."""
    path = os.pathsep.join(p for p in (str(TRACER), os.environ.get("PYTHONPATH")) if p)
    return {**os.environ, "PYTHONUNBUFFERED": "1", "DIGITREC_DIST_TRACE": str(trace), "PYTHONPATH": path}


def train(tmp, name, *args, nproc=None):
    """Train into tmp/name with a trace in tmp/name-trace; (completed process, out dir, {rank: trace})."""
    out, trace = tmp / name, tmp / f"{name}-trace"
    extra = ["--nproc", str(nproc)] if nproc else []
    cmd = [sys.executable, "-m", "digitrec", "train", *QUICK, *extra, *map(str, args), "--out", str(out)]
    result = subprocess.run(cmd, env=_env(trace), capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    return result, out, _traces(trace)


def _traces(folder):
    return {doc["rank"]: doc for doc in (json.loads(p.read_text()) for p in sorted(folder.glob("rank*.json")))}


def _weights(out):
    return load_file(str(out / "model.safetensors"))


def _test_accuracy(result) -> float:
    line = next(x for x in result.stdout.splitlines() if x.startswith("test accuracy:"))
    return float(line.split(":")[1])


def kill_tree(pid: int) -> None:
    """SIGKILL a process and all its descendants, as a crash would: torchrun starts each rank in a
    session of its own, so killing the launcher's process group would leave the ranks running."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    todo, tree = [pid], []
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    for p in tree:
        with contextlib.suppress(ProcessLookupError):
            os.kill(p, signal.SIGKILL)


# --- fast: one short 2-process run of a BatchNorm model ---


@pytest.fixture(scope="module")
def bn_two(tmp_path_factory):
    return train(tmp_path_factory.mktemp("bn"), "two", "--model", "bn-conv3-w16", "--epochs", "1", "--seed", "3",
                 nproc=2)


def test_every_rank_ends_with_the_same_parameters_and_batchnorm_statistics(bn_two):
    _, _, traces = bn_two
    assert sorted(traces) == [0, 1] and all(t["world"] == 2 for t in traces.values())
    assert traces[0]["params_sha256"] == traces[1]["params_sha256"]
    assert traces[0]["state_sha256"] == traces[1]["state_sha256"]  # running mean/var averaged over ranks
    assert traces[0]["bn_classes"] == ["BatchNorm2d"]  # CPU: torch's SyncBatchNorm needs a GPU
    assert traces[0]["threads"] == traces[1]["threads"] == 1


def test_each_rank_trains_on_its_half_of_every_single_process_batch(bn_two):
    from digitrec.training.digits import epoch_permutation

    _, _, traces = bn_two
    order = epoch_permutation(3, 1, N_TRAIN).tolist()
    single = [order[i:i + BATCH] for i in range(0, N_TRAIN, BATCH)]
    shards = list(zip(traces[0]["batches"], traces[1]["batches"]))
    assert len(shards) == len(single) == 32
    for (a, b), batch in zip(shards, single):
        assert a + b == batch and len(a) == len(batch) // 2  # 32 + 32 (the last: 8 + 8)


def test_only_rank_zero_prints_and_writes_the_run(bn_two):
    result, out, traces = bn_two
    assert result.stdout.count("epoch  1/1") == 1 and result.stdout.count("test accuracy:") == 1
    assert {"model.safetensors", "checkpoint.safetensors", "history.json", "config.json"} <= {
        p.name for p in out.iterdir()}
    from digitrec.models.modelfile import load_model, weights_digest

    model, meta = load_model(out / "model.safetensors")
    assert weights_digest(model.state_dict()) == traces[0]["state_sha256"]
    assert meta["training"]["batch_size"] == BATCH


def test_batch_size_must_divide_among_the_processes(tmp_path):
    assert_user_error(run_cli("train", *QUICK, "--nproc", "2", "--batch-size", "63", "--out", tmp_path / "r"),
                      "--batch-size", "63", "2 processes")
    assert_user_error(run_cli("train", *QUICK, "--nproc", "0", "--out", tmp_path / "r"), "--nproc")


def test_the_split_of_a_global_batch():
    from digitrec.training.distributed import Dist, from_env

    two = [Dist(rank=r, world=2) for r in (0, 1)]
    tail = torch.arange(7)  # an uneven last batch: 4 + 3 images, losses weighted 8/7 and 6/7
    (a, wa), (b, wb) = (d.shard_batch(tail) for d in two)
    assert a.tolist() + b.tolist() == list(range(7)) and wa * 7 == pytest.approx(8) and wb * 7 == pytest.approx(6)
    assert two[0].steps(2000, 64) == 32 and two[0].steps(1985, 64) == 31  # a 1-image tail can't be split
    d = from_env({"RANK": "3", "WORLD_SIZE": "4", "LOCAL_RANK": "1", "LOCAL_WORLD_SIZE": "2"})
    assert (d.rank, d.world, d.local_rank, d.local_world, d.is_main) == (3, 4, 1, 2, False)
    assert from_env({}).world == 1 and from_env({}).is_main


def test_nproc_passes_every_other_option_on_to_torchrun():
    from digitrec.cli import build_parser
    from digitrec.cli.train import forwarded_args

    given = ["train", "--nproc", "2", "--bf16", "--subset", "0", "--model", "conv2-fc64", "--lr", "0.01",
             "--out", "runs/x"]
    got = forwarded_args(build_parser().parse_args(given))
    assert "--nproc" not in got and "--quiet" not in got and got[got.index("--subset") + 1] == "0"

    def options(argv):
        ns = vars(build_parser().parse_args(argv))
        return {k: v for k, v in ns.items() if k not in ("parser", "run", "nproc")}

    assert options(["train", *got]) == options(given)


# --- slow: against one process, resume, two "nodes" ---


@pytest.fixture(scope="module")
def fc_runs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fc")
    args = ("--model", "conv2-fc64", "--epochs", "2", "--seed", "7")
    return tmp, args, train(tmp, "one", *args), train(tmp, "two", *args, nproc=2)


@pytest.mark.slow
def test_two_processes_train_like_one_with_the_same_global_batch(fc_runs):
    # conv2-fc64 has no BatchNorm, so DDP's averaged gradient is the global batch's gradient exactly
    # up to float summation order: the weights agree closely after 64 Adam steps and so do the
    # accuracies (only digits on the decision boundary can flip; 0.005 = 50 of 10,000 test images).
    _, _, (one, one_out, _), (two, two_out, _) = fc_runs
    w1, w2 = _weights(one_out), _weights(two_out)
    assert max((w1[k] - w2[k]).abs().max().item() for k in w1) < 1e-2
    assert abs(_test_accuracy(one) - _test_accuracy(two)) <= 0.005
    h1, h2 = (json.loads((o / "history.json").read_text())["epochs"] for o in (one_out, two_out))
    assert [len(h1), len(h2)] == [2, 2]
    assert h1[-1]["train_loss"] == pytest.approx(h2[-1]["train_loss"], abs=0.01)


@pytest.mark.slow
def test_a_batchnorm_model_reaches_single_process_accuracy(bn_two, tmp_path):
    # On CPU each rank normalises over its 32 images instead of all 64: a slightly different function,
    # not float noise. Changing the seed of this short run moves test accuracy by about 5 points (sd;
    # 0.79-0.91 over 5 seeds at 2 epochs), so landing within 2 points of the same-seed single run
    # is as close as "the same training" can be asked to be here.
    one, _, _ = train(tmp_path, "one", "--model", "bn-conv3-w16", "--epochs", "1", "--seed", "3")
    assert abs(_test_accuracy(one) - _test_accuracy(bn_two[0])) <= 0.02


@pytest.mark.slow
def test_resume_after_the_two_process_run_was_killed(fc_runs):
    tmp, args, _, (_, ref_out, _) = fc_runs
    out = tmp / "killed"
    cmd = [sys.executable, "-m", "digitrec", "train", *QUICK, *args, "--nproc", "2", "--out", str(out)]
    proc = subprocess.Popen(cmd, env=_env(tmp / "killed-trace"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while not (out / "checkpoint.safetensors").exists() and time.time() < deadline:
        time.sleep(0.01)
    kill_tree(proc.pid)  # the launcher, torchrun and both ranks, early in epoch 2 (~1 s)
    proc.wait()
    assert not (out / "model.safetensors").exists()
    resumed = subprocess.run([sys.executable, "-m", "digitrec", "train", "--nproc", "2", "--resume", str(out),
                              "--no-report"], env=_env(tmp / "resumed-trace"), capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert resumed.stdout.count("after epoch 1") == 1
    ref, got = _weights(ref_out), _weights(out)
    assert all(torch.equal(ref[k], got[k]) for k in ref)
    assert [e["epoch"] for e in json.loads((out / "history.json").read_text())["epochs"]] == [1, 2]


@pytest.mark.slow
def test_two_nodes_meet_through_c10d_rendezvous(fc_runs, tmp_path):
    _, args, _, (two, two_out, two_traces) = fc_runs
    endpoint = f"127.0.0.1:{free_port()}"
    out, trace = tmp_path / "nodes", tmp_path / "nodes-trace"
    node = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc-per-node", "1",
            "--rdzv-backend", "c10d", "--rdzv-endpoint", endpoint, "--rdzv-id", "digitrec-test",
            "-m", "digitrec", "train", *QUICK, *args, "--out", str(out)]
    procs = [subprocess.Popen(node, env=_env(trace), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sum(o.count("test accuracy:") for o, _ in outputs) == 1  # one node's rank 0 reports
    traces = _traces(trace)
    assert sorted(traces) == [0, 1] and traces[0]["params_sha256"] == traces[1]["params_sha256"]
    assert traces[0]["batches"] == two_traces[0]["batches"]  # same shards as 2 processes on one node
    ref, got = _weights(two_out), _weights(out)
    assert all(torch.equal(ref[k], got[k]) for k in ref)


@pytest.mark.slow
def test_a_line_model_trains_on_two_processes_each_its_half_of_every_group(tmp_path):
    """--recipe numbers under --nproc: both ranks draw the same lines and each trains on its half of every
    group of similar width; they end with the same weights and BatchNorm statistics."""
    result, out, traces = train(tmp_path, "lines", "--recipe", "numbers", "--lines", "256", "--epochs", "1",
                                "--seed", "2", nproc=2)
    assert traces[0]["params_sha256"] == traces[1]["params_sha256"]
    assert traces[0]["state_sha256"] == traces[1]["state_sha256"]
    groups = list(zip(traces[0]["batches"], traces[1]["batches"]))
    assert len(groups) == 256 // BATCH and all(len(a) == len(b) == BATCH // 2 for a, b in groups)
    assert sorted(i for a, b in groups for i in a + b) == list(range(256))
    assert result.stdout.count("epoch  1/1") == 1 and "exact" in result.stdout
    assert json.loads((out / "history.json").read_text())["epochs"][0]["train_accuracy"] is None
