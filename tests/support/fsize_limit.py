"""`python fsize_limit.py EPOCH BYTES digitrec-args…`: run `digitrec` with a file-size limit (RLIMIT_FSIZE,
what `ulimit -f` sets) that starts just before the checkpoint of epoch EPOCH is written, so that the write
fails with EFBIG in the kernel, as a disk that filled mid-run would fail it with ENOSPC. Only the moment is
chosen here; the write, its failure and what digitrec makes of it are real."""

from __future__ import annotations

import resource
import sys

from digitrec.cli import main
from digitrec.training.runfolder import RunFolder

epoch, limit, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
save_checkpoint = RunFolder.save_checkpoint


def limited(self: RunFolder, states: dict, info: dict) -> None:
    if info["epoch"] >= epoch:
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))
    save_checkpoint(self, states, info)


RunFolder.save_checkpoint = limited  # type: ignore[method-assign]
sys.exit(main(argv))
