"""Accuracy, per-class precision/recall/F1 and the confusion matrix."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Metrics:
    accuracy: float
    confusion: np.ndarray  # (10, 10): rows = true digit, columns = predicted digit
    precision: np.ndarray  # (10,)
    recall: np.ndarray  # (10,)
    f1: np.ndarray  # (10,)

    def to_dict(self) -> dict:
        return {
            "accuracy": self.accuracy,
            "n": int(self.confusion.sum()),
            "per_class": [
                {"digit": d, "precision": float(self.precision[d]), "recall": float(self.recall[d]),
                 "f1": float(self.f1[d]), "support": int(self.confusion[d].sum())}
                for d in range(10)
            ],
            "confusion": self.confusion.tolist(),
        }


def compute_metrics(labels: np.ndarray, predicted: np.ndarray) -> Metrics:
    confusion = np.zeros((10, 10), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    tp = np.diag(confusion).astype(float)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.nan_to_num(tp / confusion.sum(axis=0))
        recall = np.nan_to_num(tp / confusion.sum(axis=1))
        f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
    accuracy = float(tp.sum() / max(1, confusion.sum()))
    return Metrics(accuracy, confusion, precision, recall, f1)


def format_metrics(m: Metrics) -> str:
    """The human-readable report `digitrec evaluate` prints."""
    lines = [f"test accuracy: {m.accuracy:.4f} ({int(np.trace(m.confusion))}/{int(m.confusion.sum())})", "",
             "digit  precision  recall      f1  support"]
    for d in range(10):
        lines.append(f"{d:>5}  {m.precision[d]:>9.4f}  {m.recall[d]:>6.4f}  {m.f1[d]:>6.4f}  {m.confusion[d].sum():>7}")
    lines += ["", "confusion matrix (rows: true digit, columns: predicted)",
              "      " + "".join(f"{d:>6}" for d in range(10))]
    lines += [f"{d:>6}" + "".join(f"{v:>6}" for v in m.confusion[d]) for d in range(10)]
    return "\n".join(lines)
