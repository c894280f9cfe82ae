"""Calibration and drift data at export (issue 29 items 4, 6, 7 and fuzz 1, 2): a set without
sequences or with a non-positive / non-finite dt is refused in one line, a non-finite drift never
passes a budget, int8 never calibrates on made-up inputs, the int8 C step folds in the data's dt
and says so, and every place that states dt says its unit and the training dt."""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from ltc_edge.cli import app
from ltc_edge.codegen import c as cgen
from ltc_edge.export import drift as D
from ltc_edge.nn import build_model, save

runner = CliRunner()
N_IN = 2


@pytest.fixture(scope="module")
def model():
    m = build_model("ltc", N_IN, 1, wiring="auto-ncp", units=6, seed=0)
    m.apply_constraints()
    return m


@pytest.fixture(scope="module")
def model_file(model, tmp_path_factory):
    """A model file that stores no training task (as an ncps import or a bare build_model)."""
    return save(model, tmp_path_factory.mktemp("cal") / "m.safetensors")


def _x(n=6, t=40, seed=0):
    return np.random.default_rng(seed).standard_normal((n, t, N_IN)).astype(np.float32)


def _one_line_error(args, *wanted):
    res = runner.invoke(app, [str(a) for a in args])
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert res.exit_code == 1 and len(lines) == 1 and lines[0].startswith("error:"), res.output
    assert "Traceback" not in res.output
    for w in wanted:
        assert w in lines[0], lines[0]
    return lines[0]


# -------------------------------------------------------------------------- fuzz 1 and 2


DT_CASES = {"negative": -1.0, "zero": 0.0, "nan": np.nan, "inf": np.inf}


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
@pytest.mark.parametrize("case", ["negative", "nan", "no sequences", "no steps"])
def test_cli_refuses_bad_calibration_sets(model_file, tmp_path, fmt, case):
    if fmt == "tflite":
        pytest.importorskip("ai_edge_litert")
    x = {"no sequences": np.zeros((0, 10, N_IN), np.float32), "no steps": np.zeros((3, 0, N_IN), np.float32)}.get(case)
    arrays = {"x": x} if x is not None else {"x": _x(), "dt": np.full((6, 40), DT_CASES[case], np.float32)}
    np.savez(tmp_path / "cal.npz", **arrays)
    precision = "int8" if fmt == "onnx" else "int8-full"
    _one_line_error(["export", model_file, "-f", fmt, "--precision", precision, "--calibration", tmp_path / "cal.npz",
                     "--out", tmp_path / "e"], "cal.npz", "dt must be positive and finite" if x is None else "at least one")
    assert not (tmp_path / "e").exists()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(n=st.integers(0, 4), t=st.integers(0, 5), dt=st.one_of(st.none(), st.sampled_from([-1.0, 0.0, 1e-3, 0.5, 3.0]),
                                                             st.floats(allow_nan=True, allow_infinity=True, width=32)))
def test_calibration_npz_is_clean_or_refused(model, tmp_path_factory, n, t, dt):
    """Any x shape and dt: a one-line ValueError, or data with >= 1 sequence of >= 1 step in both
    sets and every dt positive and finite."""
    path = tmp_path_factory.mktemp("fz") / "c.npz"
    arrays = {"x": np.zeros((n, t, N_IN), np.float32)}
    if dt is not None:
        arrays["dt"] = np.full((n, t), dt, np.float32)
    np.savez(path, **arrays)
    try:
        data = D.load_reference(str(path), model.config)
    except ValueError as e:
        assert "\n" not in str(e) and str(path) in str(e)
        return
    for x, d in ((data.calib_x, data.calib_dt), (data.x, data.dt)):
        assert x.shape[0] >= 1 and x.shape[1] >= 1
        assert d is not None and np.isfinite(d).all() and (d > 0).all()
    assert n >= 1 and t >= 1 and (dt is None or (np.isfinite(dt) and dt > 0))


def test_non_finite_drift_never_passes_a_budget(model):
    """The chained drift run goes non-finite while the task metric (run separately) stays exact:
    over budget all the same, for every precision's budget."""
    data = D.load_reference(None, model.config)
    ref = D.torch_runner(model)
    calls = []

    def runner_inf_once(x, h, dt):
        calls.append(1)
        y, h2 = ref(x, h, dt)
        return (np.full_like(y, np.inf) if len(calls) == 1 else y), h2

    for precision in ("fp32", "fp16", "int8"):
        calls.clear()
        out = D.drift_check(model, runner_inf_once, data, precision, steps=50)
        assert out["max_abs"] == np.inf and out["metric"]["rel_delta"] == 0.0
        assert not out["within_budget"] and "non-finite outputs" in out["over_budget"][0]


# -------------------------------------------------------------------------- item 4


@pytest.mark.parametrize("fmt", ["c", "onnx", "tflite"])
def test_int8_without_real_data_is_refused(model_file, tmp_path, fmt):
    _one_line_error(["export", model_file, "-f", fmt, "--precision", "int8", "--out", tmp_path / "e"],
                    "stores no training task", "--calibration")
    assert not (tmp_path / "e").exists()


def test_int8_c_python_api_needs_calibration(model, tmp_path):
    from ltc_edge.export import get_exporter

    with pytest.raises(ValueError, match="int8 needs calibration data"):
        get_exporter("c")(model, tmp_path / "e", precision="int8")


