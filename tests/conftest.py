"""Shared fixtures: the real MNIST files (from $DIGITREC_DATA or ../shared) and a small training run."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_MNIST = ROOT.parent / "shared" / "data" / "mnist"

if not os.environ.get("DIGITREC_DATA") and SHARED_MNIST.is_dir():
    os.environ["DIGITREC_DATA"] = str(SHARED_MNIST)

# Under `make mutate`, mutmut runs the tests against its mutated copy (mutants/src, first on sys.path);
# the tests that start `python -m digitrec` in a subprocess must run that copy too.
_MUTATED = [p for p in sys.path if Path(p).parts[-2:] == ("mutants", "src")]
if _MUTATED:
    os.environ["PYTHONPATH"] = os.pathsep.join([_MUTATED[0], *filter(None, [os.environ.get("PYTHONPATH")])])


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    path = Path(os.environ.get("DIGITREC_DATA", SHARED_MNIST))
    if not (path / "t10k-images-idx3-ubyte.gz").exists() and not (path / "t10k-images-idx3-ubyte").exists():
        pytest.skip("MNIST files not available; set DIGITREC_DATA")
    return path


@pytest.fixture(scope="session")
def mnist_test(mnist_dir):
    from digitrec.data import load_mnist

    return load_mnist("test", mnist_dir, download=False)


@pytest.fixture(scope="session")
def mnist_train(mnist_dir):
    from digitrec.data import load_mnist

    return load_mnist("train", mnist_dir, download=False)


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory, mnist_dir):
    """(run folder, CLI result) of a 2-epoch run with seed 7, trained once for every test that reads it."""
    from helpers import QUICK_TRAIN, run_cli

    out = tmp_path_factory.mktemp("runs") / "a"
    result = run_cli("train", *QUICK_TRAIN, "--epochs", "2", "--seed", "7", "--out", out)
    assert result.returncode == 0, result.stderr
    return out, result
