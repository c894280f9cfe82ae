"""TFLite export through litert-torch: builtin ops only, equal to torch, drift-checked; runs
in ai-edge-litert's Interpreter and (slow) in the classic tflite_runtime in its own venv."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("litert_torch")
pytest.importorskip("ai_edge_litert")

from ltc_edge.export import tflite as L  # noqa: E402
from ltc_edge.export.graph import build_graph  # noqa: E402
from ltc_edge.nn.model import build_model  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BUILTIN_OK = {"ADD", "SUB", "MUL", "DIV", "LOGISTIC", "TANH", "FULLY_CONNECTED", "SUM", "RESHAPE", "SLICE",
              "STRIDED_SLICE", "CONCATENATION", "DEQUANTIZE", "QUANTIZE", "BATCH_MATMUL", "EXP", "ABS",
              "EXPAND_DIMS", "SQUARED_DIFFERENCE", "RELU", "NEG", "TRANSPOSE", "BROADCAST_TO", "GATHER",
              "SPLIT", "SPLIT_V", "PACK", "SQUEEZE", "MAXIMUM", "MINIMUM"}


def ltc():
    return build_model("ltc", 8, wiring="auto-ncp", units=19, output_size=4, seed=0).eval()


def check_step(model, path, fixed_dt=None, tol=1e-5, seed=0):
    content = Path(path).read_bytes()
    it = L.interpreter(content)
    graph = build_graph(model, fixed_dt=fixed_dt)
    run = L.runner(it, graph.input_names())
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((1, model.input_size)).astype(np.float32)
    s = (0.5 * rng.standard_normal((1, model.state_size))).astype(np.float32)
    dt = np.full((1, 1), 0.3, np.float32)
    y, h = run(x, s, dt if graph.has_dt else None)
    with torch.no_grad():
        ty, th = model.step(torch.from_numpy(x), torch.from_numpy(s), fixed_dt or torch.from_numpy(dt))
    assert np.abs(y - ty.numpy()).max() <= tol and np.abs(h - th.numpy()).max() <= tol
    return x, s, dt, ty.numpy(), th.numpy()


def test_tflite_fp32_ltc_matches_builtin_only(tmp_path):
    model = ltc()
    man = L.export(model, tmp_path / "t")
    path = tmp_path / "t" / "model.tflite"
    hist, custom = L.op_list(path.read_bytes())
    assert not custom and set(hist) <= BUILTIN_OK, hist
    assert man["op_histogram"] == hist and man["builtin_ops_only"]
    check_step(model, path)
    assert man["drift"]["steps"] >= 1000 and man["drift"]["max_abs"] <= 1e-4
    on_disk = json.loads((tmp_path / "t" / "manifest.json").read_text())
    assert on_disk["format"] == "tflite" and on_disk["size_bytes"] == path.stat().st_size
    assert [i["name"] for i in on_disk["inputs"]] == ["x", "state", "dt"]
    assert on_disk["inputs"][0]["shape"] == [1, 8]


def test_tflite_unknown_precision_is_clear(tmp_path):
    with pytest.raises(ValueError, match="unknown precision 'int4'"):
        L.export(ltc(), tmp_path / "t", precision="int4")
    with pytest.raises(ValueError, match="int8-full needs calibration"):
        L.export(ltc(), tmp_path / "t", precision="int8-full")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["cfc", "ctrnn", "node", "lstm", "gru"])
def test_tflite_fp32_other_cells(kind, tmp_path):
    model = build_model(kind, 5, seed=0, units=8, **({"backbone_units": 16} if kind == "cfc" else {})).eval()
    man = L.export(model, tmp_path / kind)
    hist, custom = L.op_list((tmp_path / kind / "model.tflite").read_bytes())
    assert not custom and set(hist) <= BUILTIN_OK, hist
    check_step(model, tmp_path / kind / "model.tflite")
    assert man["drift"]["max_abs"] <= 1e-4


@pytest.mark.slow
def test_tflite_fixed_dt_fp16_and_int8(tmp_path):
    from test_export_onnx import realistic_npz

    model = ltc()
    man = L.export(model, tmp_path / "f", fixed_dt=0.5)
    assert [i["name"] for i in man["inputs"]] == ["x", "state"]
    check_step(model, tmp_path / "f" / "model.tflite", fixed_dt=0.5)
    fp32_ops = man["op_histogram"]
    man = L.export(model, tmp_path / "h", precision="fp16")
    assert man["drift"]["max_abs"] <= 1e-2
    if "FULLY_CONNECTED" in fp32_ops:  # fp16 weights of the matrix products, dequantised on load
        assert "DEQUANTIZE" in man["op_histogram"]
    npz = realistic_npz(tmp_path / "cal.npz", model)
    man = L.export(model, tmp_path / "q", precision="int8", calibration=str(npz))
    assert man["drift"]["metric"]["rel_delta"] <= 0.05
    # full int8 (int8 activations too) is recorded honestly; over budget it needs --force
    man = L.export(model, tmp_path / "qf", precision="int8-full", calibration=str(npz), force=True)
    hist, custom = L.op_list((tmp_path / "qf" / "model.tflite").read_bytes())
    assert not custom and set(hist) <= BUILTIN_OK
    assert "metric" in man["drift"]


@pytest.mark.slow
def test_tflite_runs_in_classic_tflite_runtime(tmp_path):
    """The .tflite also runs in the old tflite_runtime (numpy<2: its own venv, made by
    scripts/tflite_runtime_venv.sh)."""
    model = ltc()
    L.export(model, tmp_path / "t")
    x, s, dt, ty, th = check_step(model, tmp_path / "t" / "model.tflite")
    venv = os.environ.get("LTC_TFLITE_VENV", "/tmp/ltc-tflite-venv")
    proc = subprocess.run(["sh", str(ROOT / "scripts" / "tflite_runtime_venv.sh"), venv],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        pytest.skip(f"pip could not install tflite-runtime: {proc.stderr.strip().splitlines()[-1:]}")
    py = proc.stdout.strip().splitlines()[-1]
    np.savez(tmp_path / "in.npz", x=x, state=s, dt=dt)
    code = f"""
