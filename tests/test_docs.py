"""Docs that cannot drift: every module, function and file that the README, docs/ and the package's
docstrings and comments cite must exist.

A citation is a dotted name that starts at a room of the package (`pictures.preprocess.preprocess`,
`digitrec.models.predict.to_input`) or a path ending in `.py` (`training/loop.py`,
`tests/training/test_loop.py`, `bench/honesty.py`). A name is found by importing the longest module
prefix and looking the rest up as attributes; a path is found under the repository, `src/` or
`src/digitrec/`, and a bare file name anywhere in the package, bench/ or tests/.
"""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "src" / "digitrec"
ROOMS = sorted(p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()) + ["errors"]
# a room's name, then at least one more part; not inside a longer word or a path, not a file name
DOTTED = re.compile(r"(?<![\w/.-])(?:digitrec\.)?(?:" + "|".join(ROOMS) + r")(?:\.[A-Za-z_]\w*)+(?![\w/-])")
PATH = re.compile(r"(?<![\w/.-])((?:[\w-]+/)*[\w-]+\.py)\b")
FILE_SUFFIXES = {"md", "py", "json", "csv", "html", "png", "onnx", "safetensors", "txt", "gz", "npz", "pt", "h5",
                 "keras", "jpg", "js", "css", "log", "toml", "cfg", "ipynb", "zip", "sh", "c", "so"}
# paths cited that belong to other projects, not to this one
ELSEWHERE: set[str] = set()


def _is_docstring(node: ast.AST) -> bool:
    return isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef))


def _docstrings(source: str) -> list[str]:
    tree = ast.parse(source)
    return [ast.get_docstring(n) or "" for n in ast.walk(tree) if _is_docstring(n)]


def texts() -> list[tuple[str, str]]:
    out = [("README.md", (ROOT / "README.md").read_text())]
    out += [(str(p.relative_to(ROOT)), p.read_text()) for p in sorted((ROOT / "docs").glob("*.md"))]
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        comments = [line.split("#", 1)[1] for line in source.splitlines() if "#" in line]
        out.append((str(path.relative_to(ROOT)), "\n".join(_docstrings(source) + comments)))
    return out


def resolves(name: str) -> bool:
    parts = name.removeprefix("digitrec.").split(".")
    if parts[-1] in FILE_SUFFIXES:
        return True  # a file name such as `training.md`, not a dotted name
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module("digitrec." + ".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attr in parts[cut:]:
            if not hasattr(obj, attr):
                return False
            obj = getattr(obj, attr)
        return True
    return False


def path_exists(path: str) -> bool:
    """A path with folders must be where it says (from the repository, src/ or the package); a bare
    file name (`kernels.py`, cited from beside it) must name a file of the package, bench/ or tests/."""
    if path in ELSEWHERE:
        return True
    if "/" not in path:
        return any(any(base.rglob(path)) for base in (PACKAGE, ROOT / "bench", ROOT / "tests"))
    return any((base / path).exists() for base in (ROOT, ROOT / "src", PACKAGE))


STRUCK = re.compile(r"~~.*?~~")  # a name struck through is cited as gone (docs/glossary.md)


def citations() -> list[tuple[str, str, bool]]:
    """(where, what, found) for every citation."""
    out = []
    for where, text in texts():
        text = STRUCK.sub("", text)
        out += [(where, m.group(0), resolves(m.group(0))) for m in DOTTED.finditer(text)]
        out += [(where, m.group(1), path_exists(m.group(1))) for m in PATH.finditer(text)]
    return out


def test_the_docs_cite_only_names_and_files_that_exist():
    missing = sorted({f"{where}: {what}" for where, what, found in citations() if not found})
    assert not missing, "cited but not found:\n" + "\n".join(missing)


def test_the_check_finds_citations_and_catches_a_wrong_one():
    found = {what for _, what, _ in citations()}
    assert {"training/loop.py"} <= found and any(w.startswith("pictures.segment") for w in found)
    assert resolves("models.predict.to_input") and not resolves("inference.to_input")
    assert path_exists("training/loop.py") and not path_exists("training/train.py")
    assert path_exists("kernels.py") and not path_exists("quantize.py")


@pytest.mark.parametrize("text, cited", [
    pytest.param("see `pictures.preprocess.preprocess`.", "pictures.preprocess.preprocess", id="backticked"),
    pytest.param("as digitrec.models.predict.to_input does", "digitrec.models.predict.to_input", id="package"),
    pytest.param("docs/training.md says", None, id="a-doc-file-is-no-name"),
])
def test_dotted_names_are_read_as_a_reader_would(text, cited):
    match = DOTTED.search(text)
    assert (match.group(0) if match else None) == cited
