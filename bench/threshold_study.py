"""Where to set the "not a digit" threshold, on validation only: a model's not-a-digit rates on the 5,000
validation digits, 3,000 validation non-digits and the validation digits redrawn with each writing habit
(synth.styles) -- the sets `training.run` calibrates every run on -- and on the held-out fonts' letters and
digits (the cross-writer validation set, the draw `training.run.cross_writer` measures), at several
thresholds and at the one the rule (training.calibration) fits. docs/honesty.md and docs/writers.md have
the tables.

    python bench/threshold_study.py [--model FILE] [--refit OUT] [--threads 1]

`--refit OUT` writes the model file again with its calibration and threshold fitted by the rule in force,
exactly as a training run fits them (`training.calibration.calibrate` on the same validation sets), the
weights untouched: how a model trained under an earlier rule is brought under this one.
"""
import argparse

import torch

from digitrec.models.calibration import NOT_A_DIGIT, with_temperature
from digitrec.models.modelfile import load_model, save_model, shipped_model_path
from digitrec.models.predict import predict_proba
from digitrec.training.calibration import calibrate
from digitrec.training.config import TrainConfig
from digitrec.training.run import cross_writer_bank, validation_digits, validation_non_digits, validation_restyled

THRESHOLDS = (0.5, 0.7, 0.8, 0.9, 0.95, 0.97, 0.98, 0.99)
FILE_KEYS = ("format", "format_version", "arch", "arch_kwargs", "input", "weights_sha256")  # save_model writes these


def raw_sets(model, cfg: TrainConfig) -> dict:
    """The model's raw probabilities on every validation set the study reads."""
    val = validation_digits(cfg)
    bank = cross_writer_bank()
    fonts = predict_proba(model, bank.images)
    return {"digits": predict_proba(model, val.images), "labels": val.labels,
            "non-digits": predict_proba(model, validation_non_digits(cfg, val).images),
            "restyled": {h: predict_proba(model, im) for h, im in validation_restyled(cfg, val).items()},
            "font letters": fonts[bank.labels >= 10], "font digits": fonts[bank.labels < 10]}


def table(raw: dict, meta: dict) -> None:
    t = meta["calibration"]["temperature"]
    cols = {"digits": raw["digits"], "non-digits": raw["non-digits"], **raw["restyled"],
            "font letters": raw["font letters"], "font digits": raw["font digits"]}
    p_not = {name: with_temperature(p, t)[:, NOT_A_DIGIT] for name, p in cols.items()}
    fitted = meta["rejection"]["not_digit_threshold"]
    print(f"temperature {t}; the rule's threshold {fitted}")
    print(f"{'threshold':>9} " + " ".join(f"{name[:12]:>12}" for name in p_not))
    for th in sorted({*THRESHOLDS, fitted}):
        mark = "*" if th == fitted else " "
        print(f"{th:>8}{mark} " + " ".join(f"{(p >= th).mean():>12.2%}" for p in p_not.values()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--refit", default=None, metavar="OUT", help="write the model refitted under the rule here")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model, meta = load_model(args.model or shipped_model_path())
    cfg = TrainConfig.from_dict(meta["training"])  # the very sets its training run calibrated on
    raw = raw_sets(model, cfg)
    fitted = calibrate(raw["digits"], raw["labels"], raw["non-digits"], raw["restyled"])
    print(f"in the file: threshold {meta['rejection']['not_digit_threshold']}, "
          f"temperature {meta['calibration']['temperature']}")
    table(raw, fitted)
    if args.refit:
        fitted["rejection"]["refitted"] = ("after training, by bench/threshold_study.py --refit under "
                                           "training.calibration's rule (weights untouched)")
        kept = {k: v for k, v in meta.items() if k not in FILE_KEYS}
        save_model(model, args.refit, {**kept, **fitted})
        print(f"written: {args.refit}")


if __name__ == "__main__":
    main()
