"""The one-file model format: round trip, atomic writes, clear errors for bad files."""

import json
import struct

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from ltc_edge.nn import ModelFileError, build_model, describe, load, read, save


@pytest.fixture
def model():
    torch.manual_seed(0)
    return build_model("ltc", 5, wiring="auto-ncp", units=14, output_size=3,
                       normalization={"input_mean": [0.1] * 5, "input_std": [2.0] * 5,
                                      "output_mean": [0.0] * 3, "output_std": [1.5] * 3})


def test_round_trip_is_exact(model, tmp_path):
    path = save(model, tmp_path / "m.safetensors")
    back = load(path)
    assert back.config == model.config
    x = torch.randn(2, 20, 5)
    with torch.no_grad():
        assert torch.equal(model(x, 0.3)[0], back(x, 0.3)[0])
    config, tensors = read(path)  # numpy-only reader
    assert config["cell"]["wiring"]["kind"] == "auto-ncp"
    assert all(t.dtype == np.float32 for t in tensors.values())


def test_file_holds_config_in_metadata_and_no_pickle(model, tmp_path):
    path = save(model, tmp_path / "m.safetensors")
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    config = json.loads(header["__metadata__"]["ltc_edge"])
    assert config["format"] == "ltc-edge-model" and config["format_version"] == 1
    for key in ("kind", "units", "wiring", "ode_unfolds", "solver", "input_mapping", "output_mapping"):
        assert key in config["cell"]
    assert config["normalization"]["input_std"] == [2.0] * 5
    assert b"\x80\x04" not in raw[:8 + n]  # no pickle protocol marker in the header
    assert sorted(tensors for tensors in header if tensors != "__metadata__") == sorted(model.state_dict())


def test_save_is_atomic(model, tmp_path, monkeypatch):
    path = save(model, tmp_path / "m.safetensors")
    before = path.read_bytes()
    import ltc_edge.fileio as mf

    def boom(*a, **k):
        raise KeyboardInterrupt  # interrupted mid-write

    monkeypatch.setattr(mf.os, "fsync", boom)
    with pytest.raises(KeyboardInterrupt):
        save(build_model("lstm", 2, units=3), path)
    assert path.read_bytes() == before  # old file intact
    assert [p.name for p in tmp_path.iterdir()] == ["m.safetensors"]  # no temp file left


def test_missing_file(tmp_path):
    with pytest.raises(ModelFileError, match="no such model file"):
        load(tmp_path / "nope.safetensors")


def test_folder_given_as_model_file(tmp_path):
    with pytest.raises(ModelFileError, match="is a folder, not a model file"):
        load(tmp_path)
    (tmp_path / "manifest.json").write_text("{}")  # an export folder: the message says what to give
    with pytest.raises(ModelFileError, match=r"an export folder, not a model file: give the \.safetensors"):
        load(tmp_path)


@pytest.mark.parametrize("cut", [0, 5, 8, 40, -10])
def test_truncated_file(model, tmp_path, cut):
    path = save(model, tmp_path / "m.safetensors")
    data = path.read_bytes()
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(data[:cut] if cut >= 0 else data[:cut])
    with pytest.raises(ModelFileError):
        read(bad)


def test_garbage_file(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"hello, I am not a model" * 10)
    with pytest.raises(ModelFileError, match="not a safetensors file"):
        read(bad)


def test_foreign_safetensors(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"weight": np.zeros((2, 2), np.float32)}, str(path), metadata={"format": "pt"})
    with pytest.raises(ModelFileError, match="not an ltc-edge model"):
        read(path)


def _written(tmp_path, tensors, metadata: str):
    """tensors with this ltc_edge metadata, written past save()'s checks; the file's path."""
    bad = tmp_path / "bad.safetensors"
    save_file(tensors, str(bad), metadata={"ltc_edge": metadata})
    return bad


def test_mismatched_tensors(model, tmp_path):
    config, tensors = read(save(model, tmp_path / "m.safetensors"))
    tensors["cell.w"] = np.zeros((3, 3), np.float32)
    with pytest.raises(ModelFileError, match=r"cell.w has shape \(3, 3\)"):
        read(_written(tmp_path, tensors, json.dumps(config)))
    del tensors["cell.w"]
    with pytest.raises(ModelFileError, match="missing.*cell.w"):
        read(_written(tmp_path, tensors, json.dumps(config)))


def test_unknown_version_and_bad_config(model, tmp_path):
    config, tensors = read(save(model, tmp_path / "m.safetensors"))
    with pytest.raises(ModelFileError, match="version 99"):
        read(_written(tmp_path, tensors, json.dumps({**config, "format_version": 99})))
    cell = {**config["cell"], "kind": "mystery"}
    with pytest.raises(ModelFileError, match="invalid model config: cell.kind must be one of ltc, "):
        read(_written(tmp_path, tensors, json.dumps({**config, "cell": cell})))
    with pytest.raises(ModelFileError, match="not valid JSON"):
        read(_written(tmp_path, tensors, "{not json"))


def test_describe(model, tmp_path):
    path = save(model, tmp_path / "m.safetensors")
    facts = describe(path)
    wiring = model.config["cell"]["wiring"]
    assert facts["neurons"] == 14 and facts["inputs"] == 5 and facts["outputs"] == 3
    assert facts["synapses"] == int(np.abs(np.array(wiring["adjacency"])).sum())
    assert facts["parameters"] == sum(p.numel() for p in model.parameters())
    assert facts["file_size_bytes"] == path.stat().st_size


@pytest.mark.parametrize("kind", ["ltc", "cfc", "ctrnn", "node", "lstm", "gru"])
def test_every_kind_round_trips(kind, tmp_path):
    m = build_model(kind, 3, 2, units=6, seed=1)
    back = load(save(m, tmp_path / f"{kind}.safetensors"))
    x = torch.randn(1, 4, 3)
    with torch.no_grad():
        assert torch.equal(m(x)[0], back(x)[0])
