"""`ltc bench`: results schema, percentiles, the task metric through each backend, and every
cell kind side by side at equal hidden size and equal parameter count (--kinds)."""

import json

import pytest
from typer.testing import CliRunner

from ltc_edge.bench import zoo
from ltc_edge.cli import app

pytest.importorskip("onnxruntime")
pytest.importorskip("sklearn")

runner = CliRunner()


def test_parameter_match_picks_the_closest_size():
    from ltc_edge.train.tasks import load_task

    task = load_task("digits")
    entries = zoo.plan_zoo(task, ["ltc", "cfc", "gru"], 12)
    target = zoo.parameter_count(task, "ltc", 12)
    assert {e["name"] for e in entries if e["match"] == "hidden"} == {"ltc-12", "cfc-12", "gru-12"}
    by_params = {e["kind"]: e for e in entries if e["match"] == "params"}
    assert "ltc" not in by_params  # the reference's equal-parameter model is its equal-hidden one
    for kind, e in by_params.items():
        u, opts = e["units"], e["options"]
        count = zoo.parameter_count(task, kind, u, **opts)
        for other in (u - 1, u + 1):
            other_opts = {"backbone_units": other} if opts else {}
            assert abs(count - target) <= abs(zoo.parameter_count(task, kind, other, **other_opts) - target)
    assert by_params["cfc"]["options"] == {"backbone_units": by_params["cfc"]["units"]}


