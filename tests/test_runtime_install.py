"""`pip install ltc-edge[runtime]` in a fresh venv (no system site-packages) pulls no torch,
and load + step work there: the model file, a C export folder (no torch, no export package
needed: the runtime stands on ltc_edge.codegen and ltc_edge.artifact) and, with onnxruntime
added, an ONNX export folder. Slow: builds a venv and installs numpy + safetensors (+ onnxruntime)."""

import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_runtime_extra_installs_without_torch(tmp_path):
    from ltc_edge.nn import build_model, save

    model_file = save(build_model("ltc", 3, wiring="auto-ncp", units=10, output_size=1, seed=0),
                      tmp_path / "m.safetensors")
    env = tmp_path / "venv"
    venv.EnvBuilder(with_pip=True, system_site_packages=False).create(env)
    py = env / "bin" / "python"
    # the project itself from the local path; its [runtime] dependencies from the index
    # (numpy + safetensors): a dependency on torch would make pip install it here
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                        f"{ROOT}[runtime]"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    exports = {}
    from ltc_edge.codegen.c import find_cc
    from ltc_edge.export import get_exporter

    if find_cc():
        exports["c"] = tmp_path / "c"
        get_exporter("c")(str(model_file), exports["c"])
    code = (
        "import importlib.util, sys\n"
        "assert importlib.util.find_spec('torch') is None, 'torch is installed'\n"
        "from ltc_edge.runtime import load\n"
        "ys = []\n"
        f"for p in {[str(model_file)] + [str(p) for p in exports.values()]!r}:\n"
        "    c = load(p)\n"
        "    ys.append([float(c.step([0.1, -0.2, 0.3], dt=0.05)[0]) for _ in range(20)][-1])\n"
        "assert 'torch' not in sys.modules\n"
        "print('OK', *ys)\n")
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.startswith("OK"), r.stderr[-2000:]
    # the same numbers as here
    from ltc_edge.runtime import load

    c = load(model_file)
    y = [float(c.step([0.1, -0.2, 0.3], dt=0.05)[0]) for _ in range(20)][-1]
    got = [float(v) for v in r.stdout.split()[1:]]
    assert len(got) == 1 + len(exports) and max(abs(v - y) for v in got) < 1e-5, (got, y)
    # onnxruntime and ai-edge-litert are those backends' own packages: with them, ONNX and
    # TFLite export folders run too (still no torch)
    for fmt in ("onnx", "tflite"):
        get_exporter(fmt)(str(model_file), tmp_path / fmt)
    r = subprocess.run([str(py), "-m", "pip", "install", "-q", "--disable-pip-version-check", "onnxruntime",
                        "ai-edge-litert"], capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-2000:]
    code = ("import sys\nfrom ltc_edge.runtime import load\n"
            f"for p in {[str(tmp_path / 'onnx'), str(tmp_path / 'tflite')]!r}:\n"
            "    c = load(p)\n"
            "    print(c.backend_name, [float(c.step([0.1, -0.2, 0.3], dt=0.05)[0]) for _ in range(20)][-1])\n"
            "assert 'torch' not in sys.modules\n")
    r = subprocess.run([str(py), "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    rows = dict(line.split() for line in r.stdout.splitlines())
    assert set(rows) == {"onnxruntime", "tflite"}, r.stdout
    assert max(abs(float(v) - y) for v in rows.values()) < 1e-5, (rows, y)
