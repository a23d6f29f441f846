"""`digitrec evaluate MODEL`: test accuracy, per-class precision/recall/F1, confusion matrix."""

import json

from .. import data as datamod
from ..device import pick_device, set_threads
from ..evaluate import compute_metrics, format_metrics
from ..inference import predict_proba
from ..modelfile import load_model


def add_parser(sub) -> None:
    p = sub.add_parser("evaluate", help="measure a model file on the test set")
    p.add_argument("model", help="a digitrec model file (.safetensors)")
    p.add_argument("--data", default=None, help="test data: MNIST (default), a labelled .csv, .npz or folder")
    p.add_argument("--data-dir", default=None, help="folder of the MNIST IDX files")
    p.add_argument("--json", action="store_true", help="print the metrics as JSON")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.set_defaults(run=run)


def run(args) -> int:
    set_threads(args.threads)
    device = pick_device(args.device)
    model, meta = load_model(args.model)
    test = datamod.load(args.data, "test", args.data_dir)
    if test.labels is None:
        raise datamod.DigitrecError(f"{test.source}: has no labels to evaluate against")
    probs = predict_proba(model.to(device), test.images, device=device)
    metrics = compute_metrics(test.labels, probs.argmax(1))
    if args.json:
        print(json.dumps({"model": str(args.model), "arch": meta["arch"], "data": test.source, **metrics.to_dict()}))
    else:
        print(f"model: {args.model} ({meta['arch']})  data: {test.source}")
        print(format_metrics(metrics))
    return 0
