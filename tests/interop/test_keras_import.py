"""`digitrec import-keras` on real Keras files: each starting architecture built in Keras 3 (torch
backend), trained briefly on real MNIST digits, saved as .keras and .h5, imported through the CLI,
and compared with Keras' own predictions on real test digits."""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

os.environ["KERAS_BACKEND"] = "torch"  # before keras is imported
keras = pytest.importorskip("keras")  # a test-only dependency (the dev extra)
from helpers import assert_user_error, run_cli  # noqa: E402
from keras import layers as L  # noqa: E402
from keras_models import ARCHS as ALL_ARCHS  # noqa: E402
from keras_models import keras_proba, starting_layers, train_keras  # noqa: E402

from digitrec.inference.backends import load_backend  # noqa: E402
from digitrec.models import count_parameters, create_model  # noqa: E402

N_TRAIN, N_TEST = 3000, 1000  # training images for one epoch; test digits compared
TOLERANCE = 1e-5  # max |Δ probability| between Keras and digitrec
# Keras' torch backend trips NumPy 2's __array__(copy=) deprecation on every batch.
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


# the fast set keeps one architecture (A, the smallest); the others train in the slow set
ARCHS = [ALL_ARCHS[0], *(pytest.param(a, marks=pytest.mark.slow) for a in ALL_ARCHS[1:])]
FORMATS = ["keras", "h5"]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Keras on torch runs ~10x slower when its threads fight other processes for 2 cores."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def trained(tmp_path_factory, mnist_train, mnist_test):
    """arch → (Keras model trained 1 epoch on real digits, {format: saved file}, Keras' probabilities
    for the first N_TEST test digits); each architecture is trained once per session."""
    cache: dict[str, tuple] = {}

    def get(arch: str):
        if arch not in cache:
            model = train_keras(arch, mnist_train.images[:N_TRAIN], mnist_train.labels[:N_TRAIN])
            folder = tmp_path_factory.mktemp(arch)
            files = {fmt: folder / f"mnist_model.{fmt}" for fmt in FORMATS}
            for path in files.values():
                model.save(path)
            cache[arch] = model, files, keras_proba(model, mnist_test.images[:N_TEST])
        return cache[arch]

    return get


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("arch", ARCHS)
def test_roundtrip_matches_keras(arch, fmt, trained, mnist_test, tmp_path):
    model, files, expected = trained(arch)
    assert model.count_params() == count_parameters(create_model(arch))
    out = tmp_path / "model.safetensors"
    rc, stdout, err = run_cli("import-keras", files[fmt], "--out", out, in_process=True)
    assert (rc, err) == (0, ""), err
    assert f"= {arch} " in stdout
    backend = load_backend(out, "torch", device="cpu")  # the inference path evaluate/serve/predict use
    delta = np.abs(backend.probabilities(mnist_test.images[:N_TEST]) - expected).max()
    print(f"max |Δ probability| {arch} .{fmt}: {delta:.3g}")
    assert delta < TOLERANCE
    meta = backend.metadata
    assert meta["arch"] == arch and meta["arch_kwargs"] == {"mean": 0.0, "std": 1.0}
    assert meta["source"]["sha256"] == hashlib.sha256(files[fmt].read_bytes()).hexdigest()
    assert meta["source"]["keras_version"] == keras.__version__
    assert meta["input_scaling"]["keras_input"] == "pixel / 255"


def test_evaluate_gives_keras_accuracy(trained, mnist_test, tmp_path):
    """The imported model is an ordinary model file: `digitrec evaluate` reports Keras' own accuracy."""
    _, files, expected = trained("conv2-fc64")
    out, digits = tmp_path / "model.safetensors", tmp_path / "digits.npz"
    np.savez(digits, x_test=mnist_test.images[:N_TEST], y_test=mnist_test.labels[:N_TEST])
    assert run_cli("import-keras", files["keras"], "--out", out, in_process=True)[0] == 0
    result = run_cli("evaluate", out, "--data", digits, "--json", "--device", "cpu", in_process=True)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    keras_acc = float((expected.argmax(1) == mnist_test.labels[:N_TEST]).mean())
    assert report["arch"] == "conv2-fc64" and report["accuracy"] > 0.5  # trained: chance is 0.1
    assert abs(report["accuracy"] - keras_acc) <= 1 / N_TEST  # a near-tie may flip one digit


