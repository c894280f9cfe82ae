"""`ltc analyze robustness`: the perturbations are what they claim (time axis kept, dt sums
exactly, faults hit one channel for the window), and the analysis runs on a user CSV model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from ltc_edge.analyze import robustness as R
from ltc_edge.cli import app
from ltc_edge.train.taskdata import Split

CTX = R.Context(input_std=np.array([2.0, 0.5, 1.0], np.float32))


@pytest.fixture
def split():
    rng = np.random.default_rng(0)
    n, t = 5, 24
    dt = rng.uniform(0.01, 0.2, size=(n, t)).astype(np.float32)
    return Split(x=rng.normal(size=(n, t, 3)).astype(np.float32),
                 y=rng.normal(size=(n, t, 2)).astype(np.float32), dt=dt)


def test_drop_sums_dt_exactly_and_keeps_a_subsequence(split):
    (d,) = R.drop(split, 0.3, np.random.default_rng(1), CTX)
    assert d.x.shape[1] == split.x.shape[1] - round(0.3 * 23)
    np.testing.assert_allclose(d.dt.sum(1, dtype=np.float64), split.dt.sum(1, dtype=np.float64), rtol=1e-6)
    np.testing.assert_array_equal(d.x[:, -1], split.x[:, -1])  # the last sample is never dropped
    times, kept = R.sample_times(split.dt), R.sample_times(d.dt)
    for i in range(len(split)):  # every kept sample is an original one, at its original time
        idx = [int(np.argmin(np.abs(times[i] - k))) for k in kept[i]]
        np.testing.assert_allclose(times[i, idx], kept[i], rtol=1e-5)
        np.testing.assert_array_equal(d.x[i], split.x[i, idx])
        np.testing.assert_array_equal(d.y[i], split.y[i, idx])


@pytest.mark.parametrize("rate", [0.5, 2.0, 4.0])
def test_resample_keeps_the_time_axis(split, rate):
    (r,) = R.resample(split, rate, None, CTX)
    t_old, t_new = R.sample_times(split.dt), R.sample_times(r.dt)
    np.testing.assert_allclose(t_new[:, [0, -1]], t_old[:, [0, -1]], rtol=1e-5)  # same span
    if rate > 1:
        k = int(rate)
        assert r.x.shape[1] == (split.x.shape[1] - 1) * k + 1
        np.testing.assert_allclose(t_new[:, ::k], t_old, rtol=1e-5)
        np.testing.assert_allclose(r.x[:, ::k], split.x, atol=1e-6)  # the originals are still there
        np.testing.assert_allclose(r.x[:, 1], split.x[:, 0] + (split.x[:, 1] - split.x[:, 0]) / k, atol=1e-5)
        assert np.isnan(r.y[:, 1]).all() and not np.isnan(r.y[:, ::k]).any()  # only true targets scored
    else:
        np.testing.assert_array_equal(r.x, split.x[:, list(range(0, 24, 2)) + [23]])
    with pytest.raises(ValueError, match="integer"):
        R.resample(split, 1.5, None, CTX)


def test_jitter_changes_dt_within_range_only(split):
    (j,) = R.jitter(split, 0.3, np.random.default_rng(2), CTX)
    np.testing.assert_array_equal(j.x, split.x)
    ratio = j.dt / split.dt
    assert ratio.min() >= 0.7 - 1e-6 and ratio.max() <= 1.3 + 1e-6 and ratio.std() > 0.05


def test_noise_scales_with_each_feature_std(split):
    big = Split(x=np.zeros((200, 50, 3), np.float32), y=np.zeros((200, 50, 2), np.float32),
                dt=np.ones((200, 50), np.float32))
    (n,) = R.noise(big, 0.5, np.random.default_rng(3), CTX)
    np.testing.assert_allclose(n.x.reshape(-1, 3).std(0), 0.5 * CTX.input_std, rtol=0.03)


@pytest.mark.parametrize("fn", [R.stuck, R.zeroed])
def test_faults_hit_one_channel_for_the_window(split, fn):
    variants = fn(split, 0.25, np.random.default_rng(4), CTX)
    assert len(variants) == 3
    for ch, v in enumerate(variants):
        diff = np.any(v.x != split.x, axis=0)  # [T, C]
        assert not diff[:, [c for c in range(3) if c != ch]].any()
        rows = np.nonzero(np.any(v.x[:, :, ch] != split.x[:, :, ch], axis=0))[0]
        assert len(rows) <= 6  # 25% of 24 steps
        if fn is R.zeroed:
            assert (v.x[:, rows, ch] == 0).all()
        else:  # stuck: one value for the whole window, per row
            assert np.ptp(v.x[:, rows, ch], axis=1).max() == 0


@pytest.fixture(scope="module")
def csv_models(tmp_path_factory):
    """An LTC and an LSTM trained (briefly) on a user CSV the other tests never see."""
    tmp_path = tmp_path_factory.mktemp("rob-csv")
    rng = np.random.default_rng(5)
    t = np.cumsum(rng.uniform(0.02, 0.06, 500))
    force = np.sin(1.3 * t) + 0.3 * rng.normal(size=t.size)
    pos = np.convolve(force, np.exp(-np.arange(40) * 0.1), mode="full")[: t.size] * 0.05
    lines = ["time,force,pos"] + [f"{a:.5f},{b:.5f},{c:.5f}" for a, b, c in zip(t, force, pos)]
    data = tmp_path / "osc.csv"
    data.write_text("\n".join(lines) + "\n")
    runner = CliRunner()
    for kind in ("ltc", "lstm"):
        r = runner.invoke(app, ["train", "--task", "csv", "--data", str(data), "--inputs", "force", "--targets", "pos",
                                "--time", "time", "--seq-len", "20", "--model", kind, "--units", "6", "--epochs", "2",
                                "--out", str(tmp_path / f"{kind}.safetensors")])
        assert r.exit_code == 0, r.output
    return tmp_path


def test_robustness_analysis_on_a_user_csv_model(csv_models, tmp_path):
    runner = CliRunner()
    models = f"{csv_models / 'ltc.safetensors'},{csv_models / 'lstm.safetensors'}"
    out = tmp_path / "rob"
    r = runner.invoke(app, ["analyze", "robustness", models, "--seeds", "2", "--sequences", "12", "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "robustness.json").read_text())
    assert res["schema"] == R.SCHEMA and res["task"] == "csv" and res["metric"] == "mse" and res["seeds"] == [0, 1]
    assert [m["kind"] for m in res["models"]] == ["ltc", "lstm"]
    for m in res["models"]:
        assert np.isfinite(m["clean"]) and set(m["perturbations"]) == set(R.PERTURBATIONS)
        for name, rows in m["perturbations"].items():
            assert [row["level"] for row in rows] == list(R.PERTURBATIONS[name].levels)
            for row in rows:
                assert len(row["values"]) == 2 and row["mean"] == pytest.approx(np.mean(row["values"]))
                assert row["relative"] == pytest.approx(row["mean"] / m["clean"])
    ltc = res["models"][0]
    assert ltc["clean_state"]["checked"]  # an LTC's states are checked against its bounds ...
    assert ltc["clean_state"]["neurons_outside"] == []  # ... which hold the reset state (issue 29 #12)
    assert ltc["perturbations"]["noise"][-1]["mean"] != ltc["clean"]
    lstm_jitter = res["models"][1]["perturbations"]["jitter"]
    assert all(row["mean"] == pytest.approx(res["models"][1]["clean"]) for row in lstm_jitter)  # ignores dt
    assert (out / "robustness.png").stat().st_size > 10_000 and "## drop" in (out / "robustness.md").read_text()


def test_robustness_missing_model_is_a_one_line_error(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["analyze", "robustness", str(Path(tmp_path) / "missing.safetensors"), "--out",
                            str(tmp_path / "o")])
    assert r.exit_code != 0 and "Traceback" not in r.output


def test_closed_loop_perturbations_act_on_the_plant():
    from ltc_edge.train.pendulum import Expert

    expert, std = Expert(), np.array([0.7, 0.7, 2.0], np.float32)
    clean = R.episode_return(expert, 3, "clean", 1.0, std)
    assert R.episode_return(expert, 3, "mass", 1.0, std) == clean  # nominal level: the same episode
    assert R.episode_return(expert, 3, "obs_noise", 0.0, std) == clean
    assert R.episode_return(expert, 3, "delay", 0, std) == clean
    assert R.episode_return(expert, 3, "delay", 4, std) < clean - 100  # 0.2 s late: the swing-up fails
    assert R.episode_return(expert, 3, "length", 1.2, std) != clean


def test_closed_loop_sweep_compares_deployed_models_with_the_expert(tmp_path):
    from ltc_edge.nn import build_model, save
    from ltc_edge.runtime import load

    path = save(build_model("ltc", 3, 1, units=6, seed=0), tmp_path / "p.safetensors")
    m = R.Deployed(name="p", path=str(path), backend="numpy", ctrl=load(path, "numpy", state_check="off"))
    cl = R.closed_loop_sweep([m], np.ones(3, np.float32), seeds=2)
    assert set(cl["returns"]) == {"expert", "p"} and cl["seeds"] == [0, 1]
    for name, table in cl["returns"].items():
        assert set(table) == {"clean", *R.CLOSED_LOOP}
        for pert, rows in table.items():
            assert len(rows) == (1 if pert == "clean" else len(R.CLOSED_LOOP[pert]))
            assert all(len(r["values"]) == 2 and r["mean"] <= 0 for r in rows)
    assert cl["returns"]["expert"]["clean"][0]["mean"] > cl["returns"]["p"]["clean"][0]["mean"]  # untrained
    assert "### delay" in "\n".join(R.closed_loop_markdown(cl))


def test_bench_robustness_covers_each_backend_and_precision(csv_models, tmp_path):
    out = tmp_path / "bench"
    r = CliRunner().invoke(app, ["bench", str(csv_models / "ltc.safetensors"), "--backend", "numpy,onnxruntime",
                                 "--precision", "fp32,int8", "--batch", "1", "--seconds", "0.05", "--robustness",
                                 "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "robustness" / "robustness.json").read_text())
    names = [(m["name"], m["backend"], m["precision"]) for m in res["models"]]
    assert names == [("ltc", "numpy", "fp32"), ("ltc/onnx-fp32", "onnxruntime", "fp32"),
                     ("ltc/onnx-int8", "onnxruntime", "int8")]
    clean = [m["clean"] for m in res["models"]]
    assert clean[0] == pytest.approx(clean[1], rel=1e-3) and clean[2] != clean[0]  # int8 is its own model


def test_robustness_refuses_a_task_of_another_input_size(csv_models, tmp_path):
    r = CliRunner().invoke(app, ["analyze", "robustness", str(csv_models / "ltc.safetensors"), "--task", "digits",
                                 "--out", str(tmp_path / "o")])
    lines = [ln for ln in r.output.splitlines() if ln.strip()]
    assert r.exit_code == 1 and len(lines) == 1 and "digits has 8 inputs" in lines[0], r.output


def test_models_of_the_same_file_name_keep_apart(tmp_path):
    """model.safetensors of two sweep trials: each named with its folder, not both 'model'."""
    from ltc_edge.analyze.analyses import _deploy
    from ltc_edge.nn import build_model, save

    files = []
    for kind in ("ltc", "lstm"):
        (tmp_path / kind).mkdir()
        files.append(str(save(build_model(kind, 3, units=4, output_size=2), tmp_path / kind / "model.safetensors")))
    other = str(save(build_model("gru", 3, units=4, output_size=2), tmp_path / "gru4.safetensors"))
    names = [m.name for m in _deploy([*files, other], ["numpy"])]
    assert names == ["ltc/model", "lstm/model", "gru4"]


def _c_floats(source: str, name: str) -> np.ndarray:
    """A `... NAME[n] = {...};` float array from generated C."""
    body = source.split(f"{name}[", 1)[1].split("{", 1)[1].split("}", 1)[0]
    return np.array([float(v.strip().rstrip("f")) for v in body.split(",")])


def test_one_state_bound_for_every_consumer(csv_models, tmp_path):
    """Issue 29 #12: a trained LTC whose reset state 0 lies outside a neuron's potentials (the
    old manifest lower bound > 0): the guard, manifest, C STATE_LO/HI, `analyze bounds` and
    robustness all use F.ltc_state_bounds, which holds 0, and a long run from reset stays in."""
    from ltc_edge import artifact
    from ltc_edge.analyze import bounds as B
    from ltc_edge.codegen import c as cgen
    from ltc_edge.nn import functional as F
    from ltc_edge.nn import read
    from ltc_edge.runtime import load

    path = csv_models / "ltc.safetensors"
    config, raw = read(path)
    potentials = F.ltc_bounds({k[5:]: v for k, v in raw.items() if k.startswith("cell.")}, config["cell"])
    assert (potentials[0] > 0).any() or (potentials[1] < 0).any()  # the case the issue hit
    lo, hi = F.ltc_state_bounds(config, raw)[0]
    assert (lo <= 0).all() and (hi >= 0).all()
    np.testing.assert_array_equal(lo, np.minimum(potentials[0], 0.0))
    manifest = artifact.model_fields(config, raw)["state_bounds"]
    np.testing.assert_array_equal(manifest["lo"], lo) and np.testing.assert_array_equal(manifest["hi"], hi)
    source = cgen.generate(config, raw)["files"]["ltc_model.c"]
    margin = F.bound_margin(lo, hi)
    np.testing.assert_allclose(_c_floats(source, "STATE_LO"), lo - margin, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(_c_floats(source, "STATE_HI"), hi + margin, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(_c_floats(source, "ltc_model_state_lo"), lo, rtol=1e-6, atol=1e-7)  # the header's
    np.testing.assert_allclose(_c_floats(source, "ltc_model_state_hi"), hi, rtol=1e-6, atol=1e-7)
    ctrl = load(path, "numpy", batch=4, state_check="raise")  # the guard would raise on a false alarm
    np.testing.assert_array_equal(ctrl.meta.bounds[0], lo)
    np.testing.assert_allclose(ctrl.state_bounds[0][0], lo - margin, rtol=1e-6)
    rng = np.random.default_rng(1)
    x = (3 * rng.normal(size=(4, 1500, 1))).astype(np.float32)
    dt = rng.uniform(0.01, 2.0, size=(4, 1500)).astype(np.float32)
    report = B.check(config, raw, x, dt)
    assert report["ok"], report["violations"]
    assert [n["state_bound"] for n in report["neurons"]] == [[float(a), float(b)] for a, b in zip(lo, hi)]
    _, state = R.run_split(ctrl, Split(x=x, y=np.zeros((4, 1500, 1), np.float32), dt=dt))
    assert state["checked"] and state["neurons_outside"] == [] and state["outside_fraction"] == 0.0


def test_robustness_runs_a_model_file_on_every_backend_name(csv_models, tmp_path):
    """Issue 29 #14: --backend onnxruntime (or its alias onnx) on a .safetensors ran the file
    through onnxruntime (a protobuf error); now an fp32 export of it runs, as in bench and eval."""
    out = tmp_path / "rob"
    r = CliRunner().invoke(app, ["analyze", "robustness", str(csv_models / "ltc.safetensors"), "--backend", "ort,np",
                                 "--seeds", "1", "--sequences", "2", "--out", str(out)])
    assert r.exit_code == 0, r.output
    res = json.loads((out / "robustness.json").read_text())
    assert [m["backend"] for m in res["models"]] == ["onnxruntime", "numpy"]
    assert res["models"][0]["clean"] == pytest.approx(res["models"][1]["clean"], rel=1e-4)


def _result(rows: dict, higher_is_better=False, metric="mse", kinds=("ltc", "lstm")) -> dict:
    """A sweep result: rows {model: {perturbation: [(mean, std) per level]}}, clean 1.0 each."""
    models = [{"name": name, "kind": kind, "backend": "numpy", "precision": "fp32", "clean": 1.0,
               "clean_state": {"checked": False, "outside_fraction": 0.0, "neurons_outside": []},
               "perturbations": {p: [{"level": i + 1, "mean": mean, "std": std, "values": [mean], "relative": mean,
                                      "state": {"checked": False, "outside_fraction": 0.0, "neurons_outside": []}}
                                     for i, (mean, std) in enumerate(levels)] for p, levels in per.items()}}
              for (name, per), kind in zip(rows.items(), kinds)]
    names = list(next(iter(rows.values())))
    return {"models": models, "levels": {p: [1, 2] for p in names}, "units": {p: "u" for p in names},
            "seeds": [0, 1], "metric": metric, "higher_is_better": higher_is_better}


def test_verdict_says_which_model_degrades_least_and_which_scores_best():
    """Issue 29 #15: ratios favour one model, absolute error the other: the verdict says both."""
    res = _result({"ltc": {"noise": [(1.0, 0.0), (1.1, 0.01)], "drop": [(1.0, 0.0), (1.3, 0.0)]},
                   "lstm": {"noise": [(1.0, 0.0), (1.5, 0.02)], "drop": [(1.0, 0.0), (1.2, 0.0)]}})
    res["models"][1]["clean"] = 0.5  # the LSTM is more accurate: its absolute error is lower throughout
    for row in res["models"][1]["perturbations"]["noise"] + res["models"][1]["perturbations"]["drop"]:
        row["mean"] *= 0.5
    lines = R.verdict(res)
    assert lines[0] == ("- noise: ltc degrades least relative to its clean score (ltc 1.10x, lstm 1.50x); "
                        "lstm has the lowest mse under it (lstm 0.75, ltc 1.1)")
    assert lines[1].startswith("- drop: lstm is the more robust: it degrades least (lstm 1.20x, ltc 1.30x)")
    assert lines[2:] == ["- overall, degrades least: ltc under 1 of 2, lstm under 1 of 2 perturbations",
                         "- overall, has the lowest mse: lstm under 2 of 2 perturbations"]
    assert "## Verdict" in R.markdown(res) and lines[0] in R.markdown(res)


