"""Export to ONNX / TorchScript and the onnxruntime backends, on real MNIST digits.

Every registered model is exported and must give the torch backend's
probabilities to 1e-4 on 1,000 test digits; the int8 export of a briefly trained
model must lose at most 0.1 point of test accuracy.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch
from helpers import run_cli

from digitrec import models
from digitrec.inference.backends import list_backends, load_backend
from digitrec.interop.export import load_torchscript
from digitrec.interop.onnxmeta import INPUT_NAME, META_KEY
from digitrec.models.modelfile import read_metadata, save_model
from digitrec.models.predict import to_input
from digitrec.training.recipes import RECIPES

N_PARITY = 1000


def sharpened_model(arch: str, digits: np.ndarray, seed: int = 0, **kwargs) -> torch.nn.Module:
    """A random-init model made confident and varied on real digits, so parity means something.

    Random-init probabilities are ≈0.1 each (deep nets shrink activations layer by layer), and
    a 1e-4 tolerance on them would hide real differences. Each classifier layer (Linear → 10) is
    rescaled so that its logits, over these digits, have zero mean per class and a spread (std) of 5.
    """
    torch.manual_seed(seed)
    model = models.create_model(arch, **kwargs).eval()
    heads = [m for m in model.modules() if isinstance(m, torch.nn.Linear) and m.out_features == 10]
    outputs: dict[torch.nn.Module, torch.Tensor] = {}
    hooks = [h.register_forward_hook(lambda mod, _i, out: outputs.__setitem__(mod, out)) for h in heads]
    with torch.no_grad():
        model(to_input(torch.from_numpy(digits)))
        for head in heads:
            raw = outputs[head] - (head.bias if head.bias is not None else 0)  # W h, (N, 10)
            mean, scale = raw.mean(0), 5.0 / (raw - raw.mean(0)).std()
            head.weight.mul_(scale)
            if head.bias is not None:
                head.bias.copy_(-mean * scale)
    for hook in hooks:
        hook.remove()
    return model


@pytest.fixture(scope="module")
def digits(mnist_test) -> np.ndarray:
    return mnist_test.images[:N_PARITY]  # (1000, 28, 28) uint8


@pytest.fixture(scope="module")
def model_file(tmp_path_factory, digits):
    path = tmp_path_factory.mktemp("model") / "model.safetensors"
    save_model(sharpened_model("conv2-fc128", digits), path, {"metrics": {"test_accuracy": 0.5}})
    return path


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("digitrec: error:"), err
    for fragment in fragments:
        assert fragment in lines[0], (fragment, lines[0])


# every registered model, and the recipes' variants: centre-cropped, deskewing, stride-2 first block
PARITY = [(arch, {}) for arch in models.list_models("digit")] + [("bn-conv3-w16", {"crop": 24}),
                                                         ("bn-conv3-w16", RECIPES["fast"]["model_kwargs"]),
                                                         ("bn-conv6-w32", {"deskew": True})]
PARITY_IDS = [arch + "".join(f"-{k}{v}" for k, v in kwargs.items()) for arch, kwargs in PARITY]


@pytest.mark.parametrize("arch, kwargs", PARITY, ids=PARITY_IDS)
def test_onnx_matches_torch_for_every_model(arch, kwargs, digits, tmp_path):
    path = tmp_path / f"{arch}.safetensors"
    save_model(sharpened_model(arch, digits, **kwargs), path)
    reference = load_backend(path, "torch", device="cpu").probabilities(digits)
    # The check means something only if the outputs are confident and varied.
    assert reference.max(1).mean() > 0.4 and len(np.unique(reference.argmax(1))) >= 5
    onnx_backend = load_backend(path, "onnx")
    probs = onnx_backend.probabilities(digits)
    assert onnx_backend.name == "onnx" and probs.dtype == np.float32 and probs.shape == (N_PARITY, 10)
    assert np.abs(probs - reference).max() <= 1e-4
    single = onnx_backend.probabilities(digits[:1])  # small batches take the one-thread session
    assert np.abs(single - reference[:1]).max() <= 1e-4


def test_exported_file_has_a_dynamic_batch_and_the_metadata(model_file, digits, tmp_path):
    out = tmp_path / "digits.onnx"
    code, stdout, _ = run_cli("export", model_file, "--format", "onnx", "--out", out, "--opset", 18, in_process=True)
    assert code == 0 and str(out) in stdout
    proto = onnx.load(str(out))
    onnx.checker.check_model(proto, full_check=True)
    assert max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")) == 18
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    meta = json.loads({p.key: p.value for p in proto.metadata_props}[META_KEY])
    original = read_metadata(model_file)
    for key in ("arch", "arch_kwargs", "metrics", "versions", "weights_sha256"):
        assert meta[key] == original[key]
    assert meta["export"]["opset"] == 18 and meta["export"]["versions"]["onnx"] == onnx.__version__
    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    reference = load_backend(model_file, "torch", device="cpu").probabilities(digits)
    for batch in (1, N_PARITY):
        probs = session.run(None, {INPUT_NAME: digits[:batch]})[0]
        assert probs.shape == (batch, 10)
        assert np.abs(probs - reference[:batch]).max() <= 1e-4
    backend = load_backend(out, "onnx")  # the .onnx file itself through the backend
    assert backend.metadata["arch"] == "conv2-fc128"
    assert np.abs(backend.probabilities(digits) - reference).max() <= 1e-4


def test_torchscript_export_loads_and_matches(model_file, digits):
    code, _, _ = run_cli("export", model_file, "--format", "torchscript", in_process=True)
    assert code == 0
    module, meta = load_torchscript(model_file.with_suffix(".pt"))
    assert meta["arch"] == "conv2-fc128" and meta["export"]["format"] == "torchscript"
    with torch.inference_mode():
        probs = module(torch.from_numpy(digits)).numpy()
    reference = load_backend(model_file, "torch", device="cpu").probabilities(digits)
    assert np.abs(probs - reference).max() <= 1e-5


def test_backends_are_registered():
    assert {"torch", "onnx", "onnx-int8"} <= set(list_backends())


@pytest.mark.parametrize("args, fragments", [
    (["export", "{missing}"], ["missing.safetensors", "not found"]),
    (["export", "{corrupt}"], ["corrupt.safetensors", "corrupt"]),
    (["export", "{model}", "--format", "tflite"], ["--format", "tflite"]),
    (["export", "{model}", "--format", "onnx", "--opset", "11"], ["--opset", "17"]),
    (["export", "{model}", "--format", "torchscript", "--quantize", "int8"], ["--quantize"]),
    (["evaluate", "{corrupt_onnx}", "--backend", "onnx"], ["corrupt.onnx", "not a readable ONNX model"]),
    (["evaluate", "{missing_onnx}", "--backend", "onnx"], ["missing.onnx", "not found"]),
    (["evaluate", "{model}", "--backend", "tensorflow"], ["--backend", "tensorflow"]),
    (["evaluate", "{corrupt_onnx}"], ["corrupt.onnx", "--backend onnx"]),  # torch is the default backend
])
def test_user_mistakes_are_one_line_errors(args, fragments, model_file, tmp_path):
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(model_file.read_bytes()[:5000])  # a truncated download
    corrupt_onnx = tmp_path / "corrupt.onnx"
    corrupt_onnx.write_bytes(b"\x08\x07garbage" * 100)
    names = {"missing": tmp_path / "missing.safetensors", "corrupt": corrupt, "model": model_file,
             "corrupt_onnx": corrupt_onnx, "missing_onnx": tmp_path / "missing.onnx"}
    code, _, err = run_cli(*[a.format(**names) for a in args], in_process=True)
    assert_one_line_error(code, err, *fragments)
    for folder in (tmp_path, model_file.parent):  # --out's folder, and the default beside the model
        assert not list(folder.glob(".*.tmp"))  # no half-written export left behind


# --- a briefly trained model: int8 accuracy and `evaluate --backend onnx` ---


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist_dir):
    from digitrec.training.config import TrainConfig
    from digitrec.training.run import train_run

    cfg = TrainConfig(model="conv2-fc128", subset=10000, epochs=1, threads=1, data_dir=str(mnist_dir))
    return train_run(cfg, tmp_path_factory.mktemp("run"), log=lambda _: None, progress=False)


@pytest.mark.slow
def test_int8_export_keeps_accuracy(trained, mnist_test):
    code, _, _ = run_cli("export", trained.model_path, "--quantize", "int8", in_process=True)
    assert code == 0
    path = trained.model_path.with_name("model.int8.onnx")
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops  # really quantised
    meta = load_backend(path, "onnx").metadata
    assert meta["export"]["quantize"]["type"] == "int8"
    accuracy = {}
    for label, file, backend_name in (("float", trained.model_path, "torch"), ("int8 file", path, "onnx"),
                                      ("int8 in memory", trained.model_path, "onnx-int8")):
        backend = load_backend(file, backend_name, device="cpu")
        assert backend.name == ("torch" if label == "float" else "onnx-int8")
        accuracy[label] = (backend.probabilities(mnist_test.images).argmax(1) == mnist_test.labels).mean()
    assert accuracy["float"] > 0.9
    assert accuracy["int8 file"] >= accuracy["float"] - 0.001, accuracy  # at most 0.1 point lost
    assert accuracy["int8 in memory"] == accuracy["int8 file"]  # same calibration images, same model


@pytest.mark.slow
def test_evaluate_with_the_onnx_backend(trained):
    results = {}
    for backend in ("torch", "onnx"):
        code, out, _ = run_cli("evaluate", trained.model_path, "--backend", backend, "--json", in_process=True)
        assert code == 0
        results[backend] = json.loads(out)
    assert results["onnx"]["backend"] == "onnx" and results["onnx"]["n"] == 10000
    assert results["onnx"]["accuracy"] == results["torch"]["accuracy"] > 0.9
    assert results["onnx"]["confusion"] == results["torch"]["confusion"]


def test_an_onnx_file_without_digitrec_metadata_is_a_one_line_error(model_file, tmp_path):
    """An ONNX model from elsewhere (or one whose metadata was stripped) says why it cannot be used."""
    import onnx

    out = tmp_path / "m.onnx"
    assert run_cli("export", model_file, "--out", out, in_process=True).returncode == 0
    proto = onnx.load(str(out))
    del proto.metadata_props[:]
    onnx.save(proto, str(out))
    code, _, err = run_cli("evaluate", out, "--backend", "onnx", in_process=True)
    assert_one_line_error(code, err, "m.onnx", "without digitrec metadata")