def test_functional_model_with_rescaling_and_activation_layers(trained, mnist_test, tmp_path):
    """A functional model that takes raw 0..255 pixels (Rescaling inside), has its ReLUs as layers of
    their own and ends in a Softmax layer: the same network as A, so A's trained weights fit it."""
    seq = trained("conv2-fc64")[0]
    chain = [L.Rescaling(1 / 255), L.Conv2D(32, (3, 3)), L.ReLU(), L.MaxPooling2D((2, 2)),
             L.Conv2D(64, (3, 3), activation="relu"), L.MaxPooling2D((2, 2)), L.Flatten(), L.Dense(64),
             L.Activation("relu"), L.Dense(10), L.Softmax()]
    inputs = x = keras.Input((28, 28, 1))
    for layer in chain:
        x = layer(x)
    model = keras.Model(inputs, x)
    model.set_weights(seq.get_weights())
    src, out = tmp_path / "functional.keras", tmp_path / "model.safetensors"
    model.save(src)
    assert run_cli("import-keras", src, "--out", out, in_process=True)[0] == 0
    backend = load_backend(out, "torch", device="cpu")
    images = mnist_test.images[:N_TEST]
    assert np.abs(backend.probabilities(images) - keras_proba(model, images, scale=1.0)).max() < TOLERANCE
    assert backend.metadata["arch_kwargs"] == {"mean": 0.0, "std": 1.0}
    assert "Rescaling" in backend.metadata["input_scaling"]["keras_input"]


def keras2_config(model) -> dict:
    """The Sequential config as tf.keras 2 wrote it: an InputLayer with `batch_input_shape`."""
    layers = [{"class_name": "InputLayer", "config": {"batch_input_shape": [None, 28, 28, 1], "name": "input_1"}}]
    layers += [{"class_name": type(layer).__name__, "config": layer.get_config()} for layer in model.layers]
    return {"class_name": "Sequential", "config": {"name": "sequential", "layers": layers}}


def write_keras2_h5(model, path: Path) -> None:
    """tf.keras 2's `.h5` (its save_weights_to_hdf5_group): bytes attributes and each layer's weights at
    `model_weights/<layer>/<layer>/kernel:0`. No TensorFlow here, so h5py rebuilds the layout."""
    with h5py.File(path, "w") as f:
        f.attrs.update({"keras_version": b"2.15.0", "backend": b"tensorflow",
                        "model_config": json.dumps(keras2_config(model)).encode()})
        group = f.create_group("model_weights")
        group.attrs["layer_names"] = [layer.name.encode() for layer in model.layers]
        for layer in model.layers:
            names = [f"{layer.name}/{kind}:0" for kind in ("kernel", "bias")][: len(layer.weights)]
            g = group.create_group(layer.name)
            g.attrs["weight_names"] = [n.encode() for n in names]
            for name, value in zip(names, layer.get_weights()):
                g.create_dataset(name, data=value)


def write_keras2_zip(model, path: Path) -> None:
    """tf.keras 2.13-2.15's `.keras` zip: weights at `_layer_checkpoint_dependencies/<layer>/vars/{0,1}`."""
    weights = io.BytesIO()
    with h5py.File(weights, "w") as f:
        for layer in model.layers:
            group = f.create_group(f"_layer_checkpoint_dependencies/{layer.name}/vars")
            for i, value in enumerate(layer.get_weights()):
                group.create_dataset(str(i), data=value)
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("metadata.json", json.dumps({"keras_version": "2.15.0"}))
        z.writestr("config.json", json.dumps(keras2_config(model)))
        z.writestr("model.weights.h5", weights.getvalue())


