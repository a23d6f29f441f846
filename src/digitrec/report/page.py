"""A run shown as pictures: its figures as PNGs and one self-contained HTML page.

`write_report` takes a run folder (or a bare model file), runs the model on
labelled test data through the one inference path (`backends.load_backend`),
draws the figures with `plots` and writes `report.html`, with every figure
embedded as a base64 data URI and the CSS inline, so the page opens from disk,
mails as one file and needs no server.
"""

from __future__ import annotations

import base64
import html
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from digitrec.data import dataset as datamod
from digitrec.errors import DigitrecError
from digitrec.inference.backends import load_backend
from digitrec.models import list_models
from digitrec.models.modelfile import read_metadata
from digitrec.pictures.folders import load_data
from digitrec.report import plots
from digitrec.training.config import TrainConfig
from digitrec.training.metrics import Metrics, compute_metrics, digit_answers, ece, reliability
from digitrec.training.run import load_test_data as run_test_data
from digitrec.training.runfolder import RunFolder
from digitrec.util.files import atomic_write, check_writable_dir

REPORT = "report.html"
# file stem → caption, in the order the page shows them
CAPTIONS = {
    "curves": "Accuracy and loss per epoch, training vs validation.",
    "per_class": "Accuracy on each digit (recall).",
    "confusion": "Confusion matrix: rows are the true digit, columns the prediction.",
    "predictions": "The first test digits with their predicted label; mistakes in red.",
    "mistakes": "The mistakes the model was most sure of, with its two most likely digits.",
    "reliability": "Reliability: in each band of confidence, how often the answer was right. A calibrated "
                   "model's bars reach the diagonal.",
}


@dataclass
class RunFiles:
    """What a report is made from: the model file, its metadata and, for a run folder, its history."""

    model_path: Path
    metadata: dict[str, Any]
    history: list[dict] | None = None
    notes: list[str] = field(default_factory=list)  # what is missing and why, shown on the page


@dataclass
class Report:
    html_path: Path
    figures: dict[str, Path]
    metrics: Metrics | None
    notes: list[str]


def locate(target: str | Path) -> RunFiles:
    """A run folder (model.safetensors + history.json) or a model file → RunFiles."""
    target = Path(target)
    if target.is_dir():
        folder = RunFolder(target)
        if not folder.model.is_file():
            raise DigitrecError(f"{target}: no {folder.MODEL} in this folder (is it a finished `digitrec train` run?)")
        run = RunFiles(folder.model, read_metadata(folder.model))
        if folder.history.is_file():
            run.history = folder.load_history()
        else:
            run.notes.append(f"No {folder.HISTORY} in {target}, so no training curves.")
        if "training" not in run.metadata and folder.config.is_file():
            run.metadata["training"] = folder.load_config().to_dict()
        return run
    if target.is_file():
        run = RunFiles(target, read_metadata(target))
        run.notes.append("A bare model file has no training history, so there are no training curves; "
                         "report on its run folder to see them.")
        return run
    raise DigitrecError(f"{target}: not found; expected a run folder or a model file")


def report_test_data(run: RunFiles, data: str | None = None, data_dir: str | None = None) -> datamod.Dataset | None:
    """`data` if given, else the test split of what the model was trained on; None when there is none."""
    if run.metadata.get("arch") in list_models("line"):
        run.notes.append("A line reader reads numbers, not single digits: its measure is bench/number_reading.py, "
                         "so the report shows its training curves only.")
        return None
    if data is not None:
        test = load_data(data, "test", data_dir)
    else:
        cfg = TrainConfig.from_dict(run.metadata.get("training", {}))
        cfg.data_dir = data_dir or cfg.data_dir
        if not cfg.measure_test:
            run.notes.append("The run was trained with --no-test, so the report leaves the test set alone: "
                             "pass --data to measure it.")
            return None
        test = run_test_data(cfg)
        if test is None:
            run.notes.append(f"The training data ({cfg.data}) has no test split: pass --data with labelled "
                             "test data to see predictions, the confusion matrix and mistakes.")
            return None
    if test.labels is None:
        raise DigitrecError(f"{test.source}: has no labels; a report needs labelled test data")
    return test


def make_figures(run: RunFiles, test: datamod.Dataset | None, probs: np.ndarray | None,
                 metrics: Metrics | None, out_dir: Path) -> dict[str, Path]:
    """Every figure the inputs allow, as out_dir/<name>.png, in CAPTIONS order."""
    figures = {}
    if run.history:
        figures["curves"] = plots.plot_curves(run.history, out_dir / "curves.png")
    if test is not None and probs is not None and metrics is not None:
        digits = probs[:, :10]  # the digit figures; `digitrec evaluate` counts the not-a-digit answers
        figures["per_class"] = plots.plot_per_class(metrics.confusion, out_dir / "per_class.png")
        figures["confusion"] = plots.plot_confusion(metrics.confusion, out_dir / "confusion.png")
        figures["predictions"] = plots.plot_predictions(test.images, test.labels, digits, out_dir / "predictions.png")
        figures["mistakes"] = plots.plot_mistakes(test.images, test.labels, digits, out_dir / "mistakes.png")
        figures["reliability"] = plots.plot_reliability(reliability(probs, test.labels), ece(probs, test.labels),
                                                        run.metadata.get("calibration") is not None,
                                                        out_dir / "reliability.png")
    return figures


def default_out_dir(target: str | Path) -> Path:
    """A run folder reports into itself; a model file into <stem>-report/ beside it."""
    target = Path(target)
    return target if target.is_dir() else target.with_name(f"{target.stem}-report")


