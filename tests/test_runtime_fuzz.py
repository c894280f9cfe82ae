"""Property tests over the runtime API (hypothesis): whatever x, dt, batch and options a caller
passes, a Controller either raises a one-line RuntimeInputError and changes nothing, or returns
the numpy reference step (F.model_step with NumpyOps) to 1e-5. An independent oracle says which
inputs are valid, so a wrong acceptance fails as surely as a wrong rejection.

Backends: numpy, and onnxruntime on the same model exported once per module (skipped when
torch, onnx or onnxruntime is missing)."""

import json
import os
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from ltc_edge.nn import build_model, save
from ltc_edge.nn import functional as F
from ltc_edge.runtime import (Controller, InputDtypeError, InputShapeError, ModelLoadError,
                              NonFiniteInputError, RuntimeInputError, StateBoundError, load)
from ltc_edge.runtime.controller import MAX_BATCH
from ltc_edge.runtime.numpy_backend import NumpyBackend

N_IN = 3
F32 = np.finfo(np.float32)
SETTINGS = settings(max_examples=120, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    d = tmp_path_factory.mktemp("fuzz")
    m = build_model("ltc", N_IN, units=6, output_size=2, seed=0)
    m.apply_constraints()
    path = save(m, d / "m.safetensors")
    raw = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    P = F.model_prepare_static(F.NumpyOps, raw, m.config)
    return {"model": m, "path": path, "dir": d, "cfg": m.config, "P": P, "ctrls": {}}


@pytest.fixture(scope="module")
def onnx_dir(model):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    from ltc_edge.export import get_exporter

    out = model["dir"] / "onnx"
    get_exporter("onnx")(model["model"], out, drift_steps=10)
    return out


def controller(model, backend, policy, src=None):
    """One controller per (backend, policy) for the module: the fuzz also covers reuse."""
    key = (backend, policy)
    if key not in model["ctrls"]:
        kw = {"model_file": model["path"]} if backend == "onnxruntime" else {}
        model["ctrls"][key] = load(src or model["path"], backend=backend, nonfinite=policy, **kw)
    return model["ctrls"][key]


# -- strategies --------------------------------------------------------------------------
FLOATS = st.one_of(st.floats(-3, 3, width=32), st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, -0.0, 1e38, -1e38, 1e39, 1e300, np.nan, np.inf, -np.inf, 1e-45]))
HUGE = st.floats(1e30, 1e38) | st.floats(-1e38, -1e30) | st.floats(1e-45, 1e-30)  # finite in float32
ODDS = st.sampled_from([True, True, True, False])  # 3 in 4 draws take the valid branch
ANY_SHAPE = hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=5)
DTYPES = st.sampled_from([np.float32, np.float64, np.float16, np.longdouble, np.int64, np.int8, np.uint8,
                          np.complex64, np.complex128, np.bool_, object, "U3"])


def _array(draw, shape, dtype, elements):
    a = draw(hnp.arrays(np.float64, shape, elements=elements))
    with np.errstate(all="ignore"):
        if np.dtype(dtype).kind in "iu":
            return np.nan_to_num(a, posinf=0, neginf=0).clip(-100, 100).astype(dtype)
        if np.dtype(dtype).kind == "c":
            return a.astype(dtype) + 0.5j
        return a.astype(dtype)


@st.composite
def xs(draw, batch):
    """x: mostly the right shape and a real dtype, else anything; sometimes as a list."""
    good_shape = [(batch, N_IN)] + ([(N_IN,)] if batch == 1 else [])
    shape = draw(st.sampled_from(good_shape) if draw(ODDS) else ANY_SHAPE)
    dtype = draw(st.sampled_from([np.float32, np.float64]) if draw(ODDS) else DTYPES)
    elements = draw(st.sampled_from([st.floats(-3, 3, width=32)] * 3 + [FLOATS, HUGE]))
    a = _array(draw, shape, dtype, elements)
    form = draw(st.sampled_from(["array", "array", "list", "ragged"]))
    if form == "list":
        return a.tolist()
    if form == "ragged" and a.ndim == 2 and a.shape[0] > 1 and a.shape[1] > 0:
        rows = a.tolist()
        return rows[:-1] + [rows[-1][:-1]]
    return a


