"""`digitrec report RUN_DIR_OR_MODEL_FILE`: figures (PNG) and one self-contained report.html."""

from __future__ import annotations

from digitrec.util.device import set_threads
from digitrec.report.page import REPORT, Report, write_report


def add_parser(sub) -> None:
    p = sub.add_parser("report", help="draw a run's figures and write a self-contained HTML report")
    p.add_argument("target", metavar="RUN_DIR_OR_MODEL_FILE",
                   help="a run folder from `digitrec train`, or a model file")
    p.add_argument("--out", default=None,
                   help="folder for the PNGs and report.html (default: the run folder, or <model>-report/)")
    p.add_argument("--data", default=None,
                   help="labelled test data: MNIST, a .csv, .npz or folder (default: the model's own test data)")
    p.add_argument("--data-dir", default=None, help="folder of the MNIST IDX files ($DIGITREC_DATA)")
    p.add_argument("--device", default="auto", help="auto | cpu | cuda")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.set_defaults(run=run)


def run(args) -> int:
    set_threads(args.threads)
    report = write_report(args.target, args.out, args.data, args.data_dir, args.device)
    print_report(report)
    return 0


def print_report(report: Report, accuracy: bool = True) -> None:
    """What `report` and `train` print: the accuracy, each figure, the page, and any notes."""
    if accuracy and report.metrics is not None:
        print(f"test accuracy: {report.metrics.accuracy:.4f}")
    for path in report.figures.values():
        print(f"figure: {path}")
    for note in report.notes:
        print(f"note: {note}")
    print(f"{REPORT}: {report.html_path}")
