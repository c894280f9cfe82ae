"""A user's own data through every command (issue 15): a CSV no other test has seen (a driven
damped oscillator logged at irregular times) goes train -> eval (windowed and streaming) ->
export (int8 calibrated from the same file, no flag) -> bench with its metric -> runtime step
at the training median dt, all from another folder than training ran in, with no hand-made
files; a moved or changed data file is a one-line error."""

import hashlib
import json
import os
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from datagen import oscillator_csv
from ltc_edge.cli import app

runner = CliRunner()
ROWS = 360
SPLIT = (0.7, 0.15, 0.15)


def _oscillator_csv(path, seed=11):
    return oscillator_csv(path, ROWS, seed)


def _cli(*args):
    res = runner.invoke(app, [str(a) for a in args])
    assert res.exit_code == 0, res.output
    return res.output


def _error(*args) -> str:
    res = runner.invoke(app, [str(a) for a in args])
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error:"), res.output
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The model, trained in folder `train` with a relative --data path; the tests run in `elsewhere`."""
    root = tmp_path_factory.mktemp("own")
    (root / "train").mkdir()
    (root / "elsewhere").mkdir()
    t, u, x = _oscillator_csv(root / "train" / "osc.csv")
    old = os.getcwd()
    try:
        os.chdir(root / "train")
        report = _cli("train", "--task", "csv", "--data", "osc.csv", "--inputs", "force", "--targets", "position",
             "--time", "time_s", "--seq-len", "16", "--units", "6", "--epochs", "2", "--out", "osc.safetensors",
             "--no-progress")
        os.chdir(root / "elsewhere")
        yield {"root": root, "model": root / "train" / "osc.safetensors", "csv": root / "train" / "osc.csv",
               "t": t, "u": u, "x": x, "report": report}
    finally:
        os.chdir(old)


def _bounds():
    b = np.minimum(np.round(np.cumsum(SPLIT) * ROWS).astype(int), ROWS)
    return int(b[0]), int(b[1]), int(b[2])


def test_the_model_records_its_data_file_and_dt(trained):
    from ltc_edge.nn import read

    task = read(trained["model"])[0]["task"]
    raw = trained["csv"].read_bytes()
    assert task["data"] == {"path": str(trained["csv"]), "sha256": hashlib.sha256(raw).hexdigest(),
                            "size_bytes": len(raw)}
    assert task["options"]["data"] == str(trained["csv"])  # absolute, though --data was relative
    b0 = _bounds()[0]
    diffs = np.diff(trained["t"][:b0])
    assert task["dt"]["median"] == pytest.approx(np.median(diffs), rel=1e-6)
    assert task["dt"]["min"] == pytest.approx(diffs.min(), rel=1e-5)
    assert task["dt"]["max"] == pytest.approx(diffs.max(), rel=1e-5)


def test_runtime_steps_at_the_training_median_dt(trained):
    from ltc_edge.nn import read
    from ltc_edge.runtime import load

    median = read(trained["model"])[0]["task"]["dt"]["median"]
    assert median == pytest.approx(np.median(np.diff(trained["t"][:_bounds()[0]])), rel=1e-6)
    ctrl = load(trained["model"])
    assert ctrl.meta.default_dt == pytest.approx(median, rel=1e-6) and abs(median - 1.0) > 0.9
    x = np.array([0.7], np.float32)
    ctrl.reset()
    without = [np.array(ctrl.step(x)) for _ in range(5)]
    ctrl.reset()
    given = [np.array(ctrl.step(x, median)) for _ in range(5)]
    ctrl.reset()
    one = [np.array(ctrl.step(x, 1.0)) for _ in range(5)]
    np.testing.assert_array_equal(without, given)
    assert np.abs(np.array(one) - np.array(without)).max() > 1e-4  # dt matters: the default is not 1.0


def _stream_reference(trained, backend="numpy"):
    """The test rows stepped one by one through the runtime, with their true dt."""
    from ltc_edge.runtime import load

    _, b1, b2 = _bounds()
    t = trained["t"]
    ctrl = load(trained["model"], backend=backend)
    ctrl.reset()
    err = []
    for i in range(b1, b2):
        y = ctrl.step(np.array([trained["u"][i]], np.float32), np.float32(t[i] - t[i - 1]))
        err.append(float(y[0]) - trained["x"][i])
    return float(np.mean(np.square(err))), b2 - b1


def test_eval_from_another_folder_windowed_and_streaming(trained):
    from ltc_edge.train.outputs import metrics_path

    res = json.loads(_cli("eval", trained["model"], "--streaming", "--json").strip().splitlines()[-1])
    saved = json.loads(metrics_path(trained["model"]).read_text())
    assert res["mse"] == pytest.approx(saved["test"]["mse"], rel=1e-5)  # windowed, as training measured it
    want, rows = _stream_reference(trained)
    assert res["streaming_steps"] == rows and res["streaming_sequences"] == 1
    assert res["streaming_mse"] == pytest.approx(want, rel=1e-4)


def test_train_reports_the_streamed_metric_beside_the_windowed_one(trained):
    """Issue 29: the figure that matters on a device is in train's final report and metrics file."""
    from ltc_edge.train.outputs import metrics_path

    saved = json.loads(metrics_path(trained["model"]).read_text())
    want, rows = _stream_reference(trained)
    got = saved["test_streaming"]
    assert got["mse"] == pytest.approx(want, rel=1e-4) and got["steps"] == rows and got["backend"] == "numpy"
    assert got["mse"] != pytest.approx(saved["test"]["mse"], rel=1e-3)  # not the windowed figure again
    assert f"test mse {saved['test']['mse']:.5g} (windows, state reset each)" in trained["report"]
    assert (f"streamed test mse {want:.5g} (the whole series, state carried: 1 sequence, {rows} steps)"
            in trained["report"])


