"""Fetching the handwriting fonts: through the package client, whole or not at all, bad fonts named and skipped."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

from digitrec.data.fonts import fetch_fonts, load_fonts
from digitrec.errors import DigitrecError
from digitrec.synth.nondigits import font_dir
from tests.support.helpers import assert_user_error, run_cli

# A stand-in for `apt-get download PACKAGE`: the registry has none (no test reaches a real registry).
FAKE_APT = """#!/bin/sh
echo "E: Unable to locate package $3" >&2
exit 100
"""
# A stand-in for `npm pack @fontsource/NAME`: writes NAME's package as npm would (a .tgz in the current
# folder, its name on stdout), with DejaVu as the family's font files; "broken" fails as an unknown package
# does, and "garbled" packs a font file FreeType cannot read.
FAKE_NPM = '''#!{python}
import io, json, os, sys, tarfile
name = sys.argv[-1].split("/")[-1]
if name == "broken" or os.environ.get("FAKE_REGISTRY_EMPTY"):
    sys.exit(f"npm error 404 Not Found - GET @fontsource/{{name}}")
font = open("{dejavu}", "rb").read() if name != "garbled" else b"not a font"
files = {{"package/metadata.json": json.dumps({{"license": {{"type": "OFL-1.1"}}}}).encode(),
         "package/package.json": json.dumps({{"version": "5.0.0"}}).encode(),
         f"package/files/{{name}}-latin-400-normal.woff": font,
         f"package/files/{{name}}-latin-700-normal.woff": font,
         f"package/files/{{name}}-latin-ext-400-normal.woff": font}}
if name == "cyr":
    files[f"package/files/{{name}}-cyrillic-400-normal.woff"] = font
with tarfile.open(f"fontsource-{{name}}-5.0.0.tgz", "w:gz") as tar:
    for path, data in files.items():
        info = tarfile.TarInfo(path)
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
print(f"fontsource-{{name}}-5.0.0.tgz")
'''


@pytest.fixture
def fake_npm(tmp_path, monkeypatch) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    script = bin_dir / "npm"
    script.write_text(FAKE_NPM.format(python=sys.executable, dejavu=font_dir() / "DejaVuSans.ttf"))
    script.chmod(0o755)
    (bin_dir / "apt-get").write_text(FAKE_APT)
    (bin_dir / "apt-get").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")


def test_fonts_are_fetched_with_their_licence_and_a_bad_one_is_named_and_skipped(fake_npm, tmp_path):
    said: list[str] = []
    fonts = fetch_fonts(tmp_path / "fonts", say=said.append, npm=("plain", "broken", "cyr", "garbled"), debian=(),
                        least=2)
    assert [f.name for f in fonts] == ["plain", "cyr"]
    assert len(said) == 2 and all("\n" not in line for line in said)
    assert "broken" in said[0] and "404" in said[0] and "garbled" in said[1]
    assert fonts[0].licence == "OFL-1.1" and fonts[0].source == "npm:@fontsource/plain@5.0.0"
    assert fonts[0].other_script is None and fonts[1].other_script.is_file()  # the Cyrillic letters, kept
    kept = sorted(p.name for p in (tmp_path / "fonts").iterdir())
    assert kept == ["cyr-cyrillic.woff", "cyr-latin.woff", "fonts.json", "plain-latin.woff"]  # no package left
    assert {p.name for p in tmp_path.iterdir()} == {"bin", "fonts"}  # no temporary folder beside it
    assert load_fonts(tmp_path / "fonts") == fonts


def test_too_few_fonts_stop_with_one_line_and_leave_the_folder_as_it_was(fake_npm, tmp_path):
    folder = tmp_path / "fonts"
    fetch_fonts(folder, say=lambda _: None, npm=("plain",), debian=(), least=1)
    before = (folder / "fonts.json").read_bytes()
    with pytest.raises(DigitrecError, match="only 0 handwriting fonts could be fetched"):
        fetch_fonts(folder, say=lambda _: None, npm=("broken",), debian=(), least=1)
    assert (folder / "fonts.json").read_bytes() == before and (folder / "plain-latin.woff").is_file()
    assert {p.name for p in tmp_path.iterdir()} == {"bin", "fonts"}


def test_a_missing_or_damaged_font_folder_is_a_one_line_error(tmp_path):
    with pytest.raises(DigitrecError, match="digitrec fonts"):
        load_fonts(tmp_path)
    (tmp_path / "fonts.json").write_text(json.dumps({"fonts": [{"name": "x"}]}))
    with pytest.raises(DigitrecError, match="damaged font manifest"):
        load_fonts(tmp_path)


def test_training_with_fonts_that_were_never_fetched_stops_before_training(tmp_path, mnist_dir, monkeypatch):
    monkeypatch.setenv("DIGITREC_FONTS", str(tmp_path / "nowhere"))
    result = run_cli("train", "--fonts", "0.2", "--subset", "200", "--epochs", "1", "--no-test", "--quiet",
                     "--no-report", "--data-dir", mnist_dir, "--out", tmp_path / "run")
    assert_user_error(result, "nowhere", "digitrec fonts")
    assert not (tmp_path / "run" / "model.safetensors").exists()


def test_a_font_share_out_of_range_is_refused(tmp_path, mnist_dir):
    result = run_cli("train", "--fonts", "0.7", "--data-dir", mnist_dir, "--out", tmp_path / "run", in_process=True)
    assert_user_error(result, "fonts", "0.7")
    assert not Path(tmp_path / "run" / "model.safetensors").exists()


def test_digitrec_fonts_lists_a_fetched_folder_and_stops_in_one_line_when_too_few_can_be_fetched(
        fake_npm, tmp_path, monkeypatch):
    folder = tmp_path / "fonts"
    fetch_fonts(folder, say=lambda _: None, npm=("plain", "indie-flower"), debian=(), least=1)
    listed = run_cli("fonts", "--dir", folder, "--list")
    assert listed.returncode == 0, listed.stderr
    assert "indie-flower" in listed.stdout and "held out" in listed.stdout and "OFL-1.1" in listed.stdout
    assert "2 fonts (1 held out for cross-writer validation)" in listed.stdout
    monkeypatch.setenv("FAKE_REGISTRY_EMPTY", "1")
    failed = run_cli("fonts", "--dir", tmp_path / "other")
    assert_user_error(failed, "handwriting fonts could be fetched")
    assert not (tmp_path / "other").exists()
