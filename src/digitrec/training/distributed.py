"""Data-parallel training over several processes or machines with torch.distributed.

`torchrun` starts one process per rank and tells each who it is through the
environment (RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR/PORT).
`from_env()` reads that into a `Dist`; the Trainer asks it where to run, how to
wrap the model (DistributedDataParallel), which images of each global batch are
this rank's, and for sums of its metrics over all ranks. Without torchrun,
`Dist()` is a world of one and every method is a no-op, so the single-process
loop is the same code.

Every rank holds the whole (small) training set and computes the same epoch
permutation from (seed, epoch), so no data is sent: each rank takes its slice
of every global batch of `--batch-size` images.

BatchNorm: on CUDA the model gets SyncBatchNorm, so statistics are taken over
the whole global batch, exactly as on one process. torch's SyncBatchNorm does
not run on CPU tensors, so on CPU (gloo) each rank normalises over its own
slice (256 / 2 = 128 images with the fast recipe: still plenty) and the
running statistics are averaged over the ranks at the end of every epoch,
before validation and the checkpoint, so all ranks hold the same model.
"""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch
from torch import distributed as tdist
from torch import nn

from digitrec.errors import DigitrecError
from digitrec.util.system import usable_cores


def default_threads(local_world: int) -> int:
    """torch threads per rank when --threads is not given: this machine's cores shared evenly."""
    return max(1, usable_cores() // max(1, local_world))


@dataclass
class Dist:
    """Who this process is in the job; the defaults are a world of one (no torchrun)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0
    local_world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        """Rank 0 alone prints, writes history, checkpoints and the model file."""
        return self.rank == 0

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.world:
            raise DigitrecError(f"{batch_size} does not divide among {self.world} processes; "
                                f"use a multiple of {self.world} (it is the global batch, split over the ranks)",
                                field="batch_size")

    def start(self, device: torch.device, threads: int | None, batch_size: int) -> torch.device:
        """Join the process group (gloo on CPU, NCCL on CUDA); returns this rank's device."""
        self.check_batch(batch_size)
        if not self.enabled:
            self.device = device
            return device
        if device.type == "cuda":
            if self.local_rank >= torch.cuda.device_count():
                raise DigitrecError(f"{self.local_world} processes on this machine "
                                    f"but only {torch.cuda.device_count()} GPUs; one process per GPU", field="nproc")
            device = torch.device("cuda", self.local_rank)
            torch.cuda.set_device(device)
        if threads is None:  # torchrun sets OMP_NUM_THREADS=1; use the cores instead
            torch.set_num_threads(default_threads(self.local_world))
        if not tdist.is_initialized():
            tdist.init_process_group("nccl" if device.type == "cuda" else "gloo",
                                     device_id=device if device.type == "cuda" else None)
        if tdist.get_world_size() != self.world:
            raise DigitrecError(f"WORLD_SIZE is {self.world} but the process group has {tdist.get_world_size()}")
        self.device = device
        return device

    def finish(self) -> None:
        """Wait for every rank before leaving: a rank that tore down its gloo connections while rank 0 was
        still saving and measuring was sometimes aborted by gloo ("terminate called without an active
        exception", about one resumed run in five on 2 cores). Only after a run that ended well: a rank
        that failed must not wait for the others."""
        if self.enabled and tdist.is_available() and tdist.is_initialized():
            tdist.barrier()

    def stop(self) -> None:
        if tdist.is_available() and tdist.is_initialized():
            tdist.destroy_process_group()

    def wrap(self, model: nn.Module, seed: int) -> tuple[nn.Module, nn.Module]:
        """(the model to save and evaluate, the module to train through): the same model on one process."""
        if not self.enabled:
            return model, model
        cuda = self.device.type == "cuda"
        if cuda:
            model = nn.SyncBatchNorm.convert_sync_batchnorm(model)  # keeps .arch: only BN children are swapped
        # DDP copies rank 0's weights and buffers to every rank here; later the buffers are averaged per epoch
        net = nn.parallel.DistributedDataParallel(model, device_ids=[self.device] if cuda else None,
                                                  forward_sync_buffers=False)
        torch.manual_seed(seed * 1009 + self.rank + 1)  # each rank draws its own augmentation and dropout
        return model, net

    # --- splitting work ---

    def steps(self, n: int, batch_size: int) -> int:
        """Optimizer steps per epoch: a last partial batch too small to give every rank an image is skipped."""
        full, tail = divmod(n, batch_size)
        return full + (1 if tail >= self.world else 0)

    def shard(self, x: Any) -> Any:
        """This rank's contiguous part of a tensor or array (sizes differ by at most one)."""
        if not self.enabled:
            return x
        if isinstance(x, torch.Tensor):
            return x.tensor_split(self.world)[self.rank]
        return np.array_split(x, self.world)[self.rank]

    def shard_batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, float]:
        """This rank's images of a global batch and the weight of its loss.

        DDP averages gradients over ranks; weighting each rank's mean loss by
        world * local / global makes that average the global batch's mean, even
        for an uneven last batch.
        """
        local = self.shard(idx)
        return local, self.world * len(local) / max(1, len(idx))

    # --- agreeing on numbers ---

    def sum_values(self, *values: float | torch.Tensor) -> list[float]:
        """Each value summed over all ranks (one all-reduce)."""
        if not self.enabled:
            return [float(v) for v in values]
        t = torch.tensor([float(v) for v in values], dtype=torch.float64, device=self.device)
        tdist.all_reduce(t)
        return t.tolist()

    @torch.no_grad()
    def average_buffers(self, model: nn.Module, extra: dict[str, torch.Tensor] | None = None) -> None:
        """Average floating buffers (BatchNorm running stats) of `model` and the same names in `extra` (EMA)."""
        if not self.enabled:
            return
        buffers = {n: b for n, b in model.named_buffers() if b.dtype.is_floating_point}
        tensors = list(buffers.values()) + [extra[n] for n in buffers if extra is not None and n in extra]
        for t in tensors:
            tdist.all_reduce(t)
            t.div_(self.world)


def from_env(env: dict[str, str] | None = None) -> Dist:
    """The Dist that torchrun's environment describes; a world of one without it."""
    env = os.environ if env is None else env
    if "WORLD_SIZE" not in env:
        return Dist()
    try:
        world, rank = int(env["WORLD_SIZE"]), int(env.get("RANK", 0))
        local_rank = int(env.get("LOCAL_RANK", rank))
        local_world = int(env.get("LOCAL_WORLD_SIZE", world))
    except ValueError:
        raise DigitrecError("RANK, WORLD_SIZE, LOCAL_RANK and LOCAL_WORLD_SIZE must be integers") from None
    return Dist(rank, world, local_rank, local_world)


def launch_local(nproc: int, args: Sequence[str], threads: int | None) -> int:
    """Run `python -m digitrec ARGS` on `nproc` processes of this machine under torchrun; its exit code.

    --standalone lets torchrun pick a free port for its rendezvous. OMP_NUM_THREADS is set
    here (torchrun would set 1 and print a banner about it); each rank sets torch's own
    thread count in `Dist.start`.
    """
    env = dict(os.environ)
    env.setdefault("OMP_NUM_THREADS", str(threads or default_threads(nproc)))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "digitrec", *args]
    return subprocess.run(cmd, env=env).returncode
