"""The `ltc` command line (typer's CliRunner, plus one real subprocess for start-up time)."""

import subprocess
import sys
import time

import numpy as np
import pytest
from typer.testing import CliRunner

from ltc_edge.cli import app
from ltc_edge.nn import build_model, save

runner = CliRunner()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for cmd in ("info", "demo"):
        assert cmd in result.output


def test_version():
    from ltc_edge import __version__

    result = runner.invoke(app, ["--version"])
    assert result.exit_code == 0 and __version__ in result.output


def test_help_is_fast_and_imports_no_torch():
    code = "import sys; from ltc_edge.cli import app; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], check=True)
    t = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ltc_edge.cli", "--help"], check=True, capture_output=True)
    assert time.perf_counter() - t < 3.0  # generous for a loaded 2-core CI box; ~0.3 s here


def test_info(tmp_path):
    path = save(build_model("ltc", 8, wiring="auto-ncp", units=19, output_size=4, seed=0), tmp_path / "m.safetensors")
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 0, result.output
    for word in ("neurons", "19", "synapses", "parameters", "inputs", "outputs", "file size"):
        assert word in result.output


@pytest.mark.parametrize("content", [None, b"", b"garbage" * 20])
def test_info_bad_files_one_line_error(tmp_path, content):
    path = tmp_path / "m.safetensors"
    if content is not None:
        path.write_bytes(content)
    result = runner.invoke(app, ["info", str(path)])
    assert result.exit_code == 1
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:")


def test_unknown_option_exits_nonzero():
    result = runner.invoke(app, ["info", "--frobnicate"])
    assert result.exit_code != 0


def test_demo_quick_runs_the_whole_pipeline(tmp_path):
    """--quick: tiny data and one epoch, fp32 only, but every stage for real."""
    import json

    result = runner.invoke(app, ["demo", "--quick", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    for name in ("ltc-ncp", "lstm", "pendulum-ltc"):
        assert (tmp_path / "models" / f"{name}.safetensors").exists()
    results = json.loads((tmp_path / "bench" / "results.json").read_text())
    measured = [r for r in results["rows"] if not r["skipped"]]
    assert {r["backend"] for r in measured} >= {"numpy", "onnxruntime"}
    assert all(r["latency"]["1"]["p50_us"] > 0 for r in measured)
    assert (tmp_path / "bench" / "report.md").exists()
    summary = json.loads((tmp_path / "demo.json").read_text())
    p = summary["pendulum"]
    returns = [r["returns"] for r in p["clone"].values()]
    assert all(np.allclose(r, returns[0], rtol=1e-4) for r in returns)  # every backend flies the same episodes
    assert p["seeds"] == [0, 1] and len(p["expert"]["returns"]) == 2
    assert p["expert"]["return_mean"] > -400
    assert p["gap"] == pytest.approx((p["expert"]["return_mean"] - p["clone_mean"]) / abs(p["expert"]["return_mean"]))
    # the clone is a normal model file with its task stored: ltc eval takes it as it is
    ev = runner.invoke(app, ["eval", str(tmp_path / "models" / "pendulum-ltc.safetensors"), "--episodes", "1"])
    assert ev.exit_code == 0, ev.output
    report = (tmp_path / "report.md").read_text()
    for section in ("## 1. Training", "## 2. Export drift", "## 3. Benchmark", "## 4. ARM targets",
                    "## 5. Pendulum-v1 closed loop", "## Conclusion"):
        assert section in report
    assert f"{p['expert']['return_mean']:.1f}" in report
    _check_demo_robustness(summary, report, tmp_path)


def _check_demo_robustness(summary: dict, report: str, out) -> None:
    """The report's robustness section carries the sweep's own numbers: the clean MSEs are the
    models' on the sampled test rows (re-run here on numpy), the LSTM ignores dt (jitter leaves
    it exactly as it was), the LTC does not."""
    from ltc_edge.analyze import robustness as R
    from ltc_edge.runtime import load
    from ltc_edge.train.tasks import load_task

    r = summary["robustness"]
    assert "## 6. Robustness" in report and 0 < r["cpu_s"] < 30
    ltc, lstm = r["models"]
    test = R.with_dt(R.sample_rows(load_task("cheetah").test, r["test_sequences"], summary["seed"]))
    for m in (ltc, lstm):
        ys, _ = R.run_split(load(out / "models" / f"{m['name']}.safetensors", "numpy", state_check="off"), test)
        assert m["clean"] == pytest.approx(R.metric(ys, test, "regression"), rel=1e-4)
    assert f"| clean | - | {ltc['clean']:.4g} | {lstm['clean']:.4g} |" in report
    assert all(p["relative"] == 1.0 for p in lstm["perturbations"]["jitter"])
    assert all(p["relative"] != 1.0 for p in ltc["perturbations"]["jitter"])
    assert "the LSTM is unaffected (it ignores dt)" in report
    for name, levels in r["levels"].items():
        assert len(ltc["perturbations"][name]) == len(levels) and f"- **{name}**: the LTC-NCP" in report


@pytest.mark.parametrize("args", [["--pendulum-rounds", "-1"], ["--epochs", "0"]])
def test_demo_refuses_bad_counts_at_once(tmp_path, one_line_error, args):
    from typer.testing import CliRunner

    from ltc_edge.cli import app

    r = CliRunner().invoke(app, ["demo", "--out", str(tmp_path / "d"), *args])
    one_line_error(r, "demo needs --epochs >= 1 and --pendulum-rounds >= 0")
    assert not (tmp_path / "d").exists()  # nothing started
