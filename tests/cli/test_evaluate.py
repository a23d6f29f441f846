"""`digitrec evaluate`: the metrics a user reads, as text and JSON."""

from __future__ import annotations

import json

from helpers import run_cli


def test_evaluate_prints_metrics_and_json(quick_run):
    model = quick_run[0] / "model.safetensors"
    text = run_cli("evaluate", model)
    assert text.returncode == 0 and "test accuracy:" in text.stdout and "confusion matrix" in text.stdout
    doc = json.loads(run_cli("evaluate", model, "--json").stdout)
    assert doc["n"] == 10000 and len(doc["per_class"]) == 10 and len(doc["confusion"]) == 10
    assert abs(doc["accuracy"] - sum(doc["confusion"][d][d] for d in range(10)) / 10000) < 1e-9
