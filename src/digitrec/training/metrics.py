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


def digit_answers(probs: np.ndarray) -> np.ndarray:
    """The most probable digit of each row of (N, 10 or 11) probabilities, a "not a digit" output aside:
    digit accuracy is comparable between models that can say "not a digit" and models that cannot."""
    return probs[:, :10].argmax(1)


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


# --- how much the probabilities can be trusted ---

ECE_BINS = 15
COVERAGE_THRESHOLDS = (0.0, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 0.99)


def answers(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(answer, confidence) per row of (N, C) probabilities: the most probable class (10 = not a digit)."""
    return probs.argmax(1), probs.max(1)


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the true labels (natural log)."""
    return float(-np.log(np.clip(probs[np.arange(len(labels)), labels], 1e-12, None)).mean())


def reliability(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> list[tuple[float, float, int]]:
    """(mean confidence, accuracy, count) per equal-width confidence bin: the reliability diagram."""
    answer, confidence = answers(probs)
    correct = answer == labels
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1], right=True), 0, bins - 1)
    out = []
    for b in range(bins):
        inside = which == b
        if inside.any():
            out.append((float(confidence[inside].mean()), float(correct[inside].mean()), int(inside.sum())))
    return out


def ece(probs: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS) -> float:
    """Expected calibration error: the count-weighted mean |accuracy − confidence| over the bins."""
    rows = reliability(probs, labels, bins)
    total = sum(n for _, _, n in rows)
    return float(sum(n * abs(acc - conf) for conf, acc, n in rows) / max(1, total))


def coverage_table(probs: np.ndarray, labels: np.ndarray,
                   thresholds: tuple[float, ...] = COVERAGE_THRESHOLDS) -> list[dict]:
    """Answering only when the top probability reaches each threshold: the share answered, and the
    error rate among the answers."""
    answer, confidence = answers(probs)
    rows = []
    for t in thresholds:
        kept = confidence >= t
        errors = int((answer[kept] != labels[kept]).sum())
        rows.append({"threshold": t, "answered": float(kept.mean()) if len(kept) else 0.0,
                     "error": errors / max(1, int(kept.sum()))})
    return rows


def format_calibration(probs: np.ndarray, labels: np.ndarray, note: str) -> str:
    """What `digitrec evaluate` prints about the probabilities themselves."""
    lines = [f"probabilities: {note}",
             f"expected calibration error {ece(probs, labels):.4f}, negative log-likelihood {nll(probs, labels):.4f}",
             "", "answer only above   answered   error among answers"]
    lines += [f"{r['threshold']:>17.2f}   {r['answered']:>8.2%}   {r['error']:>18.3%}"
              for r in coverage_table(probs, labels)]
    return "\n".join(lines)
