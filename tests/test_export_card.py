"""Every export folder carries MODEL_CARD.md (listed in the manifest with its sha256, checked
like every file) and ONNX files carry metadata_props: what the model is, its inputs/outputs
by name, dt, the training data hash, drift, and how to call it."""

from __future__ import annotations

import json
import shutil

import pytest

from ltc_edge import artifact
from ltc_edge.codegen import c as cgen
from ltc_edge.errors import ModelLoadError
from ltc_edge.nn import build_model, save

SHA = "0123456789abcdef" * 4
TASK = {"name": "csv", "type": "regression", "metric": "mse",
        "options": {"data": "/data/osc.csv", "inputs": "force,pos,vel", "targets": "pos_next,vel_next",
                    "time": "t"},
        "dt": {"median": 0.035, "min": 0.01, "max": 0.08},
        "data": {"path": "/data/osc.csv", "sha256": SHA, "size_bytes": 1234}}


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    m = build_model("ltc", 3, wiring="auto-ncp", units=8, output_size=2, seed=0)
    m.apply_constraints()
    m.config["task"] = json.loads(json.dumps(TASK))
    return save(m, tmp_path_factory.mktemp("m") / "osc.safetensors")


@pytest.fixture(scope="module")
def onnx_out(model_file, tmp_path_factory):
    pytest.importorskip("onnxruntime")
    out = tmp_path_factory.mktemp("onnx") / "onnx"
    return out, _export("onnx", model_file, out)


def _export(fmt, model_file, out):
    from ltc_edge.export import get_exporter

    return get_exporter(fmt)(str(model_file), out)


def _check_card(out, manifest):
    card = (out / "MODEL_CARD.md").read_text()
    entry = manifest["files"]["card"]
    assert entry["name"] == "MODEL_CARD.md" and entry["size_bytes"] == len(card.encode())
    for fact in ("force", "pos", "vel", "pos_next", "vel_next", SHA, "median 0.035", "max 0.08", "rt.load(",
                 "ctrl.reset()", f"ctrl.step(x, dt={manifest['default_dt']:g})",
                 "8 units",
                 "auto-ncp", "none recorded", "task metric: mse"):
        assert fact in card, (fact, card)
    assert ("within budget" in card) == bool((manifest.get("drift") or {}).get("within_budget"))
    return card


def test_onnx_export_has_metadata_props_and_a_verified_card(onnx_out):
    import onnx

    out, manifest = onnx_out
    props = {p.key: p.value for p in onnx.load(out / "model.onnx").metadata_props}
    from ltc_edge.export.manifest import versions

    assert props["ltc_edge.model_kind"] == "ltc" and props["ltc_edge.precision"] == "fp32"
    assert props["ltc_edge.version"] == versions().get("ltc-edge", "") == manifest["versions"].get("ltc-edge", "")
    assert json.loads(props["ltc_edge.input_names"]) == ["force", "pos", "vel"]
    assert json.loads(props["ltc_edge.output_names"]) == ["pos_next", "vel_next"]
    assert [s["name"] for s in json.loads(props["ltc_edge.inputs"])] == ["x", "state", "dt"]
    assert float(props["ltc_edge.default_dt"]) == pytest.approx(0.035)
    assert props["ltc_edge.fixed_dt"] == "" and props["ltc_edge.training_data_sha256"] == SHA
    assert props["ltc_edge.drift"].startswith("within budget, max-abs")
    assert props["ltc_edge.input_size"] == "3" and props["ltc_edge.output_size"] == "2"
    _check_card(out, manifest)
    m, paths = artifact.read_verified(out)
    assert paths["card"] == out / "MODEL_CARD.md"


def test_card_is_checked_like_every_file_and_old_manifests_still_load(onnx_out, tmp_path):
    from ltc_edge.runtime import load

    out, _ = onnx_out
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    (bad / "MODEL_CARD.md").write_text("# tampered\n")
    with pytest.raises(ModelLoadError, match="MODEL_CARD.md: does not match"):
        load(bad)
    old = tmp_path / "old"  # an export written before cards existed: no card role, no file
    shutil.copytree(out, old)
    d = json.loads((old / "manifest.json").read_text())
    del d["files"]["card"]
    (old / "manifest.json").write_text(json.dumps(d))
    (old / "MODEL_CARD.md").unlink()
    assert load(old).step([0.1, 0.2, 0.3], dt=0.035).shape == (2,)
    d["files"]["bogus"] = d["files"]["model"]
    (old / "manifest.json").write_text(json.dumps(d))
    with pytest.raises(ModelLoadError, match="unknown file role 'bogus'"):
        load(old)


@pytest.mark.skipif(cgen.find_cc() is None, reason="no C compiler")
def test_c_export_card_shows_the_c_api(model_file, tmp_path):
    out = tmp_path / "c"
    manifest = _export("c", model_file, out)
    card = _check_card(out, manifest)
    for call in ('#include "ltc_model.h"', "ltc_model_state_t s;", "ltc_model_reset(&s);",
                 "ltc_model_step(&s, x, "):
        assert call in card
    artifact.read_verified(out)


@pytest.mark.slow  # the TFLite conversion alone takes ~40 s on 2 busy cores
def test_tflite_export_has_a_card(model_file, tmp_path):
    pytest.importorskip("ai_edge_litert")
    out = tmp_path / "tflite"
    manifest = _export("tflite", model_file, out)
    card = _check_card(out, manifest)
    assert "tflite fp32" in card and "#include" not in card
    artifact.read_verified(out)
