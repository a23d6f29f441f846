"""What several commands share: printing a report's summary."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the report room imports matplotlib: only the commands that draw load it
    from digitrec.report.page import Report


def print_report(report: Report, accuracy: bool = True) -> None:
    """What `report` and `train` print: the accuracy, each figure, the page, and any notes."""
    if accuracy and report.metrics is not None:
        print(f"test accuracy: {report.metrics.accuracy:.4f}")
    for path in report.figures.values():
        print(f"figure: {path}")
    for note in report.notes:
        print(f"note: {note}")
    print(f"{report.html_path.name}: {report.html_path}")