def test_synthetic_drift_data_is_said_in_the_card():
    from ltc_edge.export.card import drift_summary

    drift = {"within_budget": True, "max_abs": 1e-6, "steps": 1000, "data": "synthetic"}
    assert drift_summary(drift).endswith("on synthetic inputs (no real data given)")
    assert drift_summary({**drift, "data": "task:cheetah"}).endswith("on task:cheetah")


# -------------------------------------------------------------------------- item 6


@pytest.mark.skipif(cgen.find_cc() is None, reason="no host C compiler")
def test_int8_c_folds_in_the_calibration_dt(model, tmp_path):
    from ltc_edge.export import get_exporter

    x = _x()
    np.savez(tmp_path / "nodt.npz", x=x)
    np.savez(tmp_path / "dt.npz", x=x, dt=np.full(x.shape[:2], 0.5, np.float32))
    rng = np.random.default_rng(1)
    np.savez(tmp_path / "var.npz", x=x, dt=rng.uniform(0.4, 0.8, x.shape[:2]).astype(np.float32))
    exp = get_exporter("c")
    plain = exp(model, tmp_path / "a", precision="int8", calibration=str(tmp_path / "nodt.npz"))
    given = exp(model, tmp_path / "b", precision="int8", calibration=str(tmp_path / "dt.npz"))
    assert plain["fixed_dt"] == 1.0 and "ncps default of 1.0 per step" in plain["fixed_dt_source"]
    assert given["fixed_dt"] == 0.5 and given["default_dt"] == 0.5
    assert given["fixed_dt_source"] == f"the calibration data's dt ({tmp_path / 'dt.npz'})"
    assert (tmp_path / "a" / "ltc_model.c").read_bytes() != (tmp_path / "b" / "ltc_model.c").read_bytes()
    assert " * dt: fixed at export (5.0e-01f)" in (tmp_path / "b" / "ltc_model.h").read_text()
    assert "fixed dt 0.5 baked into the graph, taken from the calibration data's dt" in \
        (tmp_path / "b" / "MODEL_CARD.md").read_text()
    # a varying dt: its median, and the range said
    dt, source = D.fold_dt(D.load_reference(str(tmp_path / "var.npz"), model.config), model.config)
    v = np.load(tmp_path / "var.npz")["dt"]
    assert dt == pytest.approx(float(np.median(v)), rel=1e-6) and "varies from 0.4" in source
    assert D.fold_dt(D.load_reference(str(tmp_path / "dt.npz"), model.config), model.config, 0.25) == \
        (0.25, "--fixed-dt")


# -------------------------------------------------------------------------- item 7


def test_dt_unit_stated_where_no_training_dt_is_recorded(model, model_file):
    from ltc_edge.nn.modelfile import describe
    from ltc_edge.nn.schema import dt_note

    note = describe(model_file)["dt_unit"]
    assert note == dt_note(model.config) and "not recorded" in note and "1.0 per step" in note
    assert describe(model_file)["default_dt"] == 1.0
    raw = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    header = cgen.header_facts(model.config, raw, "ltc_model")[0]
    assert " * dt: an input, in the unit the model was trained with; LTC_MODEL_DEFAULT_DT = 1.0e+00f" in header
    assert f" * training dt: {note}" in header
    res = runner.invoke(app, ["info", str(model_file)])
    assert res.exit_code == 0 and "dt unit" in res.output and "ncps model" in res.output


def test_dt_note_by_what_the_model_records():
    from ltc_edge.nn.schema import dt_note

    base = {"input_size": 1}
    assert dt_note({**base, "task": {"dt": {"median": 1.0, "min": 1.0, "max": 1.0}}}) == "1 per step"
    csv = {"name": "csv", "options": {"time": "t"}, "dt": {"median": 0.035, "min": 0.03, "max": 0.04}}
    assert dt_note({**base, "task": csv}) == "0.035 (median; 0.03 to 0.04), in the unit of the time column t"
    assert dt_note({**base, "task": {"name": "pendulum", "dt": {"median": 0.05}}}) == \
        "0.05 in the training data time unit"


def test_from_ncps_records_the_training_dt(tmp_path):
    ncps_torch = pytest.importorskip("ncps.torch")
    ncps_wirings = pytest.importorskip("ncps.wirings")
    from ltc_edge.nn import from_ncps, load
    from ltc_edge.nn.modelfile import describe
    from ltc_edge.nn.schema import default_dt

    ref = ncps_torch.LTC(3, ncps_wirings.AutoNCP(8, 2, seed=0))
    m = from_ncps(ref)
    assert m.config["task"] == {"dt": {"median": 1.0, "min": 1.0, "max": 1.0, "mean": 1.0, "std": 0.0}}
    path = save(from_ncps(ref, dt=0.005), tmp_path / "n.safetensors")  # the schema takes a task of a dt alone
    assert default_dt(load(path).config) == 0.005
    assert describe(path)["dt_unit"] == "0.005 in the training data time unit" and describe(path)["task"] is None
    for bad in (0, -1.0, float("nan"), float("inf"), True):
        with pytest.raises(ValueError, match="from_ncps: dt must be a positive number"):
            from_ncps(ref, dt=bad)