def test_kinds_side_by_side_through_the_cli(tmp_path):
    out = tmp_path / "b"
    r = runner.invoke(app, ["bench", "--kinds", "ltc,gru", "--task", "digits", "--units", "8", "--epochs", "1",
                            "--backend", "numpy,onnxruntime", "--batch", "1,4", "--seconds", "0.05",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert "--kinds trained each model --epochs 1, a short schedule" in " ".join(r.output.split())
    assert "benchmarks/results/pareto_m4.json" in " ".join(r.output.split())  # the converged record beside it
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == "digits" and results["metric"] == "accuracy" and results["machine"]
    models = {row["model"] for row in results["rows"]}
    gru_p = [m for m in models if m.startswith("gru-") and m != "gru-8"]
    assert {"ltc-8", "gru-8"} <= models and len(gru_p) == 1
    assert len(results["rows"]) == 2 * len(models)
    from ltc_edge.nn import load
    from ltc_edge.train.loop import evaluate
    from ltc_edge.train.tasks import load_task

    task = load_task("digits")
    for row in results["rows"]:
        assert not row["skipped"], row["skipped"]
        lat = row["latency"]
        assert set(lat) == {"1", "4"}
        for b in lat.values():
            assert 0 < b["p50_us"] <= b["p90_us"] <= b["p99_us"] and b["throughput_steps_per_s"] > 0
        assert row["parameters"] > 0 and row["file_bytes"] > 0
        # the metric measured through the backend is the model's own test accuracy
        expected = evaluate(load(row["path"]), task, "test")["accuracy"]
        assert row["metric"] == pytest.approx(expected, abs=2e-3)
    ltc = next(r for r in results["rows"] if r["model"] == "ltc-8")
    gru = next(r for r in results["rows"] if r["model"] == gru_p[0])
    assert abs(gru["parameters"] - ltc["parameters"]) < 0.15 * ltc["parameters"]
    for plot in results["plots"]:
        assert (out / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (out / "report.md").read_text()
    assert all(m in report for m in models)


@pytest.mark.parametrize("args,msg", [
    (["--kinds", "ltc,gru"], "--kinds needs --task"),
    (["--kinds", "ltc,bogus", "--task", "digits"], "unknown kind(s) bogus"),
    (["--kinds", "ltc", "--task", "digits", "--match", "width"], "unknown match width"),
    ([], "no models"),
])
def test_bad_bench_arguments_are_one_line_errors(tmp_path, args, msg):
    r = runner.invoke(app, ["bench", *args, "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and msg in r.output and "Traceback" not in r.output


def test_peak_rss_is_each_measurement_own(tmp_path):
    """ru_maxrss carries the parent's peak into every worker (fork + exec), so rows only grew;
    each row must report its own process's peak: a small model after a large one reports less,
    and neither carries the 300 MiB this (parent) process holds."""
    import numpy as np

    from ltc_edge.bench.run import run_bench
    from ltc_edge.nn import build_model, save

    big = save(build_model("lstm", 8, 4, units=512, seed=0), tmp_path / "big.safetensors")
    small = save(build_model("lstm", 8, 4, units=8, seed=0), tmp_path / "small.safetensors")
    ballast = np.ones(300 * 2**20 // 8)  # touched: resident in the parent
    res = run_bench([big, small], backends=["numpy"], batches=(1,), out=tmp_path / "o", min_seconds=0.01)
    rss = {r["model"]: r["peak_rss_bytes"] for r in res["rows"]}
    assert all(not r["skipped"] for r in res["rows"])
    assert rss["small"] < rss["big"] - 5 * 2**20
    assert rss["big"] < ballast.nbytes * 2 // 3


@pytest.mark.parametrize("args,msg", [
    (["--seconds", "0"], "--seconds must be > 0"),
    (["--seconds", "nan"], "--seconds must be a finite number"),
    (["--seconds", "inf"], "--seconds must be a finite number"),
    (["--batch", "0"], "--batch must be"),
    (["--backend", "numpy,bogus"], "unknown backend 'bogus'; choose from torch, numpy (np), onnxruntime (onnx"),
    (["--precision", "int4"], "unknown precision int4; choose from fp32"),
    (["--target", "mars"], "unknown target mars; choose from cpu"),
    (["--task", "bogus"], "unknown task 'bogus'; choose from cheetah"),
    (["--kinds", "ltc", "--task", "digits", "--units", "0"], "--units must be >= 1"),
    (["--kinds", "ltc", "--task", "digits", "--epochs", "0"], "--epochs must be >= 1"),
    (["--kinds", "ltc", "--task", "digits", "--wiring", "star"], "unknown --wiring 'star'; choose from full"),
    (["--clock-hz", "0"], "--clock-hz must be > 0"),
    (["--clock-hz", "nan"], "--clock-hz must be a finite number"),
    (["--backend", "executorch", "--target", "cortex-m4"],  # no empty progress bar before it
     "nothing to measure in fp32: executorch runs fp32/int8, not on cortex-m4; ARM and mcu: targets run the c"),
    (["--backend", "numpy", "--precision", "int8"], "nothing to measure in int8: numpy runs fp32 on cpu"),
])
def test_bench_numbers_and_names_are_checked(tmp_path, ltc_file, args, msg, one_line_error):
    one_line_error(runner.invoke(app, ["bench", ltc_file, *args, "--out", str(tmp_path / "o")]), msg)


def test_bench_refuses_an_input_model_as_out(ltc_file, one_line_error):
    one_line_error(runner.invoke(app, ["bench", ltc_file, "--out", ltc_file]), "is the input")


@pytest.mark.parametrize("fmt,backends", [("csv", "numpy"), pytest.param("npz", "numpy,torch", marks=pytest.mark.slow)])
def test_kinds_train_on_the_users_own_data(tmp_path, fmt, backends):
    """--kinds with --task csv/npz and --data/--inputs/--targets/--time trains every kind on that file
    (it said `task csv needs --data FILE.csv`); each row's metric, windowed and streamed (the state
    carried over the whole test series), is the model's own on that data, torch and numpy alike."""
    import numpy as np

    from datagen import oscillator_csv
    from ltc_edge.nn import load
    from ltc_edge.train.loop import evaluate
    from ltc_edge.train.streaming import streaming_eval
    from ltc_edge.train.tasks import load_task

    t, u, x = oscillator_csv(tmp_path / "osc.csv", 480)
    data = tmp_path / f"osc.{fmt}"
    if fmt == "npz":
        np.savez(data, time_s=t, force=u, position=x)
    columns = {"inputs": "force", "targets": "position", "time": "time_s"}
    out = tmp_path / "b"
    r = runner.invoke(app, ["bench", "--kinds", "ltc,lstm", "--task", fmt, "--data", str(data),
                            *[a for k, v in columns.items() for a in (f"--{k}", v)], "--units", "4", "--match",
                            "hidden", "--epochs", "1", "--backend", backends, "--batch", "1", "--seconds", "0.02",
                            "--out", str(out)])
    assert r.exit_code == 0, r.output
    results = json.loads((out / "results.json").read_text())
    assert results["task"] == fmt and results["metric"] == "mse"
    assert {row["model"] for row in results["rows"]} == {"ltc-4", "lstm-4"}
    assert len(results["rows"]) == 2 * len(backends.split(","))
    td = load_task(fmt, data=str(data), **columns)
    for row in results["rows"]:
        assert not row["skipped"], row["skipped"]
        net = load(row["path"])
        assert row["metric"] == pytest.approx(evaluate(net, td, "test")["mse"], rel=1e-3)
        streamed = streaming_eval(row["path"], net, td, "test", "numpy")["mse"]
        assert row["metric_streaming"] == pytest.approx(streamed, rel=1e-3)
    assert "(streamed)" in r.output and "mse (streamed)" in (out / "report.md").read_text()


def _results(rows, metric="mse"):
    return {"task": "cheetah", "metric": metric, "metric_better": "lower", "created": "now", "rows": rows,
            "machine": {"processor": "cpu", "cpu_count": 2, "platform": "linux", "versions": {}}}


def _row(target, precision="fp32", **kw):
    row = {"model": "ltc-ncp", "cell": "ltc", "parameters": 1000, "synapses": 50, "backend": "c",
           "precision": precision, "target": target, "file_bytes": 42700, "metric": 0.25, "metric_streaming": 0.81,
           "latency": {}, "skipped": None}
    return {**row, **kw}


def test_bench_figures_are_labelled_host_and_arm_apart():
    """Issue 29 item 8: the console shows flash/RAM and the metric on ARM rows, and says what each
    figure is: µs on the host, instructions counted under qemu, a time estimated at a stated clock;
    the export's file size is not flash."""
    from rich.console import Console

    from ltc_edge.bench import report

    host = _row("cpu", latency={"1": {"p50_us": 3.5, "p99_us": 9.0, "throughput_steps_per_s": 2.8e5}})
    arm = _row("cortex-m4", "int8", instructions_per_step=10924.0, cycles_per_step=12345.0, clock_hz=168e6,
               est_step_us=12345.0 / 168.0, flash_bytes=2662, ram_bytes=716, file_bytes=27096)
    console = Console(width=120, record=True)
    console.print(report.terminal_table(_results([host, arm])))
    text = console.export_text()
    assert "…" not in text  # no header or figure cut
    for label in ("(host)", "p50 µs", "(qemu)", "instr/step", "est.", "µs/step", "MHz", "flash", "RAM",
                  "mse", "(windows)", "(streamed)", "not measurements"):
        assert label in text, label
    arm_line = next(line for line in text.splitlines() if "c/int8@cortex-m4" in line)
    for figure in ("10,924", "12,345", "168", "73.5", "2.6", "0.7", "0.25", "0.81"):
        assert figure in arm_line, (figure, arm_line)
    host_line = next(line for line in text.splitlines() if "c/fp32@cpu" in line)
    assert "41.7" in host_line and "3.5" in host_line  # the export's KiB, in the host table only
    md = report.markdown(_results([host, arm]), [])
    for label in ("p50 µs (host)", "instr/step (qemu)", "est. µs/step", "clock MHz", "flash bytes", "RAM bytes",
                  "mse (windows)", "mse (streamed)", "C source bytes"):
        assert label in md, label
    assert "| 2662 | 716 |" in md
    assert set(report.FIGURES) >= {"latency", "instructions_per_step", "est_step_us", "metric_streaming"}


def test_plots_note_says_why_there_are_none(tmp_path, ltc_file, monkeypatch):
    """Issue 29 item 9: every row skipped with matplotlib installed said `matplotlib missing`."""
    pytest.importorskip("matplotlib")
    from ltc_edge.bench import run

    monkeypatch.setattr(run, "cuda_status", lambda backend="torch": "no CUDA device (test)")
    r = runner.invoke(app, ["bench", ltc_file, "--backend", "torch", "--target", "cuda", "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "plots: none (every row was skipped)" in r.output and "matplotlib" not in r.output
    assert json.loads((tmp_path / "o" / "results.json").read_text())["plots_note"] == "every row was skipped"
    assert "Plots: none (every row was skipped)" in (tmp_path / "o" / "report.md").read_text()


def test_a_failed_row_says_its_whole_reason(tmp_path, ltc_file, monkeypatch):
    """Issue 29 item 16: int8-full failures were cut mid-word (300 characters); the reason is one
    whole line, however long."""
    from ltc_edge.bench import run

    reason = "LiteRT cannot prepare the converted model (" + "quantization scale " * 30 + ")\nnothing written"

    def fail(job):
        raise RuntimeError(reason)

    monkeypatch.setattr(run, "_run_worker", fail)
    res = run.run_bench([ltc_file], backends=["numpy"], batches=(1,), out=tmp_path / "o")
    assert res["rows"][0]["skipped"] == "RuntimeError: " + " ".join(reason.split())


def test_a_refused_streamed_run_keeps_the_row(tmp_path, monkeypatch):
    """The runtime refusing the streamed run (a state leaving its bounds over a long series) is
    reported beside the windowed metric, not a lost row."""
    from ltc_edge.bench import worker
    from ltc_edge.errors import RuntimeInputError
    from ltc_edge.nn import build_model, save

    path = save(build_model("ltc", 8, 10, units=6, seed=0), tmp_path / "m.safetensors")  # digits: 8 in, 10 out

    def refuse(job, artifact, task):
        raise RuntimeInputError("state left the bounds\nat step 412")

    monkeypatch.setattr(worker, "_streaming_metric", refuse)
    row = worker.run({"artifact": str(path), "backend": "numpy", "precision": "fp32", "target": "cpu",
                      "batches": [], "task": "digits", "task_options": {}})
    assert 0 <= row["metric"] <= 1 and "metric_streaming" not in row
    assert row["metric_streaming_error"] == "state left the bounds at step 412"


def test_plan_takes_precisions_per_backend():
    """The demo's form: each backend its own precisions (ExecuTorch fp32 only beside int8 rows);
    a backend missing from the dict plans no row."""
    from ltc_edge.bench.run import plan

    jobs = plan(["m.safetensors"], ["onnxruntime", "executorch", "tflite"],
                {"onnxruntime": ["fp32", "int8"], "executorch": ["fp32"]}, ["cpu"])
    assert sorted((j["backend"], j["precision"]) for j in jobs) == [
        ("executorch", "fp32"), ("onnxruntime", "fp32"), ("onnxruntime", "int8")]