def write_report(target: str | Path, out_dir: str | Path | None = None, data: str | None = None,
                 data_dir: str | None = None, device: str = "auto") -> Report:
    """Figures and report.html for a run folder or model file; returns where they went."""
    run = locate(target)
    out_dir = check_writable_dir(out_dir if out_dir is not None else default_out_dir(target), "out")
    test = report_test_data(run, data, data_dir)
    probs = metrics = None
    if test is not None:
        probs = load_backend(run.model_path, device=device).probabilities(test.images)  # (N, 10 or 11), calibrated
        metrics = compute_metrics(test.labels, digit_answers(probs))
    figures = make_figures(run, test, probs, metrics, out_dir)
    page = render_html(run, test, metrics, figures)
    atomic_write(out_dir / REPORT, page.encode("utf-8"))
    return Report(out_dir / REPORT, figures, metrics, run.notes)


# --- the HTML page ---

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; max-width: 960px; margin: 2em auto;
       padding: 0 1em; color: #222; line-height: 1.4; }
h1 { font-size: 1.5em; margin-bottom: 0.2em; } h2 { font-size: 1.2em; margin-top: 1.6em; }
.headline { font-size: 1.1em; color: #444; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.8em; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
.low { color: #c51b1b; font-weight: bold; }
figure { margin: 1em 0; } img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
.note { background: #fff7e0; border-left: 4px solid #e0a800; padding: 0.4em 0.8em; margin: 0.5em 0; }
.cols { display: flex; flex-wrap: wrap; gap: 2em; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _rows(pairs: list[tuple[str, Any]]) -> str:
    return "".join(f"<tr><th>{_e(k)}</th><td>{_e(v)}</td></tr>" for k, v in pairs if v not in (None, "", {}))


def _fmt(value: Any) -> str:
    if value is None:  # a figure that does not apply (history.json's null)
        return "—"
    if isinstance(value, float):
        return "—" if math.isnan(value) else f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _settings_html(run: RunFiles) -> str:
    meta = run.metadata
    training = meta.get("training", {})
    data_info = meta.get("data", {})
    model = [("file", run.model_path), ("architecture", meta.get("arch")),
             ("architecture arguments", _fmt(meta["arch_kwargs"]) if meta.get("arch_kwargs") else None),
             ("parameters", f"{meta['parameters']:,}" if isinstance(meta.get("parameters"), int) else None),
             ("versions", ", ".join(f"{k} {v}" for k, v in meta.get("versions", {}).items()))]
    model += [(f"data: {k}", v) for k, v in data_info.items() if k in ("source", "n_train", "n_val", "n_test")]
    settings = [(k, _fmt(v)) for k, v in training.items() if v not in (None, {}) and k != "model"]
    return (f"<div class='cols'><div><h2>Model</h2><table>{_rows(model)}</table></div>"
            f"<div><h2>Training settings</h2><table>{_rows(settings) or '<tr><td>not recorded</td></tr>'}"
            "</table></div></div>")


def _metrics_html(metrics: Metrics, test: datamod.Dataset, recorded_val: Any) -> str:
    head = (f"<p class='headline'>Test accuracy <b>{metrics.accuracy:.4f}</b> "
            f"({int(np.trace(metrics.confusion)):,} of {int(metrics.confusion.sum()):,} images of "
            f"{_e(test.source)})")
    if isinstance(recorded_val, float):
        head += f"; validation accuracy at the end of training {recorded_val:.4f}"
    rows = []
    for d in range(10):
        low = " class='num low'" if metrics.recall[d] < metrics.accuracy else " class='num'"
        rows.append(f"<tr><td class='num'>{d}</td><td class='num'>{metrics.precision[d]:.4f}</td>"
                    f"<td{low}>{metrics.recall[d]:.4f}</td><td class='num'>{metrics.f1[d]:.4f}</td>"
                    f"<td class='num'>{int(metrics.confusion[d].sum()):,}</td></tr>")
    return (f"<h2>Metrics</h2>{head}.</p><table><tr><th class='num'>digit</th><th class='num'>precision</th>"
            "<th class='num'>recall</th><th class='num'>F1</th><th class='num'>support</th></tr>"
            + "".join(rows) + "</table>")


def _history_html(history: list[dict]) -> str:
    cols = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "seconds")
    head = "".join(f"<th class='num'>{c.replace('_', ' ')}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td class='num'>{_e(_fmt(row.get(c)))}</td>" for c in cols) + "</tr>"
                   for row in history)
    return f"<h2>Training history</h2><table><tr>{head}</tr>{body}</table>"


def _figure_html(name: str, path: Path) -> str:
    encoded = base64.b64encode(path.read_bytes()).decode("ascii")
    return (f"<figure id='{name}'><img src='data:image/png;base64,{encoded}' alt='{_e(CAPTIONS[name])}'>"
            f"<figcaption>{_e(CAPTIONS[name])}</figcaption></figure>")


def render_html(run: RunFiles, test: datamod.Dataset | None, metrics: Metrics | None,
                figures: dict[str, Path]) -> str:
    """The whole page as one string: no external files, scripts or fonts."""
    title = f"digitrec report: {run.metadata.get('arch', 'model')} ({run.model_path})"
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{_e(title)}</title>",
             f"<style>{_CSS}</style></head><body><h1>{_e(title)}</h1>"]
    parts += [f"<p class='note'>{_e(note)}</p>" for note in run.notes]
    if metrics is not None and test is not None:
        parts.append(_metrics_html(metrics, test, run.metadata.get("metrics", {}).get("val_accuracy")))
    parts.append("<h2>Figures</h2>")
    parts += [_figure_html(name, figures[name]) for name in CAPTIONS if name in figures]
    if run.history:
        parts.append(_history_html(run.history))
    parts.append(_settings_html(run))
    parts.append("</body></html>\n")
    return "\n".join(parts)