@st.composite
def dts(draw, batch):
    """dt: None, Python numbers of every size, numpy scalars, and arrays/lists of any length."""
    kind = draw(st.sampled_from(["none", "float", "float", "int", "odd", "array", "array", "list"]))
    if kind == "none":
        return None
    if kind == "float":
        return draw(st.floats(0.01, 2.0) if draw(ODDS) else st.one_of(FLOATS, HUGE))
    if kind == "int":
        return draw(st.one_of(st.integers(-2, 3), st.sampled_from([10**38, 10**39, 10**400, -10**400])))
    if kind == "odd":
        return draw(st.sampled_from([True, False, 1 + 1j, "0.1", b"1", [0.1, [0.2]], np.float32(0.5),
                                     np.array(0.25), np.complex128(1), object()]))
    shape = draw(st.sampled_from([(batch,), (batch, 1)]) if draw(ODDS) else ANY_SHAPE)
    dtype = draw(st.sampled_from([np.float32, np.float64]) if draw(ODDS) else DTYPES)
    elements = draw(st.sampled_from([st.floats(0.01, 2.0)] * 3 + [FLOATS, HUGE]))
    a = _array(draw, shape, dtype, elements)
    return a.tolist() if kind == "list" else a


# -- the oracle: what the runtime's contract says about an input --------------------------
def expected_x(x, batch, policy, held):
    """(error class, None) or (None, x as float32 [B, in] after the nonfinite policy)."""
    try:
        a = np.asarray(x)
    except ValueError:
        return InputShapeError, None
    if a.dtype.kind not in "fiu":
        return InputDtypeError, None
    if not (a.shape == (batch, N_IN) or (batch == 1 and a.shape == (N_IN,))):
        return InputShapeError, None
    with np.errstate(all="ignore"):
        a32 = a.astype(np.float32).reshape(batch, N_IN)
    ok = np.isfinite(a32)
    if ok.all():
        return None, a32
    if policy == "raise":
        return NonFiniteInputError, None
    return None, np.where(ok, a32, held if policy == "hold" else 0).astype(np.float32)


def expected_dt(dt, batch):
    """(error class, None) or (None, dt as float32 [B, 1])."""
    if dt is None:
        return None, np.ones((batch, 1), np.float32)
    if isinstance(dt, (int, float)) and not isinstance(dt, bool):
        ok = float(F32.smallest_subnormal) <= dt <= float(F32.max)  # Python floats: exact for any int
        return (None, np.full((batch, 1), float(dt), np.float32)) if ok else (NonFiniteInputError, None)
    try:
        a = np.asarray(dt)
    except ValueError:
        return InputShapeError, None
    if a.dtype.kind not in "fiu":
        return InputDtypeError, None
    if a.size == 1:
        return expected_dt(float(a.reshape(())), batch)
    if a.shape not in ((batch,), (batch, 1)):
        return InputShapeError, None
    with np.errstate(all="ignore"):
        a32 = a.astype(np.float32).reshape(batch, 1)
    if not (np.isfinite(a32).all() and (a32 > 0).all()):
        return NonFiniteInputError, None
    return None, a32


def reference(model, x32, h, dt32):
    with np.errstate(all="ignore"):
        y, h_new = F.model_step(F.NumpyOps, model["P"], x32, h, dt32, model["cfg"])
    return np.asarray(y), np.asarray(h_new)


def out_of_bounds(ctrl, h0, h):
    """The reference state is NaN/inf or outside the LTC bounds (including its start)."""
    if not np.isfinite(h).all():
        return True
    lo, hi = ctrl.meta.bounds
    return bool(np.any(h < np.minimum(lo, h0)) or np.any(h > np.maximum(hi, h0)))


