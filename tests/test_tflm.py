"""int8 TFLite for TensorFlow Lite for Microcontrollers (--precision int8-tflm): the file runs
in the tflite-micro package's interpreter (TFLM's own kernels), within the int8 drift budget
over >= 1000 steps, with weights >= 3x smaller than fp32; the `tflm` runtime backend steps it."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_quantizer")
pytest.importorskip("tflite_micro")

from ltc_edge.errors import LtcEdgeError, ModelLoadError  # noqa: E402
from ltc_edge.export import drift as D  # noqa: E402
from ltc_edge.export import tflite as L  # noqa: E402
from ltc_edge.export.graph import build_graph  # noqa: E402
from ltc_edge.nn.model import build_model  # noqa: E402
from ltc_edge.runtime import load  # noqa: E402
from ltc_edge.runtime.tflm_backend import TFLMStepper  # noqa: E402


def ltc():
    return build_model("ltc", 6, wiring="auto-ncp", units=14, output_size=3, seed=0).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """One int8-tflm export of a small LTC-NCP, calibrated on AR(1) inputs with targets from
    another model (so the task metric is a real, non-zero error)."""
    from test_export_onnx import realistic_npz

    tmp = tmp_path_factory.mktemp("tflm")
    model = ltc()
    npz = realistic_npz(tmp / "cal.npz", model)
    man = L.export(model, tmp / "q", precision="int8-tflm", calibration=str(npz))
    return model, npz, tmp / "q", man


def test_int8_tflm_needs_calibration(tmp_path):
    with pytest.raises(ValueError, match="int8-tflm needs calibration data"):
        L.export(ltc(), tmp_path / "t", precision="int8-tflm")
    assert not (tmp_path / "t").exists()


def test_tflm_backend_refuses_what_it_cannot_run(tmp_path):
    from ltc_edge.nn.modelfile import save

    path = tmp_path / "m.safetensors"
    save(ltc(), path)
    with pytest.raises(ModelLoadError, match="the tflm backend runs an export of the model"):
        load(path, "tflm")
    from ltc_edge.runtime.tflm_backend import TFLMBackend

    with pytest.raises(LtcEdgeError, match="arena_size"):  # checked before the file is opened
        TFLMBackend(path, arena_size=12)


@pytest.mark.slow
def test_int8_tflm_runs_in_tflm_within_budget_and_small(exported):
    model, _, folder, man = exported
    content = (folder / "model.tflite").read_bytes()
    assert man["precision"] == "int8-tflm" and man["builtin_ops_only"]
    drift = man["drift"]
    assert drift["within_budget"] and drift["steps"] >= 1000
    assert drift["metric"]["name"] == "mse" and drift["metric"]["rel_delta"] <= 0.05
    hist, custom = L.op_list(content)
    assert not custom and hist == man["op_histogram"]
    # integer where it pays: the synapse products and sigmoids run in int8 between QUANTIZE/DEQUANTIZE
    assert hist["QUANTIZE"] >= 1 and hist["DEQUANTIZE"] >= 1 and hist["LOGISTIC"] >= 1
    TFLMStepper(content, (6, 14, 3))  # TFLM prepares every op (a kernel it lacks raises)
    # weights: every graph constant of the fp32 step graph is float32 (4 bytes each)
    fp32_weight_bytes = 4 * sum(b.numel() for _, b in build_graph(model).named_buffers())
    counted = L.constant_bytes(content)
    assert sum(counted.values()) * 3 <= fp32_weight_bytes, (counted, fp32_weight_bytes)
    assert counted.get("int8", 0) > 2 * sum(v for k, v in counted.items() if k != "int8")
    quant = man["quantization"]
    assert quant["fp32_constant_bytes"]["float32"] >= 0.9 * fp32_weight_bytes
    assert quant["fp32_file_bytes"] > fp32_weight_bytes and len(content) < quant["fp32_file_bytes"]
    assert man["export_seconds"]["quantize"] < 60  # calibration + quantisation: seconds, no search


@pytest.mark.slow
def test_tflm_backend_steps_the_export_within_budget(exported):
    model, npz, folder, _ = exported
    data = D.load_reference(str(npz), model.config)
    X, _ = D.chain(data.x, data.dt, 1000, 1)
    ctrl = load(folder, "tflm")  # state_check="raise": 1000 steps inside the LTC bounds
    assert ctrl.backend.describe()["interpreter"] == "tflite-micro"
    ctrl.reset()
    dt = float(data.dt[0, 0])
    ys = np.stack([np.array(ctrl.step(X[0, t], dt=dt)) for t in range(X.shape[1])])
    ref = D.run_sequences(D.torch_runner(model), X, np.full(X.shape[:2], dt, np.float32), 14)[0]
    run = TFLMStepper((folder / "model.tflite").read_bytes(), (6, 14, 3)).runner()
    same = D.run_sequences(run, X, np.full(X.shape[:2], dt, np.float32), 14)[0]
    assert np.array_equal(ys.reshape(same.shape), same)  # the backend is the exporter's drift runner
    assert X.shape[1] >= 1000
    assert 0 < np.abs(ys.reshape(ref.shape) - ref).max()  # int8: not the float model
    # the task metric through the runtime (every held-out sequence from zero state, a batch of rows)
    x, y = data.x, data.y
    ctrl = load(folder, "tflm", batch=x.shape[0])
    ctrl.reset()
    out = np.stack([np.array(ctrl.step(x[:, t], dt=dt)) for t in range(x.shape[1])], 1)
    torch_out = D.run_sequences(D.torch_runner(model), x, np.full(x.shape[:2], dt, np.float32), 14)
    mse, mse_fp32 = np.mean((out - y) ** 2), np.mean((torch_out - y) ** 2)
    assert abs(mse / mse_fp32 - 1) <= 0.05, (mse, mse_fp32)


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["weight-only", "weight-only-float-update"])
def test_int8_tflm_weight_only_fallbacks_run_in_tflm(tmp_path, monkeypatch, scheme):
    """The schemes int8-tflm falls back to when its integer schemes miss the budget (the
    pendulum clone's fully connected LTC: benchmarks/results/pendulum_int8.json): int8 weights
    dequantised by TFLM, float compute; the manifest names the scheme and TFLM runs the file."""
    from test_export_onnx import realistic_npz

    monkeypatch.setattr(L, "TFLM_SCHEMES", (scheme,))
    model = ltc()
    man = L.export(model, tmp_path / "q", precision="int8-tflm", calibration=str(realistic_npz(tmp_path / "c.npz", model)))
    assert man["quantization"]["scheme"] == scheme and man["drift"]["within_budget"]
    content = (tmp_path / "q" / "model.tflite").read_bytes()
    hist, _ = L.op_list(content)
    assert hist["DEQUANTIZE"] >= 1 and "QUANTIZE" not in hist  # int8 weights only, float activations
    TFLMStepper(content, (6, 14, 3))
    counted = L.constant_bytes(content)
    if scheme == "weight-only":  # every product's weights int8
        assert counted.get("int8", 0) > 3 * counted.get("float32", 0)
