"""ExecuTorch export (--format executorch: torch.export -> XNNPACK-delegated .pte) and the
executorch runtime backend: drift within budget, the runtime's step equal to the numpy
runtime's, bad input refused in one line. Skipped only where executorch is not installed."""

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("executorch")

from typer.testing import CliRunner  # noqa: E402

from ltc_edge.cli import app  # noqa: E402
from ltc_edge.export import get_exporter  # noqa: E402
from ltc_edge.export import pte as E  # noqa: E402
from ltc_edge.nn import build_model, save  # noqa: E402
from ltc_edge.runtime import load  # noqa: E402
from ltc_edge.runtime.errors import ModelLoadError, RuntimeInputError  # noqa: E402

runner = CliRunner()


def ltc():
    return build_model("ltc", 8, wiring="auto-ncp", units=19, output_size=4, seed=0).eval()


@pytest.fixture(scope="module")
def fp32_export(tmp_path_factory):
    """An fp32 ExecuTorch export of the LTC-19 NCP (made once: lowering takes seconds)."""
    d = tmp_path_factory.mktemp("et")
    model = ltc()
    save(model, d / "m.safetensors")
    return model, d / "m.safetensors", d / "pte", E.export(model, d / "pte")


def test_executorch_is_a_registered_format_and_backend():
    from ltc_edge.runtime import BACKEND_ALIASES, BACKENDS, backend_name

    assert get_exporter("executorch") is E.export
    assert "executorch" in BACKENDS and backend_name("et") == "executorch"
    with pytest.raises(ValueError, match="executorch"):  # the one-line list of formats names it
        get_exporter("pt")
    assert BACKEND_ALIASES["pte"] == "executorch"


def test_bad_precision_and_missing_calibration_are_one_line(tmp_path, one_line_error):
    f = save(ltc(), tmp_path / "m.safetensors")
    r = runner.invoke(app, ["export", str(f), "--format", "executorch", "--precision", "fp16",
                            "--out", str(tmp_path / "o")])
    one_line_error(r, "unknown precision 'fp16'; choose one of fp32, int8")
    with pytest.raises(ValueError, match="int8 needs calibration data"):
        E.export(ltc(), tmp_path / "o", precision="int8")
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_fp32_pte_within_drift_budget_and_described(fp32_export, tmp_path):
    model, _, out, man = fp32_export
    drift = man["drift"]
    assert drift["steps"] >= 1000 and drift["max_abs"] <= 1e-4 and drift["within_budget"]
    on_disk = json.loads((out / "manifest.json").read_text())
    pte = out / "model.pte"
    assert on_disk["format"] == "executorch" and on_disk["files"]["model"]["size_bytes"] == pte.stat().st_size
    assert [i["name"] for i in on_disk["inputs"]] == ["x", "state", "dt"] and on_disk["inputs"][0]["shape"] == [1, 8]
    assert on_disk["delegates"] == {"XnnpackBackend": 1} and on_disk["portable_ops"] == {}  # XNNPACK runs it all
    assert (out / "MODEL_CARD.md").exists()
    r = runner.invoke(app, ["info", str(out)])
    assert r.exit_code == 0 and "executorch" in r.output, r.output


@pytest.mark.slow
def test_runtime_step_equals_numpy_runtime(fp32_export, rng):
    model, model_file, out, _ = fp32_export
    et, ref = load(out, backend="executorch", batch=3), load(model_file, backend="numpy", batch=3)
    assert type(et.backend).__name__ == "ExecuTorchBackend"
    for _ in range(50):
        x = rng.standard_normal((3, 8)).astype(np.float32)
        dt = rng.uniform(0.05, 1.0, (3,)).astype(np.float32)
        assert np.abs(et.step(x, dt) - ref.step(x, dt)).max() <= 1e-5
    assert np.abs(et.state - ref.state).max() <= 1e-5
    et.reset(batch=1)  # back to one row: a control loop
    y = et.step(np.ones(8, np.float32), 0.5)
    assert y.shape == (4,) and np.isfinite(y).all()