def test_eval_labels_its_loss(trained):
    out = _cli("eval", trained["model"])
    assert "loss: " in out and "(training loss: MSE, normalised units; test windows, state reset each)" in out
    assert "(test windows, state reset each; data units)" in out.split("mse: ")[1].splitlines()[0]
    assert json.loads(_cli("eval", trained["model"], "--json").strip().splitlines()[-1])["loss_kind"] == \
        "MSE, normalised units"


def test_robustness_shows_the_streamed_metric(trained):
    out_dir = trained["root"] / "elsewhere" / "robust"
    out = _cli("analyze", "robustness", trained["model"], "--seeds", "1", "--sequences", "4", "--out", out_dir)
    model = json.loads((out_dir / "robustness.json").read_text())["models"][0]
    want, _ = _stream_reference(trained)
    assert model["clean_streaming"] == pytest.approx(want, rel=1e-4) and model["clean"] != model["clean_streaming"]
    assert "streamed: the whole test series, state carried" in " ".join(out.split())
    md = (out_dir / "robustness.md").read_text()
    assert "clean, streamed (whole test series)" in md and f"| {model['clean_streaming']:.4g} |" in md


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["onnx", "tflite", "c"])
def test_streaming_on_every_backend(trained, backend):
    res = json.loads(_cli("eval", trained["model"], "--streaming", "--backend", backend, "--json")
                     .strip().splitlines()[-1])
    want, _ = _stream_reference(trained)
    from ltc_edge.runtime import backend_name

    assert res["streaming_backend"] == backend_name(backend)  # an alias is reported by its name ("onnx" -> onnxruntime)
    assert res["streaming_mse"] == pytest.approx(want, rel=1e-3)


def _median(trained):
    from ltc_edge.nn import read

    return read(trained["model"])[0]["task"]["dt"]["median"]


@pytest.mark.parametrize("fmt,precision", [("onnx", "int8"), ("c", "fp32"),
                                           pytest.param("onnx", "fp32", marks=pytest.mark.slow),
                                           pytest.param("tflite", "fp32", marks=pytest.mark.slow),
                                           pytest.param("tflite", "int8", marks=pytest.mark.slow)])
def test_export_calibrates_and_checks_on_the_stored_data(trained, fmt, precision):
    out = trained["root"] / "elsewhere" / f"{fmt}-{precision}"
    _cli("export", trained["model"], "--format", fmt, "--precision", precision, "--out", out)
    man = json.loads((out / "manifest.json").read_text())
    assert man["default_dt"] == pytest.approx(_median(trained), rel=1e-6)
    assert man["drift"]["data"] == "task:csv" and man["drift"]["metric"]["name"] == "mse"
    saved = json.loads((trained["model"].parent / "osc.metrics.json").read_text())
    assert man["drift"]["metric"]["torch_fp32"] == pytest.approx(saved["test"]["mse"], rel=1e-4)
    if precision == "fp32":
        assert man["drift"]["max_abs"] <= 1e-4
    if (fmt, precision) == ("onnx", "int8"):  # weight-only: no calibration search, weights >= 3x smaller
        quant = man["quantization"]
        assert quant["scheme"] == "weight-only" and quant["float_weights"] == [] and man["drift"]["within_budget"]
        assert quant["fp32_weight_bytes"] >= 3 * quant["weight_bytes"]
    from ltc_edge.runtime import load

    assert load(out).meta.default_dt == pytest.approx(_median(trained), rel=1e-6)


