"""The run folder: the one owner of what `digitrec train` leaves on disk and how it is read back.

    RUN/config.json             the TrainConfig, so --resume can rebuild the run
    RUN/checkpoint.safetensors  model, optimizer, EMA and RNG state after the last finished epoch
    RUN/history.json, .csv      each epoch's loss, accuracy, seconds and the running total
    RUN/model.safetensors       the finished model (written last)
    RUN/report.html, *.png      figures (digitrec.report)
    RUN/pictures/<digit>/       the pictures `Recognizer.finetune` was given, as the model sees them (its --data)

Training, resuming, ensembles and the report all go through `RunFolder`, so the
file names and formats are defined here and nowhere else.
"""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from torch import nn

from digitrec.errors import DigitrecError
from digitrec.models.modelfile import save_checkpoint, save_model
from digitrec.training.config import TrainConfig
from digitrec.util.files import (
    CannotWrite,
    atomic_write,
    check_writable_dir,
    remove_stale_temporaries,
)

HISTORY_FIELDS = ("epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy")


@dataclass(frozen=True)
class RunFolder:
    path: Path

    MODEL = "model.safetensors"
    CHECKPOINT = "checkpoint.safetensors"
    CONFIG = "config.json"
    HISTORY = "history.json"
    HISTORY_CSV = "history.csv"

    def __init__(self, path: str | Path) -> None:
        object.__setattr__(self, "path", Path(path))

    @property
    def model(self) -> Path:
        return self.path / self.MODEL

    @property
    def checkpoint(self) -> Path:
        return self.path / self.CHECKPOINT

    @property
    def config(self) -> Path:
        return self.path / self.CONFIG

    @property
    def history(self) -> Path:
        return self.path / self.HISTORY

    def holds_run(self) -> bool:
        """A run was started here (its first epoch finished): refuse to train over it by accident."""
        return self.checkpoint.exists()

    def prepare(self, field: str | None = "out") -> None:
        """Prove the folder can be created and written, before any data is read."""
        check_writable_dir(self.path, field)

    def clean_temporaries(self) -> list[Path]:
        """Half-written files a killed run left behind (see util.files.remove_stale_temporaries)."""
        return remove_stale_temporaries(self.path)

    # --- checkpoint ---

    def save_checkpoint(self, states: dict[str, Any], info: dict[str, Any]) -> None:
        """The checkpoint after epoch `info["epoch"]`, replacing the last one only once it is whole. One that
        cannot be written (a full disk, a file-size limit) stops the run in one line that says what is left
        and how to go on: the last checkpoint is intact, and `--resume` continues from it."""
        try:
            save_checkpoint(self.checkpoint, states, info)
        except CannotWrite as exc:
            epoch = info["epoch"]
            left = (f"the checkpoint of epoch {epoch - 1} is intact: once there is space, "
                    f"`digitrec train --resume {self.path}` continues from it" if self.checkpoint.exists()
                    else "there is no earlier checkpoint: once there is space, train again")
            raise DigitrecError(f"{self.checkpoint}: cannot write the checkpoint of epoch {epoch} "
                                f"({exc.strerror or exc.message}); {left}") from exc

    # --- config ---

    def save_config(self, cfg: TrainConfig) -> None:
        atomic_write(self.config, json.dumps(cfg.to_dict(), indent=2).encode())

    def load_config(self) -> TrainConfig:
        if not self.config.is_file():
            raise DigitrecError(f"{self.config}: not found; expected a run folder made by `digitrec train`")
        try:
            doc = json.loads(self.config.read_text())
            if not isinstance(doc, dict):
                raise TypeError(f"a JSON {type(doc).__name__}, not an object")
            return TrainConfig.from_dict(doc)
        except (OSError, ValueError, TypeError) as exc:
            raise DigitrecError(f"{self.config}: not a valid run config ({exc})") from None

    # --- history ---

    def write_history(self, rows: list[dict[str, Any]]) -> None:
        """history.json and history.csv, with each epoch's seconds and the running total; a figure that
        is no number (a loss that diverged) is written as null, so any JSON reader can read the file."""
        rows = [{k: _json_number(v) for k, v in row.items()} for row in rows]
        total = 0.0
        for row in rows:
            total += row["seconds"]
            row["total_seconds"] = round(total, 4)
        doc = {"epochs": rows, "total_train_seconds": round(total, 4)}
        atomic_write(self.history, json.dumps(doc, indent=2, allow_nan=False).encode())
        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=list(rows[0]) if rows else ["epoch"])
        writer.writeheader()
        writer.writerows(rows)
        atomic_write(self.path / self.HISTORY_CSV, buf.getvalue().encode())

    def load_history(self) -> list[dict[str, Any]]:
        """The per-epoch rows of history.json, checked for the fields the curves need."""
        try:
            rows = json.loads(self.history.read_text())["epochs"]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DigitrecError(f"{self.history}: not a digitrec history file ({exc})") from None
        if not isinstance(rows, list) or not rows or any(
                not isinstance(r, dict) or any(k not in r for k in HISTORY_FIELDS) for r in rows):
            raise DigitrecError(f"{self.history}: every epoch needs {', '.join(HISTORY_FIELDS)}")
        return rows

    # --- the finished model ---

    def save_model(self, model: nn.Module, meta: dict[str, Any]) -> Path:
        save_model(model, self.model, meta)
        return self.model


def _json_number(value: Any) -> Any:
    """`value`, or None where it is a float JSON cannot hold (NaN, infinity)."""
    return None if isinstance(value, float) and not math.isfinite(value) else value