import numpy as np
from tflite_runtime.interpreter import Interpreter
it = Interpreter(model_path={str(tmp_path / 't' / 'model.tflite')!r})
it.allocate_tensors()
r = it.get_signature_runner("serving_default")
z = np.load({str(tmp_path / 'in.npz')!r})
out = r(x=z["x"], state=z["state"], dt=z["dt"])
names = sorted(out)
np.savez({str(tmp_path / 'out.npz')!r}, y=out[names[0]], h=out[names[1]])
ops = sorted({{d["op_name"] for d in it._get_ops_details()}})
print(",".join(ops))
"""
    run = subprocess.run([py, "-c", code], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    out = np.load(tmp_path / "out.npz")
    assert np.abs(out["y"] - ty).max() <= 1e-5 and np.abs(out["h"] - th).max() <= 1e-5
    assert not any(op.startswith("Flex") for op in run.stdout.strip().split(","))


@pytest.mark.slow
def test_interpreter_failure_is_one_line_error_and_no_file(tmp_path, monkeypatch):
    """LiteRT's int8 DIV kernel refuses a denominator that rounds to its zero point (seen on a
    trained cheetah LTC with int8-full): the export says so in one line and writes nothing."""
    def failing_runner(it, names):
        def run(x, state, dt):
            raise RuntimeError("tflite/kernels/div.cc:262 data[i] != zero_point was not true.Node number 32 (DIV) "
                               "failed to invoke.")
        return run

    monkeypatch.setattr(L, "runner", failing_runner)
    with pytest.raises(ValueError, match=r"LiteRT cannot run .*keep the LTC's division in float.*nothing written"):
        L.export(ltc(), tmp_path / "qf", precision="fp32", force=True)
    assert not (tmp_path / "qf").exists()


@pytest.mark.slow
def test_absurd_calibration_values_are_one_line_errors(tmp_path):
    """Calibration data at 3e38 (finite, absurd): LiteRT's delegate refuses the int8 scales;
    a one-line ValueError, nothing written -- not the interpreter's RuntimeError."""
    npz = tmp_path / "big.npz"
    np.savez(npz, x=np.full((10, 50, 8), 3e38, np.float32))
    with pytest.raises(ValueError, match="calibration values") as e:
        L.export(ltc(), tmp_path / "q", precision="int8-full", calibration=str(npz))
    assert "\n" not in str(e.value) and not (tmp_path / "q").exists()


def test_runtime_steps_a_full_int8_model(tmp_path):
    """int8-full has int8 inputs and outputs: the runtime backend quantises x / state / dt with each
    tensor's scale and zero point and dequantises y / new_state, as the export's own drift runner
    does (it refused them before: "Got value of type FLOAT32 but expected type INT8")."""
    from test_export_onnx import realistic_npz

    from ltc_edge.runtime import load

    model = ltc()
    npz = realistic_npz(tmp_path / "cal.npz", model)
    L.export(model, tmp_path / "qf", precision="int8-full", calibration=str(npz), force=True)
    content = (tmp_path / "qf" / "model.tflite").read_bytes()
    it = L.interpreter(content)
    ins = it.get_signature_runner("serving_default").get_input_details()
    assert ins["x"]["dtype"] == np.int8  # what makes this model different
    run = L.runner(it, list(ins))
    ctrl = load(tmp_path / "qf", backend="tflite")
    x = np.load(npz)["x"][0, :20].astype(np.float32)
    state = np.zeros((1, ctrl.state_size), np.float32)
    ctrl.reset(1)
    for t in range(len(x)):
        y_ref, state = run(x[t:t + 1], state, np.full((1, 1), 1.0, np.float32))
        y = ctrl.step(x[t:t + 1], 1.0)
        np.testing.assert_array_equal(np.asarray(y).reshape(y_ref.shape), y_ref)
