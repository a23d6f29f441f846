"""Model files: lossless round trip, and one-line errors for damaged or mismatched files."""

from __future__ import annotations

import json

import pytest
import torch
from helpers import assert_user_error, run_cli

from digitrec.errors import DigitrecError
from digitrec.models import create_model
from digitrec.models.modelfile import (
    load_checkpoint,
    load_model,
    read_metadata,
    save_checkpoint,
    save_model,
)


@pytest.fixture()
def saved(tmp_path):
    torch.manual_seed(1)
    model = create_model("conv2-fc64")
    path = tmp_path / "m.safetensors"
    save_model(model, path, {"metrics": {"test_accuracy": 0.5}})
    return model, path


def test_round_trip_rebuilds_the_model_from_the_file_alone(saved):
    model, path = saved
    loaded, meta = load_model(path)
    assert meta["arch"] == "conv2-fc64" and meta["metrics"]["test_accuracy"] == 0.5
    x = torch.rand(3, 1, 28, 28)
    assert torch.equal(model.eval()(x), loaded(x))
    assert [p.name for p in path.parent.iterdir()] == ["m.safetensors"]  # no temporary files left


def test_the_file_holds_no_pickle(saved):
    raw = saved[1].read_bytes()
    header_len = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8:8 + header_len])
    assert json.loads(header["__metadata__"]["digitrec"])["format"] == "digitrec-model"


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[: len(b) // 2], "truncated or corrupt"),
    (lambda b: b[:-50] + bytes(x ^ 0xFF for x in b[-50:]), "weights are corrupt"),
    (lambda b: b"garbage" + b, "truncated or corrupt"),
])
def test_damaged_file_is_a_one_line_error(saved, damage, message):
    path = saved[1]
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(DigitrecError, match=message):
        load_model(path)
    assert_user_error(run_cli("evaluate", path), path.name)


def test_weights_of_another_architecture(tmp_path, saved):
    _, path = saved
    other = create_model("conv2-fc128")
    meta = read_metadata(path)
    forged = tmp_path / "forged.safetensors"
    save_model(other, forged)
    raw_meta = read_metadata(forged)
    assert raw_meta["arch"] == "conv2-fc128"
    # a file that claims one architecture but holds another's weights
    from safetensors.torch import load_file, save_file

    tensors = load_file(str(forged))
    meta_claim = {**raw_meta, "arch": meta["arch"]}
    meta_claim.pop("weights_sha256")
    save_file(tensors, str(forged), metadata={"digitrec": json.dumps(meta_claim)})
    with pytest.raises(DigitrecError, match="do not fit architecture conv2-fc64"):
        load_model(forged)


def test_missing_model_file(tmp_path):
    assert_user_error(run_cli("evaluate", tmp_path / "none.safetensors"), "none.safetensors", "not found")


def test_checkpoint_round_trip_keeps_optimizer_state(tmp_path):
    model = create_model("conv2-fc64")
    opt = torch.optim.Adam(model.parameters())
    model(torch.rand(2, 1, 28, 28)).sum().backward()
    opt.step()
    save_checkpoint(tmp_path / "c.safetensors", {"model": model.state_dict(), "optimizer": opt.state_dict()},
                    {"epoch": 3})
    states, info = load_checkpoint(tmp_path / "c.safetensors")
    restored = torch.optim.Adam(create_model("conv2-fc64").parameters())
    restored.load_state_dict(states["optimizer"])
    assert info == {"epoch": 3}
    a, b = opt.state_dict()["state"][0], restored.state_dict()["state"][0]
    assert torch.equal(a["exp_avg"], b["exp_avg"]) and torch.equal(a["step"], b["step"])
