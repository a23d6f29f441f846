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


def test_evaluate_on_a_folder_of_your_pictures(tmp_path, mnist_test, monkeypatch):
    """--data DIR: pictures of any size read through preprocess; a bad one listed on stderr; --json
    keeps stdout pure JSON (the folder's summary goes to stderr there)."""
    from helpers import picture_folder

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = picture_folder(tmp_path / "mine", mnist_test.images, mnist_test.labels, 3)
    (folder / "4" / "broken.jpg").write_bytes(b"\xff\xd8 not really a jpeg")
    text = run_cli("evaluate", "--data", folder, in_process=True)
    assert text.returncode == 0, text.stderr
    assert "30 pictures read (digits 0 1 2 3 4 5 6 7 8 9; 1 skipped" in text.stdout and "test accuracy:" in text.stdout
    assert text.stderr.count("digitrec: skipped") == 1 and "broken.jpg" in text.stderr
    doc = json.loads(run_cli("evaluate", "--data", folder, "--json", in_process=True).stdout)
    assert doc["n"] == 30 and doc["data"] == str(folder) and doc["accuracy"] >= 0.9
