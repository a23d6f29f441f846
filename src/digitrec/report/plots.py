"""Figures of a run as small PNGs: curves, predictions, confusion, mistakes, per-class bars, samples.

Every figure is a `matplotlib.figure.Figure` drawn on its own Agg canvas: no
pyplot, so no display is needed, no global backend is switched under a
notebook's feet, and nothing leaks between figures. Each function takes plain
arrays (this module never reads run files or runs a model: data flows into it),
writes one PNG atomically and returns its path. Digits are drawn ink-dark on
white, like paper, at 100 dpi so a README can show them as they are.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.ticker import PercentFormatter

from digitrec.util.files import atomic_path

DPI = 100
RIGHT = "#1b7837"  # green: correct prediction
WRONG = "#c51b1b"  # red: mistake
TRAIN = "#2166ac"
VAL = "#e08214"


def _figure(width: float, height: float) -> Figure:
    """A figure (size in inches, at DPI pixels per inch) with its own Agg canvas."""
    fig = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save(fig: Figure, path: str | Path) -> Path:
    """Write the PNG, with every piece of text drawn on it in the PNG's Description: screen readers,
    search, and the tests read what a figure says without looking at its pixels."""
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=DPI, facecolor="white", metadata={"Description": drawn_text(fig)})
    return path


def drawn_text(fig: Figure) -> str:
    """The figure's text artists (headers, titles, labels, annotations), in drawing order."""
    parts = [t.get_text() for t in fig.texts]  # the suptitle is one of them
    for ax in fig.axes:
        parts += [ax.get_title(), ax.get_xlabel(), ax.get_ylabel(), *(t.get_text() for t in ax.texts)]
    return " | ".join(" ".join(p.split()) for p in parts if p.strip())


