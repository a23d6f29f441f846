"""Where to set the "not a digit" threshold, on validation only: the shipped model's not-a-digit rates on the
5,000 validation digits, 3,000 validation non-digits and the validation digits redrawn with each writing
habit (synth.styles), at several thresholds: the sets `training.run` calibrates every run on.
docs/honesty.md has the table.

    python bench/threshold_study.py [--model FILE]
"""
import argparse

import torch

from digitrec.models.calibration import NOT_A_DIGIT, calibrated
from digitrec.models.modelfile import load_model, shipped_model_path
from digitrec.models.predict import predict_proba
from digitrec.training.config import TrainConfig
from digitrec.training.run import validation_digits, validation_non_digits, validation_restyled


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, meta = load_model(args.model or shipped_model_path())
    cfg = TrainConfig.from_dict(meta["training"])  # the very sets its training run calibrated on

    def p_not(images):
        return calibrated(predict_proba(model, images), meta)[:, NOT_A_DIGIT]

    val = validation_digits(cfg)
    p_val, p_nd = p_not(val.images), p_not(validation_non_digits(cfg, val).images)
    restyled = {h: p_not(images) for h, images in validation_restyled(cfg, val).items()}
    print(f"{'threshold':>9} {'digits':>8} {'non-digits':>11} " + " ".join(f"{h:>11}" for h in restyled))
    for t in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98):
        row = " ".join(f"{(p >= t).mean():>11.2%}" for p in restyled.values())
        print(f"{t:>9} {(p_val >= t).mean():>8.2%} {(p_nd >= t).mean():>11.2%} {row}", flush=True)


if __name__ == "__main__":
    main()
