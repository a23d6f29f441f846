"""Honest answers, measured: "not a digit", calibrated probabilities, MNIST-style pictures, world styles.

    python bench/honesty.py [--model FILE ...] [--non-digits 5000] [--seed 7]

For each model (default: the shipped one), on sets built here from MNIST *test* digits and
fonts the models never trained on (docs/honesty.md says how to rebuild them):

- non-digits called not a digit: 5,000 synthetic non-digits, letters from the STIX font family only
  (training and validation use DejaVu and Computer Modern), scribbles, doodles, textures and
  overlapping pairs of test digits, drawn with a random stream no training run uses;
- MNIST test digits called not a digit, accuracy among the answered digits, and accuracy
  counting a "not a digit" as a mistake;
- expected calibration error (15 bins) and NLL of the 10,000 test digits, before calibration
  (the network's raw softmax) and after (the file's temperature);
- `predict` on the 10,000 test digits saved as PNG files (through `preprocess`, as the CLI reads
  them) against `evaluate` on the same digits;
- accuracy on test digits restyled with each habit of synth.styles (a crossed 7, a flagged 1, …),
  next to the same digits plain, and what the restyled digits were mistaken for.

Nothing here chooses anything: the temperature and the not-a-digit threshold come from the model file,
fitted on the validation split when it was trained.
"""

from __future__ import annotations

import argparse
import io
import time
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from digitrec.data import load_mnist
from digitrec.inference.recognizer import Recognizer
from digitrec.models.calibration import NOT_A_DIGIT, calibrated, said_not_digit
from digitrec.models.modelfile import load_model, shipped_model_path
from digitrec.models.predict import predict_proba
from digitrec.synth import nondigits, styles
from digitrec.training.metrics import digit_answers, ece, nll


def parse_args() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", nargs="*", default=None, help="model files (default: the shipped one)")
    p.add_argument("--non-digits", type=int, default=5000)
    p.add_argument("--seed", type=int, default=7, help="the test sets' random stream (training uses 0 and 1)")
    p.add_argument("--threads", type=int, default=2)
    return p.parse_args()


def build_sets(n_non: int, seed: int) -> dict:
    test = load_mnist("test")
    rng = np.random.default_rng(seed)
    start = time.perf_counter()
    others, kinds = nondigits.non_digits(n_non, rng, test.images, families=nondigits.TEST_FAMILIES)
    restyled = {h: styles.restyle(test.images, test.labels, h, rng) for h in styles.HABITS}
    pngs = [png(255 - d if i % 2 else d) for i, d in enumerate(test.images)]  # both polarities
    print(f"test sets built in {time.perf_counter() - start:.0f} s: {n_non} non-digits "
          f"({', '.join(f'{k} {c}' for k, c in zip(nondigits.KINDS, np.bincount(kinds, minlength=5)))}), "
          f"{sum(len(v) for v in restyled.values())} restyled digits, {len(pngs)} PNG files")
    return {"test": test, "others": others, "kinds": kinds, "restyled": restyled, "pngs": pngs}


def png(image: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format="PNG")
    return buf.getvalue()


def measure(path: Path, sets: dict) -> dict[str, str]:
    test = sets["test"]
    recognizer = Recognizer.load(path, device="cpu")
    meta = recognizer.metadata
    model, _ = load_model(path)
    raw = predict_proba(model, test.images)
    probs = calibrated(raw, meta)
    can_say_not_digit = probs.shape[1] > NOT_A_DIGIT
    out_probs = calibrated(predict_proba(model, sets["others"]), meta)
    digits_not_digit = said_not_digit(probs, recognizer.not_digit_threshold)
    others_not_digit = said_not_digit(out_probs, recognizer.not_digit_threshold)
    right = digit_answers(probs) == test.labels
    row = {
        "non-digits called not a digit": pct(others_not_digit.mean()) if can_say_not_digit else "— (cannot)",
        **{f"  {k}": pct(others_not_digit[sets["kinds"] == i].mean()) if can_say_not_digit else "—"
           for i, k in enumerate(nondigits.KINDS)},
        "MNIST test digits called not a digit": pct(digits_not_digit.mean()),
        "accuracy among answered digits": pct(right[~digits_not_digit].mean()),
        "accuracy, a 'not a digit' counted wrong": pct((right & ~digits_not_digit).mean()),
        "ECE before calibration": pct(ece(raw, test.labels)),
        "ECE after calibration": pct(ece(probs, test.labels)) if meta.get("calibration") else "— (none)",
        "NLL before / after": f"{nll(raw, test.labels):.4f} / {nll(probs, test.labels):.4f}",
        "mean top probability": f"{probs.max(1).mean():.4f}",
    }
    row.update(predict_pngs(recognizer, sets["pngs"], test.labels, right.mean()))
    row.update(styled(recognizer, model, meta, sets))
    return row


def predict_pngs(recognizer: Recognizer, pngs: list[bytes], labels: np.ndarray, evaluate: float) -> dict[str, str]:
    answers = recognizer.predict_many(pngs)
    got = np.array([a.digit if a.digit is not None else -1 for a in answers])
    unsure = np.mean([a.unsure for a in answers])
    return {"evaluate (raw pixels)": pct(evaluate), "predict on PNG files": pct((got == labels).mean()),
            "  marked unsure": pct(unsure)}


def styled(recognizer: Recognizer, model, meta: dict, sets: dict) -> dict[str, str]:
    test, out = sets["test"], {}
    for habit, (label, _) in styles.HABITS.items():
        probs = calibrated(predict_proba(model, sets["restyled"][habit]), meta)
        answer = np.where(said_not_digit(probs, recognizer.not_digit_threshold), NOT_A_DIGIT, digit_answers(probs))
        plain = (digit_answers(calibrated(predict_proba(model, test.images[test.labels == label]), meta)) == label)
        wrong = Counter(int(a) for a in answer if a != label).most_common(2)
        mistaken = ", ".join(f"{'not a digit' if a == NOT_A_DIGIT else a}×{n}" for a, n in wrong) or "none"
        out[f"restyled {habit} (plain)"] = f"{pct((answer == label).mean())} ({pct(plain.mean())}); {mistaken}"
    return out


def pct(x: float) -> str:
    return f"{100 * float(x):.2f}%"


def main() -> None:
    args = parse_args()
    import torch

    torch.set_num_threads(args.threads)
    paths = [Path(p) for p in args.model] if args.model else [shipped_model_path()]
    sets = build_sets(args.non_digits, args.seed)
    rows = {str(p): measure(p, sets) for p in paths}
    names = list(next(iter(rows.values())))
    width = max(len(n) for n in names)
    cols = [Path(p).name for p in rows]
    print("\n" + " " * width + "  " + "  ".join(f"{c:>34}" for c in cols))
    for name in names:
        print(f"{name:<{width}}  " + "  ".join(f"{rows[p][name]:>34}" for p in rows))


if __name__ == "__main__":
    main()