def check_step(model, ctrl, x, dt, policy):
    """One step against the oracle and the reference."""
    batch = ctrl.batch
    h0, held = ctrl.state.copy(), ctrl.backend.x.copy()
    err_x, x32 = expected_x(x, batch, policy, held)
    err_dt, dt32 = expected_dt(dt, batch)
    try:
        y = np.array(ctrl.step(x, dt), copy=True)
    except RuntimeInputError as e:
        event(f"rejected: {type(e).__name__}")  # --hypothesis-show-statistics shows the mix
        assert "\n" not in str(e) and len(str(e)) < 240, str(e)
        np.testing.assert_array_equal(ctrl.state, h0)  # nothing committed ...
        np.testing.assert_array_equal(ctrl.backend.x, held)  # ... not even the held inputs
        if isinstance(e, StateBoundError):  # valid input: the model itself left its bounds
            assert err_x is None and err_dt is None, (type(e), err_x, err_dt)
            assert out_of_bounds(ctrl, h0, reference(model, x32, h0, dt32)[1])
        else:
            assert type(e) in (err_x, err_dt), (type(e), err_x, err_dt, str(e))
        return False
    event("accepted")
    assert err_x is None and err_dt is None, f"accepted invalid input ({err_x}, {err_dt})"
    y_ref, h_ref = reference(model, x32, h0, dt32)
    assert np.isfinite(h_ref).all()
    np.testing.assert_allclose(y.reshape(batch, -1), y_ref, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(ctrl.state, h_ref, rtol=1e-5, atol=1e-5)
    return True


@st.composite
def episodes(draw):
    """A batch size, a nonfinite policy and 1-3 steps of fuzzed (x, dt)."""
    batch = draw(st.integers(1, 3))
    policy = draw(st.sampled_from(["raise", "raise", "hold", "zero"]))
    steps = draw(st.lists(st.tuples(xs(batch), dts(batch)), min_size=1, max_size=3))
    return batch, policy, steps


def run_episode(model, ctrl, batch, steps, policy):
    ctrl.reset(batch=batch)
    for x, dt in steps:
        check_step(model, ctrl, x, dt, policy)


# -- the properties ----------------------------------------------------------------------
@SETTINGS
@given(ep=episodes())
def test_numpy_steps_are_clean_errors_or_reference_results(model, ep):
    batch, policy, steps = ep
    run_episode(model, controller(model, "numpy", policy), batch, steps, policy)


@settings(SETTINGS, max_examples=80)
@given(ep=episodes())
def test_onnxruntime_steps_are_clean_errors_or_reference_results(model, onnx_dir, ep):
    batch, policy, steps = ep
    run_episode(model, controller(model, "onnxruntime", policy, onnx_dir), batch, steps, policy)


BATCHES = st.one_of(st.integers(-3, 6), st.sampled_from([MAX_BATCH + 1, 10**9, 10**400, -10**400]),
                    st.floats(allow_nan=True), st.sampled_from([True, False, "3", b"3", None, [2], np.int16(2),
                                                                np.float64(2.0), np.array(2), 2 + 0j]))


@settings(SETTINGS, max_examples=60)
@given(batch=BATCHES)
def test_reset_batch_is_an_integer_in_range_or_a_clean_error(model, batch):
    ctrl = controller(model, "numpy", "raise")
    ctrl.reset(batch=2)
    ctrl.step(np.ones((2, N_IN)), 0.1)
    h0 = ctrl.state.copy()
    valid = (isinstance(batch, (int, np.integer)) and not isinstance(batch, (bool, np.bool_))
             and 1 <= batch <= MAX_BATCH)
    try:
        ctrl.reset(batch=batch)
    except InputShapeError as e:
        assert not valid and "\n" not in str(e) and len(str(e)) < 240
        assert ctrl.batch == 2
        np.testing.assert_array_equal(ctrl.state, h0)  # a refused reset resets nothing
        return
    assert batch is None or valid, batch
    assert ctrl.batch == (2 if batch is None else batch) and np.all(ctrl.state == 0)


OPTIONS = st.fixed_dictionaries({
    "nonfinite": st.sampled_from(["raise", "hold", "zero", "Raise", "", None, 0, ["raise"]]),
    "state_check": st.sampled_from(["raise", "clip", "off", "on", None, True]),
    "state_tol": st.one_of(st.none(), st.floats(allow_nan=True, allow_infinity=True),
                           st.integers(-5, 10**30), st.sampled_from(["0.1", True, [0.1], 1j])),
})


@settings(SETTINGS, max_examples=60)
@given(opts=OPTIONS)
def test_controller_options_are_checked(model, opts):
    be = NumpyBackend.from_arrays(model["cfg"], {k: v.detach().numpy() for k, v in model["model"].state_dict().items()})
    tol = opts["state_tol"]
    valid = (opts["nonfinite"] in ("raise", "hold", "zero") and opts["state_check"] in ("raise", "clip", "off")
             and (tol is None or (isinstance(tol, (int, float)) and not isinstance(tol, bool)
                                  and 0 <= tol <= 1e6)))
    try:
        ctrl = Controller(be, **opts)
    except RuntimeInputError as e:
        assert not valid and "\n" not in str(e) and len(str(e)) < 240, (opts, str(e))
        return
    assert valid, opts
    assert ctrl.step(np.zeros(N_IN), 0.1).shape == (2,)


@pytest.mark.parametrize("lo, hi", [(float("nan"), 1.0), (-1.0, float("inf")), (2.0, 1.0), (-1e39, 1.0)])
def test_manifest_state_bounds_are_checked_at_load(model, onnx_dir, tmp_path, lo, hi):
    """NaN/inf or crossed bounds in an export's manifest would turn the bound guard off."""
    bad = tmp_path / "onnx"
    shutil.copytree(onnx_dir, bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    S = model["model"].state_size
    manifest["state_bounds"] = {"lo": [lo] * S, "hi": [hi] * S}
    (bad / "manifest.json").write_text(json.dumps(manifest))  # json writes NaN / Infinity
    with pytest.raises(ModelLoadError, match="state.bounds") as info:
        load(bad)
    assert "\n" not in str(info.value)


MAGNITUDES = st.one_of(st.floats(width=32), st.floats(-2e6, 2e6, width=32),  # any float32; around the limit
                       st.sampled_from([1e6, -1e6, 1000000.0625, 2e6, 3e38, -3e38, float("nan"), float("inf")]))


@settings(SETTINGS, max_examples=int(os.environ.get("LTC_FUZZ_EXAMPLES", 60)))
@given(name=st.sampled_from(["cell.sigma", "cell.mu", "cell.w", "cell.erev", "cell.sensory_sigma", "cell.cm",
                             "cell.gleak", "cell.vleak", "cell.input_w", "cell.output_b"]),
       value=MAGNITUDES, whole=st.booleans())
def test_parameter_magnitudes_are_refused_on_load_or_run_on_every_backend(model, tmp_path_factory, name, value, whole):
    """A model file with one parameter (or a whole tensor) set to any float32: the runtime
    refuses it on load exactly when it is NaN/inf or beyond MAX_PARAM_ABS (one ModelLoadError
    line, the oracle), and otherwise steps like the reference and generates C (every constant
    the backends fold is finite): no backend takes a file another refuses."""
    from safetensors.numpy import save_file

    from ltc_edge.codegen.c import generate
    from ltc_edge.nn.schema import MAX_PARAM_ABS

    raw = {k: v.detach().numpy().copy() for k, v in model["model"].state_dict().items()}
    if whole:
        raw[name][...] = value
    else:
        raw[name].flat[-1] = value
    path = tmp_path_factory.mktemp("mag") / "m.safetensors"
    save_file(raw, str(path), metadata={"ltc_edge": json.dumps(model["cfg"])})
    valid = bool(np.isfinite(value) and abs(np.float32(value)) <= MAX_PARAM_ABS)
    try:
        ctrl = load(path, backend="numpy", state_check="off")
    except ModelLoadError as e:
        assert not valid and "\n" not in str(e) and name in str(e), (value, str(e))
        event("refused on load")
        return
    assert valid, value
    generate(model["cfg"], raw)  # the C generator takes what the runtime took
    x, dt = np.full(N_IN, 0.3, np.float32), np.float32(0.1)
    P = F.model_prepare_static(F.NumpyOps, raw, model["cfg"])
    with np.errstate(all="ignore"):
        y_ref, h_ref = F.model_step(F.NumpyOps, P, x[None], np.zeros((1, 6), np.float32), dt, model["cfg"])
    try:
        y = ctrl.step(x, dt)
    except RuntimeInputError as e:  # a NaN state (0 * inf inside a saturated step): clean and uncommitted
        assert not np.isfinite(h_ref).all() and "\n" not in str(e), str(e)
        event("loaded, step refused")
        return
    event("loaded and stepped")
    np.testing.assert_allclose(y, y_ref[0], rtol=1e-5, atol=1e-5)