def test_verdict_for_accuracy_and_ties():
    res = _result({"a": {"noise": [(0.9, 0.0), (0.8, 0.0)]}, "b": {"noise": [(0.9, 0.0), (0.801, 0.0)]}},
                  higher_is_better=True, metric="accuracy")
    line = R.verdict(res)[0]  # 0.80x and 0.80x print the same: a tie, not a winner by rounding noise
    assert line == ("- noise: no model degrades less than another (b 0.80x, a 0.80x); "
                    "b has the highest accuracy under it (b 0.801, a 0.8)")


def test_spreads_below_float_rounding_print_as_zero():
    assert R.spread(0.04364, 2.8e-17) == "± 0" and R.spread(0.0, 0.0) == "± 0"
    assert R.spread(0.05336, 0.00017) == "± 0.00017" and R.spread(0.0457, 6.1e-05) == "± 6.1e-05"
    md = R.markdown(_result({"ltc": {"jitter": [(0.04364, 2.8e-17), (0.05, 0.0012)]},
                             "lstm": {"jitter": [(0.04364, 0.0), (0.05, 0.0)]}}))
    assert "e-17" not in md and "0.04364 ± 0 (0.04x)" in md and "0.05 ± 0.0012" in md


def test_robustness_plots_use_the_bench_colour_of_each_cell_kind():
    from ltc_edge.plots import COLORS

    models = [{"kind": "ltc"}, {"kind": "lstm"}, {"kind": "ltc"}, {"kind": "mystery"}]
    styles = R.line_styles(models)
    assert [s["color"] for s in styles] == [COLORS["ltc"], COLORS["lstm"], COLORS["ltc"], "gray"]
    assert (styles[0]["ls"], styles[0]["marker"]) != (styles[2]["ls"], styles[2]["marker"])  # two LTCs apart
