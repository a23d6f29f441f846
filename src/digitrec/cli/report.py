"""`digitrec report RUN_DIR_OR_MODEL_FILE`: figures (PNG) and one self-contained report.html."""

from __future__ import annotations

from digitrec.cli.common import print_report
from digitrec.util.device import set_threads


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
    # matplotlib loads only when a report is drawn
    from digitrec.report.page import write_report

    set_threads(args.threads)
    report = write_report(args.target, args.out, args.data, args.data_dir, args.device)
    print_report(report)
    return 0