@pytest.mark.parametrize("fmt", FORMATS)
def test_tf_keras2_files(fmt, trained, mnist_test, tmp_path):
    model, _, expected = trained("conv2-fc64")
    src, out = tmp_path / f"tf_keras.{fmt}", tmp_path / "model.safetensors"
    (write_keras2_h5 if fmt == "h5" else write_keras2_zip)(model, src)
    assert run_cli("import-keras", src, "--out", out, in_process=True)[0] == 0
    backend = load_backend(out, "torch", device="cpu")
    assert np.abs(backend.probabilities(mnist_test.images[:N_TEST]) - expected).max() < TOLERANCE
    assert backend.metadata["source"]["keras_version"] == "2.15.0"


@pytest.mark.parametrize("change, layer, expected", [
    ("extra-dense", "extra", "expected Dense(10)"),
    ("filters", "first", "found Conv2D(16, 3x3), expected Conv2D(32, 3x3)"),
])
def test_unknown_architecture_names_the_layer(change, layer, expected, tmp_path):
    stack = starting_layers("conv2-fc64")
    if change == "extra-dense":
        stack.insert(-1, L.Dense(32, activation="relu", name="extra"))
    else:
        stack[0] = L.Conv2D(16, (3, 3), activation="relu", name="first")
    model = keras.Sequential([keras.Input((28, 28, 1)), *stack])
    src, out = tmp_path / "other.keras", tmp_path / "model.safetensors"
    model.save(src)
    rc, _, err = run_cli("import-keras", src, "--out", out, in_process=True)
    assert rc == 2 and err.count("\n") == 1 and err.startswith(f"digitrec: error: {src}:")
    assert f"layer {layer!r}" in err and expected in err and "closest: conv2-fc64" in err
    assert not out.exists()


@pytest.mark.parametrize("damage", ["truncated-keras", "truncated-h5", "not-keras", "weights-only"])
def test_damaged_file_is_one_line_error(damage, trained, tmp_path):
    model, files, _ = trained("conv2-fc64")
    src = tmp_path / "damaged.h5"
    if damage.startswith("truncated"):
        data = files[damage.split("-")[1]].read_bytes()
        src.write_bytes(data[: len(data) // 2])
    elif damage == "not-keras":
        src.write_bytes(b"label,pixel0\n5,0\n")
    else:
        src = tmp_path / "mnist.weights.h5"
        model.save_weights(src)
    out = tmp_path / "model.safetensors"
    rc, _, err = run_cli("import-keras", src, "--out", out, in_process=True)
    assert rc == 2 and err.count("\n") == 1 and err.startswith(f"digitrec: error: {src}:"), err
    assert not out.exists()


def test_import_refuses_to_overwrite_unless_told(trained, tmp_path):
    files = trained("conv2-fc64")[1]
    out = tmp_path / "model.safetensors"
    out.write_bytes(b"the user's own file")
    assert_user_error(run_cli("import-keras", files["keras"], "--out", out, in_process=True),
                      str(out), "already exists", "--overwrite")
    assert out.read_bytes() == b"the user's own file"
    assert run_cli("import-keras", files["keras"], "--out", out, "--overwrite", in_process=True).returncode == 0
    assert out.read_bytes() != b"the user's own file"


def test_import_needs_no_keras(trained, tmp_path):
    """The command reads the file with h5py alone: Keras (and TensorFlow) stay test-only."""
    files = trained("conv2-fc64")[1]
    out = tmp_path / "model.safetensors"
    code = ("import sys; from digitrec.cli import main; rc = main(sys.argv[1:]); "
            "assert not {'keras', 'tensorflow'} & set(sys.modules), 'keras imported'; sys.exit(rc)")
    proc = subprocess.run([sys.executable, "-c", code, "import-keras", str(files["h5"]), "--out", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert out.exists()
