"""onnxruntime and TFLite backends: same steps as the numpy runtime, the same guards, clear
errors on bad files. ONNX files come from the project's exporter; the TFLite file is made
here with litert-torch from the exporter's step graph (plus a manifest like the exporter's)."""

import json
import os

import numpy as np
import pytest

from ltc_edge.nn import build_model, save
from ltc_edge.runtime import ModelLoadError, NonFiniteInputError, StateBoundError, load

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def ltc(tmp_path_factory):
    d = tmp_path_factory.mktemp("ltc")
    model = build_model("ltc", 5, wiring="auto-ncp", units=19, output_size=4, seed=0)
    model.apply_constraints()
    return model, save(model, d / "m.safetensors"), d


def _onnx(model, out, **kw):
    from ltc_edge.export import get_exporter

    return get_exporter("onnx")(model, out, **kw)


def _compare(a, b, batch, steps=200, fixed=None, atol=1e-5):
    rng = np.random.default_rng(3)
    worst = 0.0
    for _ in range(steps):
        x = rng.standard_normal((batch, 5)).astype(np.float32)
        dt = fixed if fixed is not None else rng.uniform(0.05, 1.0, batch)
        worst = max(worst, float(np.abs(a.step(x, dt) - b.step(x, dt)).max()),
                    float(np.abs(a.state - b.state).max()))
    assert worst <= atol, worst
    return worst


def test_onnxruntime_equals_numpy(ltc):
    model, path, d = ltc
    _onnx(model, d / "onnx")
    for batch in (1, 3):
        ref = load(path, batch=batch)
        ort = load(d / "onnx", batch=batch)  # the folder: manifest picks the file and backend
        assert ort.backend_name == "onnxruntime" and ort.meta.kind == "ltc"
        _compare(ref, ort, batch)
    # guards are the backend-independent Controller's
    ort = load(d / "onnx" / "model.onnx", model_file=path)
    assert ort.meta.bounds is not None
    with pytest.raises(NonFiniteInputError):
        ort.step([np.nan, 0, 0, 0, 0])


def test_onnxruntime_fixed_dt_and_no_dt_cells(tmp_path, ltc):
    model, path, _ = ltc
    _onnx(model, tmp_path / "fx", fixed_dt=0.2)
    ort = load(tmp_path / "fx")
    assert not ort.backend.has_dt and ort.meta.fixed_dt == 0.2
    _compare(load(path), ort, 1, steps=50, fixed=0.2)
    with pytest.raises(ValueError, match="fixed dt"):
        ort.step(np.zeros(5), dt=1.0)
    lstm = build_model("lstm", 5, units=8, output_size=3, seed=1)
    lp = save(lstm, tmp_path / "lstm.safetensors")
    _onnx(lstm, tmp_path / "lstm")
    _compare(load(lp, batch=2), load(tmp_path / "lstm", batch=2), 2, steps=50)


def test_onnxruntime_bad_files(tmp_path):
    p = tmp_path / "model.onnx"
    p.write_bytes(b"\x08\x01garbage")
    with pytest.raises(ModelLoadError, match="not a loadable ONNX model"):
        load(p)
    with pytest.raises(ModelLoadError, match="no such"):
        load(tmp_path / "missing.onnx")


def _tflite(model, out):
    """model.tflite + manifest.json (same fields as the ONNX exporter's) via litert-torch."""
    litert_torch = pytest.importorskip("litert_torch")
    from ltc_edge.export.graph import build_graph

    graph = build_graph(model)
    out.mkdir(parents=True, exist_ok=True)
    litert_torch.convert(graph, graph.sample_inputs(1)).export(str(out / "model.tflite"))
    from ltc_edge.export.manifest import base_manifest

    man = base_manifest("tflite", "fp32", model, graph, {"model": out / "model.tflite"})
    man.state_bounds = None  # as a hand-made export would lack them: the test attaches them from the model
    man.write(out)
    return out


def _tflite_export(ltc):
    """(the LTC's model file, its fp32 TFLite export folder): exported once, on first use."""
    model, path, d = ltc
    out = d / "tfl"
    if not (out / "model.tflite").exists():
        _tflite(model, out)
    return path, out


def test_tflite_equals_numpy(ltc):
    pytest.importorskip("ai_edge_litert")
    path, out = _tflite_export(ltc)
    for batch in (1, 3):  # a static batch-1 graph steps rows one by one
        tfl = load(out, batch=batch, model_file=path)
        assert tfl.backend_name == "tflite" and tfl.meta.bounds is not None
        _compare(load(path, batch=batch), tfl, batch)


def test_tflm_equals_numpy_on_fp32(ltc):
    """TFLite-Micro's float kernels step the fp32 export as numpy does (batch rows one by one)."""
    pytest.importorskip("tflite_micro")
    path, out = _tflite_export(ltc)
    for batch in (1, 3):
        tflm = load(out, "tflm", batch=batch, model_file=path)
        assert tflm.backend_name == "tflm" and tflm.meta.bounds is not None
        _compare(load(path, batch=batch), tflm, batch)


def test_tflite_guard_catches_a_wrong_state(ltc):
    pytest.importorskip("ai_edge_litert")
    path, out = _tflite_export(ltc)
    tfl = load(out, model_file=path)
    tfl.state = np.full(19, 50.0)  # allowed as a start: the bound includes it
    tfl.step(np.zeros(5))
    assert np.all(tfl.state < 50.0)  # decays back toward the leak/reversal range
    be = tfl.backend
    real = be.run

    def broken():
        real()
        be.h_new[0, 0] = 1e6

    be.run = broken
    with pytest.raises(StateBoundError):
        tfl.step(np.zeros(5))


def test_tflite_bad_file(tmp_path):
    pytest.importorskip("ai_edge_litert")
    (tmp_path / "model.tflite").write_bytes(b"TFL3" + os.urandom(64))
    from ltc_edge.artifact import FileEntry, Manifest

    config = build_model("ltc", 5, wiring="auto-ncp", units=19, output_size=4, seed=0).config
    Manifest(format="tflite", precision="fp32", files={"model": FileEntry.of(tmp_path / "model.tflite")},
             kind="ltc", input_size=5, output_size=4, state_size=19, uses_dt=True, config=config,
             details={"model": {"state_size": 19}}).write(tmp_path)
    with pytest.raises(ModelLoadError) as info:
        load(tmp_path / "model.tflite")
    assert "manifest.json" not in str(info.value)  # the manifest is valid: the bytes are refused


def test_tflite_controller_shared_by_threads(ltc, step_in_threads):
    """One TFLite controller stepped from 4 threads: the interpreter is not re-entrant (it
    raised RuntimeError), the Controller's lock runs the steps one at a time, and the end
    state equals 4 x 100 sequential steps."""
    pytest.importorskip("ai_edge_litert")
    path, out = _tflite_export(ltc)
    shared, ref = load(out, model_file=path), load(path)
    x = np.linspace(-1, 1, 5)
    errors = step_in_threads(shared, x, 100)
    assert not errors, errors[0]
    for _ in range(400):
        ref.step(x, 0.1)
    np.testing.assert_allclose(shared.state, ref.state, atol=1e-5)