_THREADS_SCRIPT = """
import sys
if sys.argv[2] == "runtime-first":  # ExecuTorch's runtime imported (its pool made) before ltc-edge
    import executorch.extension.pybindings.portable_lib as pl
    print("POOL", pl._threadpool_get_thread_count(), "END")
import numpy as np
from ltc_edge.runtime import load
c = load(sys.argv[1], backend="executorch")
c.step(np.ones(8, np.float32), 0.5)
print("THREADS", c.backend.describe()["threads"])
"""


@pytest.mark.slow
def test_runtime_runs_on_one_thread_like_the_other_runtimes(fp32_export):
    """A fresh process sizes ExecuTorch's threadpool to one thread before its first load (as
    onnxruntime and LiteRT run here); where ExecuTorch's runtime was imported first, the pool is
    left as it is (resizing under a loaded program crashes) and describe() says its size."""
    import subprocess
    import sys

    _, _, out, _ = fp32_export
    threads = {}
    for order in ("ltc-edge-first", "runtime-first"):
        r = subprocess.run([sys.executable, "-c", _THREADS_SCRIPT, str(out), order], capture_output=True,
                           text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        threads[order] = int(r.stdout.split("THREADS")[1])
        if order == "runtime-first":
            pool = int(r.stdout.split("POOL")[1].split("END")[0])
    assert threads == {"ltc-edge-first": 1, "runtime-first": pool}
    with pytest.raises(RuntimeInputError, match="threads must be an integer in"):
        load(out, backend="executorch", threads=0)


@pytest.mark.slow
def test_runtime_refuses_swapped_or_bad_program_in_one_line(fp32_export, tmp_path):
    import shutil

    _, _, out, _ = fp32_export
    bad = tmp_path / "bad"
    shutil.copytree(out, bad)
    (bad / "model.pte").write_bytes(b"\0" * 64)  # not the bytes the manifest hashed
    with pytest.raises(ModelLoadError, match="sha256|size"):
        load(bad)
    with pytest.raises(ModelLoadError, match="an export to executorch, not onnx"):
        load(out, backend="onnxruntime")


@pytest.mark.slow
def test_int8_pte_within_metric_budget(tmp_path):
    from test_export_onnx import realistic_npz

    model = ltc()
    npz = realistic_npz(tmp_path / "cal.npz", model)
    man = E.export(model, tmp_path / "q", precision="int8", calibration=str(npz))
    metric = man["drift"]["metric"]
    assert man["drift"]["within_budget"] and metric["rel_delta"] <= 0.05 and metric["name"] == "mse"
    assert man["quantization"]["calibration_rows"] > 0 and man["quantization"]["activations"] == "static"
    assert man["drift"]["max_abs"] > 1e-4  # really quantised: not the fp32 step
    assert man["delegates"] == {"XnnpackBackend": 1} and man["portable_ops"] == {}
    ctrl = load(tmp_path / "q")
    assert np.isfinite(ctrl.step(np.zeros(8, np.float32), 0.5)).all()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["cfc", "lstm", "gru", "ctrnn", "node"])
def test_fp32_other_cells_within_drift_budget(kind, tmp_path):
    model = build_model(kind, 5, seed=0, units=8, **({"backbone_units": 16} if kind == "cfc" else {})).eval()
    man = E.export(model, tmp_path / kind, fixed_dt=0.1 if kind == "node" else None)
    assert man["drift"]["steps"] >= 1000 and man["drift"]["max_abs"] <= 1e-4
    ctrl = load(tmp_path / kind)
    assert np.isfinite(ctrl.step(np.ones(5, np.float32), 0.1)).all()


def test_lowering_refusal_keeps_the_whole_reason_on_one_line(tmp_path, monkeypatch):
    """The reason torch.export / the lowering gives is shown whole (it was cut at 200 characters),
    its line breaks folded into one line."""
    reason = "op aten.foo not supported:\n" + " ".join(f"detail{i}" for i in range(60)) + " END"

    def refuse(*a, **k):
        raise RuntimeError(reason)

    monkeypatch.setattr(E, "to_program", refuse)
    with pytest.raises(ValueError) as e:
        E.export(ltc(), tmp_path / "o")
    msg = str(e.value)
    assert "\n" not in msg and len(reason) > 300
    assert msg.endswith("detail59 END); nothing written") and "op aten.foo not supported: detail0" in msg
    assert not (tmp_path / "o").exists()
