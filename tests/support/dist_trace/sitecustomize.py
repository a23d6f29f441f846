"""Test scaffolding for tests/training/test_distributed.py, kept out of the package.

The distributed tests start real `torchrun` ranks as subprocesses with this folder on PYTHONPATH
and $DIGITREC_DIST_TRACE set; Python imports this module at start-up in every rank, and it wraps
two methods so that each rank, once trained, writes DIGITREC_DIST_TRACE/rank<R>.json: the image
indices of every batch it trained on and digests of its weights, for the tests to compare.
"""

import os

if os.environ.get("DIGITREC_DIST_TRACE"):
    import json
    from pathlib import Path

    from digitrec.models.modelfile import weights_digest
    from digitrec.training.distributed import Dist
    from digitrec.training.loop import Trainer

    _batches: list[list[int]] = []
    _shard_batch, _run = Dist.shard_batch, Trainer.run

    def shard_batch(self, idx):
        local, weight = _shard_batch(self, idx)
        _batches.append(local.tolist())
        return local, weight

    def run(self, *args, **kwargs):
        import torch

        history = _run(self, *args, **kwargs)
        model, dist = self.model, self.dist
        params = {n: p.detach() for n, p in model.named_parameters()}
        doc = {"rank": dist.rank, "world": dist.world, "device": str(dist.device),
               "threads": torch.get_num_threads(), "batches": _batches,
               "params_sha256": weights_digest(params), "state_sha256": weights_digest(model.state_dict()),
               "bn_classes": sorted({type(m).__name__ for m in model.modules() if "BatchNorm" in type(m).__name__})}
        folder = Path(os.environ["DIGITREC_DIST_TRACE"])
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"rank{dist.rank}.json").write_text(json.dumps(doc))
        return history

    Dist.shard_batch, Trainer.run = shard_batch, run