def _grid_shape(n: int, cols: int) -> tuple[int, int]:
    """(rows, columns) for `n` cells at most `cols` wide."""
    cols = max(1, min(cols, n))
    return max(1, -(-n // cols)), cols


def _digit_grid(n: int, cols: int, title_lines: int = 1, header: str | None = None,
                cell: float = 1.05) -> tuple[Figure, list]:
    """A figure of `n` digit cells, `cell` inches square plus room for their titles, and its axes.

    Positions are computed rather than left to a layout engine: constrained
    layout over dozens of axes takes seconds, this takes milliseconds.
    """
    rows, cols = _grid_shape(n, cols)
    text = 0.16 * title_lines + 0.04  # inches above each digit for its title
    top = 0.32 if header else 0.04  # inches above the first row for the header
    width, height = max(3.2, cols * cell), top + rows * (cell + text) + 0.04  # 3.2: room for a header
    margin = (width - cols * cell) / 2  # centres a narrow grid
    fig = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(fig)
    if header:
        fig.suptitle(header, fontsize=9, y=1 - 0.06 / height, va="top")
    pad = 0.06  # inches between neighbouring digits
    axes = []
    for i in range(n):
        r, c = divmod(i, cols)
        bottom = height - top - (r + 1) * (cell + text) + pad / 2
        left = margin + c * cell + pad / 2
        ax = fig.add_axes((left / width, bottom / height, (cell - pad) / width, (cell - pad) / height))
        ax.set_axis_off()
        axes.append(ax)
    return fig, axes


def _show_digit(ax, image: np.ndarray) -> None:
    """(28, 28) uint8, ink bright → drawn dark ink on white."""
    ax.imshow(image, cmap="gray_r", vmin=0, vmax=255, interpolation="nearest")
    ax.set_axis_off()


# --- training curves ---


def plot_curves(history: Sequence[dict], path: str | Path) -> Path:
    """Accuracy and loss per epoch, train vs validation, side by side (rows from history.json)."""
    epochs = [row["epoch"] for row in history]
    fig = _figure(9, 3.4)
    acc_ax, loss_ax = fig.subplots(1, 2)
    for ax, key, title in ((acc_ax, "accuracy", "accuracy"), (loss_ax, "loss", "loss (cross-entropy)")):
        for split, colour in (("train", TRAIN), ("val", VAL)):
            values = [float("nan") if row[f"{split}_{key}"] is None else row[f"{split}_{key}"] for row in history]
            if all(v != v for v in values):  # null (NaN in older files): no validation images, or a line model's
                continue  # training lines, which are not read back
            label = f"{'train' if split == 'train' else 'validation'} (last {values[-1]:.4f})"
            ax.plot(epochs, values, marker="o", markersize=4, color=colour, label=label)
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(frameon=False, fontsize=9)
    return _save(fig, path)


# --- predictions and mistakes ---


def plot_predictions(images: np.ndarray, labels: np.ndarray, probs: np.ndarray, path: str | Path,
                     n: int = 36) -> Path:
    """The first `n` digits with 'predicted (true)' above each; mistakes in red with a red frame."""
    n = min(n, len(images))
    predicted = probs.argmax(1)
    wrong = int((predicted[:n] != labels[:n]).sum())
    fig, axes = _digit_grid(n, 6, header=f"predicted label (true label): {n - wrong} right, {wrong} wrong")
    for i, ax in enumerate(axes):
        _show_digit(ax, images[i])
        ok = predicted[i] == labels[i]
        text = f"{predicted[i]}" if ok else f"{predicted[i]} (true {labels[i]})"
        ax.set_title(text, fontsize=9, color=RIGHT if ok else WRONG, fontweight="normal" if ok else "bold")
        if not ok:
            ax.set_axis_on()
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_edgecolor(WRONG)
                spine.set_linewidth(2.5)
    return _save(fig, path)


def _percent(p: float) -> str:
    """A probability to one decimal, never rounded to a false 100.0% or 0.0%."""
    return ">99.9%" if p >= 0.9995 else "<0.1%" if p < 0.0005 else f"{p:.1%}"


def confident_mistakes(labels: np.ndarray, probs: np.ndarray, n: int) -> np.ndarray:
    """Indices of the `n` mistakes the model was surest of, surest first."""
    predicted = probs.argmax(1)
    wrong = np.flatnonzero(predicted != labels)
    order = np.argsort(-probs[wrong, predicted[wrong]], kind="stable")
    return wrong[order[:n]]


def plot_mistakes(images: np.ndarray, labels: np.ndarray, probs: np.ndarray, path: str | Path,
                  n: int = 24) -> Path:
    """The most confident mistakes, each titled with its true label and the two top probabilities."""
    index = confident_mistakes(labels, probs, n)
    total = int((probs.argmax(1) != labels).sum())
    if len(index) == 0:
        fig = _figure(6.4, 1.2)
        text = f"no mistakes on {len(labels):,} image{'s' if len(labels) != 1 else ''}"
        fig.text(0.5, 0.5, text, ha="center", va="center", fontsize=12)
        return _save(fig, path)
    header = f"most confident mistakes ({len(index)} of {total:,}): true label, then top-2 probabilities"
    fig, axes = _digit_grid(len(index), 6, title_lines=3, header=header)
    for ax, i in zip(axes, index):
        _show_digit(ax, images[i])
        first, second = np.argsort(-probs[i])[:2]
        top2 = "\n".join(f"{d}: {_percent(probs[i, d])}" for d in (first, second))
        ax.set_title(f"true {labels[i]}\n{top2}", fontsize=8, color=WRONG, linespacing=1.15)
    return _save(fig, path)


# --- metrics ---


def plot_confusion(confusion: np.ndarray, path: str | Path) -> Path:
    """(10, 10) counts, rows = true digit, columns = predicted; log colour so single errors show."""
    confusion = np.asarray(confusion)
    fig = _figure(5.6, 5.0)
    ax = fig.subplots()
    shown = np.ma.masked_equal(confusion, 0)  # zeros stay white
    image = ax.imshow(shown, cmap="Blues", norm=LogNorm(vmin=1, vmax=max(2, confusion.max())))
    fig.colorbar(image, ax=ax, shrink=0.8, label="images (log scale)")
    dark = np.sqrt(max(2, confusion.max()))  # cells above this are dark enough for white text
    for (r, c), count in np.ndenumerate(confusion):
        if count:
            ax.text(c, r, str(count), ha="center", va="center", fontsize=7 if count >= 1000 else 8,
                    color="white" if count > dark else "black")
    ax.set_xticks(range(10))
    ax.set_yticks(range(10))
    ax.set_xlabel("predicted digit")
    ax.set_ylabel("true digit")
    accuracy = np.trace(confusion) / max(1, confusion.sum())
    ax.set_title(f"confusion matrix: {np.trace(confusion):,}/{confusion.sum():,} right ({accuracy:.2%})", fontsize=10)
    return _save(fig, path)


def plot_reliability(rows: list[tuple[float, float, int]], ece: float, calibrated: bool, path: str | Path) -> Path:
    """Accuracy against confidence per band (rows of `training.metrics.reliability`), with the diagonal
    a calibrated model's bars would reach and each band's count."""
    fig = _figure(5.2, 4.4)
    ax = fig.subplots()
    ax.plot([0, 1], [0, 1], color="black", linestyle="--", linewidth=1, label="calibrated")
    if rows:
        conf, acc, count = (np.array(c) for c in zip(*rows))
        ax.bar(conf, acc, width=0.05, color=TRAIN, alpha=0.8, label="accuracy in the band")
        for c, a, n in rows:
            ax.text(c, min(a, 0.97) + 0.02, f"{n:,}", ha="center", fontsize=6, rotation=90)
    ax.set_xlim(0, 1.02)
    ax.set_ylim(0, 1.08)
    ax.set_xlabel("confidence (probability of the answer)")
    ax.set_ylabel("accuracy")
    state = "calibrated on validation" if calibrated else "uncalibrated"
    ax.set_title(f"reliability · expected calibration error {ece:.2%}\n{state}", fontsize=9)
    ax.legend(loc="upper left", fontsize=8)
    return _save(fig, path)


def plot_per_class(confusion: np.ndarray, path: str | Path) -> Path:
    """Accuracy on each true digit (recall) as bars, with the overall accuracy as a line."""
    confusion = np.asarray(confusion)
    support = confusion.sum(axis=1)
    recall = np.divide(np.diag(confusion), support, out=np.zeros(10), where=support > 0)
    overall = np.trace(confusion) / max(1, confusion.sum())
    fig = _figure(7, 3.2)
    ax = fig.subplots()
    colours = [WRONG if r < overall else TRAIN for r in recall]
    bars = ax.bar(range(10), recall, color=colours)
    ax.bar_label(bars, labels=[f"{r:.1%}" if s else "" for r, s in zip(recall, support)], fontsize=7, padding=2)
    ax.axhline(overall, color="black", linestyle="--", linewidth=1)
    low = float(recall[support > 0].min()) if support.any() else 0.0
    bottom = max(0.0, low - 0.1 * (1 - low) - 0.02)
    ax.set_ylim(bottom, 1.0 + 0.12 * (1 - low) + 0.005)
    for digit in np.flatnonzero(support == 0):
        ax.text(digit, bottom, "no\nimages", ha="center", va="bottom", fontsize=7, color="grey")
    ax.yaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=None))
    ax.set_xticks(range(10))
    ax.set_xlabel("true digit")
    ax.set_ylabel("accuracy")
    ax.set_title(f"accuracy per digit; dashed: overall {overall:.2%}; red: below overall", fontsize=10)
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


# --- dataset samples ---


def plot_samples(images: np.ndarray, labels: np.ndarray | None, path: str | Path, n: int = 25,
                 title: str | None = None) -> Path:
    """The first `n` digits of a dataset with their labels ('?' when the data has none)."""
    n = min(n, len(images))
    fig, axes = _digit_grid(n, min(10, int(np.ceil(np.sqrt(n)))), header=title)
    for i, ax in enumerate(axes):
        _show_digit(ax, images[i])
        ax.set_title("?" if labels is None else str(labels[i]), fontsize=9)
    return _save(fig, path)
