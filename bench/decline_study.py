"""Where to set the "not a digit" threshold, on validation only: the shipped model's decline rates on the
5,000 validation digits, 3,000 validation non-digits and the validation digits redrawn with each writing
habit (pictures.styles, random stream 21), at several thresholds. docs/honesty.md has the table.

    python bench/decline_study.py [--model FILE]
"""
import argparse

import numpy as np
import torch

from digitrec.data import load_mnist, train_val_split
from digitrec.inference.recognizer import default_model_path
from digitrec.models.calibration import calibrated
from digitrec.models.modelfile import load_model
from digitrec.models.predict import predict_proba
from digitrec.pictures import styles
from digitrec.training.run import RESTYLED_SEED
from digitrec.training.synthetic import nondigit_bank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, meta = load_model(args.model or default_model_path())
    val = train_val_split(load_mnist("train"))[1]
    rng = np.random.default_rng(RESTYLED_SEED)
    p_val = calibrated(predict_proba(model, val.images), meta)[:, 10]
    p_nd = calibrated(predict_proba(model, nondigit_bank(3000, val, seed=1, tag="val").images), meta)[:, 10]
    restyled = {h: calibrated(predict_proba(model, styles.restyle(val.images, val.labels, h, rng)), meta)[:, 10]
                for h in styles.HABITS}
    print(f"{'threshold':>9} {'digits':>8} {'non-digits':>11} " + " ".join(f"{h:>11}" for h in restyled))
    for t in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.98):
        row = " ".join(f"{(p >= t).mean():>11.2%}" for p in restyled.values())
        print(f"{t:>9} {(p_val >= t).mean():>8.2%} {(p_nd >= t).mean():>11.2%} {row}", flush=True)


if __name__ == "__main__":
    main()
