"""`digitrec evaluate MODEL`: test accuracy, per-class precision/recall/F1, confusion matrix."""

import json
import sys

from digitrec.errors import DigitrecError
from digitrec.inference.recognizer import Recognizer
from digitrec.models import calibration
from digitrec.models.modelfile import shipped_model_path
from digitrec.pictures.folders import load_data
from digitrec.training.metrics import (
    compute_metrics,
    coverage_table,
    digit_answers,
    ece,
    format_calibration,
    format_metrics,
    nll,
)
from digitrec.util.device import set_threads


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="measure a model file on the test set")
    p.add_argument("model", nargs="?", default=None,
                   help="a digitrec model file (.safetensors), or an exported .onnx with --backend onnx "
                        "(default: the model shipped with digitrec)")
    p.add_argument("--backend", default="torch", help="torch | onnx | onnx-int8 (onnxruntime, CPU)")
    p.add_argument("--data", default=None, help="test data: MNIST (default), a labelled .csv, .npz or folder")
    p.add_argument("--data-dir", default=None, help="folder of the MNIST IDX files")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.set_defaults(run=run)


def _to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def run(args) -> int:
    set_threads(args.threads)
    recognizer = Recognizer.load(args.model, backend=args.backend, device=args.device)
    backend, meta = recognizer.backend, recognizer.backend.metadata
    name = args.model or "the shipped model"
    test = load_data(args.data, "test", args.data_dir, log=_to_stderr if args.json else print)
    if test.labels is None:
        raise DigitrecError(f"{test.source}: has no labels to evaluate against")
    probs = backend.probabilities(test.images)  # calibrated, when the file says how
    metrics = compute_metrics(test.labels, digit_answers(probs))
    not_digit = calibration.said_not_digit(probs, recognizer.not_digit_threshold)
    counting = float(((digit_answers(probs) == test.labels) & ~not_digit).mean())
    honest = {"calibration": calibration.describe(meta), "not_digit_share": float(not_digit.mean()),
              "accuracy_counting_not_digit": counting,
              # the names of before the glossary, kept for scripts that read them (docs/glossary.md)
              "declined": float(not_digit.mean()), "accuracy_counting_declines": counting,
              "ece": ece(probs, test.labels), "nll": nll(probs, test.labels),
              "coverage": coverage_table(probs, test.labels)}
    if args.json:
        print(json.dumps({"model": str(args.model or shipped_model_path()), "arch": meta["arch"],
                          "backend": backend.name, "data": test.source, **metrics.to_dict(), **honest}))
        return 0
    print(f"model: {name} ({meta['arch']}, {backend.name})  data: {test.source}")
    print(format_metrics(metrics))
    if probs.shape[1] > calibration.NOT_A_DIGIT:
        print(f"\nanswered 'not a digit': {int(not_digit.sum())} of {len(not_digit):,} ({not_digit.mean():.2%}); "
              f"accuracy counting them as mistakes: {counting:.4f}")
    print()
    print(format_calibration(probs, test.labels, honest["calibration"]))
    return 0