def test_bench_without_task_reports_the_stored_metric(trained):
    out = trained["root"] / "elsewhere" / "bench"
    _cli("bench", trained["model"], "--backend", "numpy", "--batch", "1", "--seconds", "0.01", "--out", out)
    res = json.loads((out / "results.json").read_text())
    saved = json.loads((trained["model"].parent / "osc.metrics.json").read_text())
    assert res["task"] == "csv" and res["metric"] == "mse"
    assert res["rows"][0]["metric"] == pytest.approx(saved["test"]["mse"], rel=1e-4)


def test_prune_and_bounds_use_the_stored_data(trained):
    out = trained["root"] / "elsewhere"
    _cli("prune", trained["model"], "--sparsity", "0.5", "--no-time-c", "--out", out / "pruned")
    rows = json.loads((out / "pruned" / "prune_report.json").read_text())["rows"]
    saved = json.loads((trained["model"].parent / "osc.metrics.json").read_text())
    assert rows[0]["mse"] == pytest.approx(saved["test"]["mse"], rel=1e-5) and np.isfinite(rows[1]["mse"])
    _cli("analyze", "bounds", trained["model"], "--out", out / "bounds")
    assert json.loads((out / "bounds" / "bounds.json").read_text())["inputs"] == "task csv (test split)"


@pytest.mark.slow
def test_bench_int8_calibrated_from_a_csv(trained):
    out = trained["root"] / "elsewhere" / "bench-int8"
    _cli("bench", trained["model"], "--backend", "onnxruntime", "--precision", "int8", "--batch", "1",
         "--seconds", "0.01", "--calibration", trained["csv"], "--out", out)
    row = json.loads((out / "results.json").read_text())["rows"][0]
    assert row["skipped"] is None and np.isfinite(row["metric"]) and row["drift_metric_rel_change"] < 0.05


def test_eval_streaming_options_are_checked(trained):
    assert "unknown backend 'cuda'; choose from numpy" in _error("eval", trained["model"], "--streaming", "--backend", "cuda")
    assert "--backend applies to --streaming" in _error("eval", trained["model"], "--backend", "c")


def test_moved_data_file_is_one_line_error(trained):
    moved = trained["csv"].with_name("moved.csv")
    shutil.move(trained["csv"], moved)
    try:
        line = _error("eval", trained["model"])
        assert str(trained["csv"]) in line and "missing" in line and "--data" in line
        line = _error("export", trained["model"], "--format", "onnx", "--precision", "int8", "--out",
                      trained["root"] / "elsewhere" / "never")
        assert "missing" in line and not (trained["root"] / "elsewhere" / "never").exists()
        res = json.loads(_cli("eval", trained["model"], "--data", moved, "--json").strip().splitlines()[-1])
        assert np.isfinite(res["mse"])  # another copy, named explicitly, is used as is
    finally:
        shutil.move(moved, trained["csv"])


def test_changed_data_file_is_hash_mismatch_error(trained):
    raw = trained["csv"].read_bytes()
    changed = raw + f"{trained['t'][-1] + 0.03:.6f},0.1,0.0\n".encode()  # one more row logged
    trained["csv"].write_bytes(changed)
    try:
        for args in (["eval", trained["model"]], ["bench", trained["model"], "--backend", "numpy", "--out",
                                                   trained["root"] / "elsewhere" / "b2"]):
            line = _error(*args)
            assert "changed since training" in line and str(trained["csv"]) in line
            assert hashlib.sha256(changed).hexdigest()[:12] in line and hashlib.sha256(raw).hexdigest()[:12] in line
        _cli("eval", trained["model"], "--data", trained["csv"])  # named explicitly: used anyway
    finally:
        trained["csv"].write_bytes(raw)
