"""Runtime: load/reset/step on the numpy backend (traced F.model_step, allocation-free),
the shared guards, batch handling and clear errors on bad files and inputs."""

import tracemalloc

import numpy as np
import pytest

from ltc_edge.nn import build_model, save
from model_cases import make_case
from ltc_edge.nn import functional as F
from ltc_edge.runtime import (BACKENDS, Controller, InputDtypeError, InputShapeError, ModelLoadError,
                              NonFiniteInputError, RuntimeInputError, StateBoundError, load)
from ltc_edge.runtime.numpy_backend import NumpyBackend

NORM = {"input_mean": [0.1, -0.2, 0.3, 0.0, 0.5], "input_std": [1.5, 0.5, 2.0, 1.0, 0.8],
        "output_mean": None, "output_std": None}

CASES = {
    "ltc-ncp": ("ltc", dict(wiring="auto-ncp", units=19, output_size=4)),
    "ltc-rk4": ("ltc", dict(units=6, solver="rk4", ode_unfolds=3)),
    "ltc-softplus": ("ltc", dict(units=6, implicit_param_constraints=True, output_mapping="linear")),
    "cfc": ("cfc", dict(units=12, backbone_units=16)),
    "cfc-pure": ("cfc", dict(units=8, mode="pure", backbone_layers=2, backbone_units=16)),
    "cfc-ncp": ("cfc", dict(wiring="auto-ncp", units=16, output_size=4)),
    "ctrnn": ("ctrnn", dict(units=8)),
    "node": ("node", dict(units=8)),
    "lstm": ("lstm", dict(units=8, output_size=3)),
    "gru": ("gru", dict(units=8, output_size=2, normalization=NORM)),
}


def make(tmp_path, name, seed=0):
    return make_case(CASES, tmp_path, name, seed)


def raw_of(model):
    return {k: v.detach().numpy() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("name", list(CASES))
def test_numpy_runtime_equals_functional(tmp_path, name):
    """The traced replay equals F.model_step with NumpyOps (the one copy of the math) to 1e-6,
    over a sequence with per-row dt, batch 3. The runtime runs the synapse-list form of the
    LTC constants (model_prepare_static; equal to the dense form, see test_cells)."""
    model, path = make(tmp_path, name)
    cfg, raw = model.config, raw_of(model)
    P = F.model_prepare_static(F.NumpyOps, raw, cfg)
    ctrl = load(path, batch=3)
    assert ctrl.backend_name == "numpy"
    rng = np.random.default_rng(1)
    h = np.zeros((3, F.state_size(cfg)), np.float32)
    worst = 0.0
    for _ in range(60):
        x = rng.standard_normal((3, 5)).astype(np.float32)
        dt = rng.uniform(0.05, 1.0, (3, 1)).astype(np.float32)
        y_ref, h = F.model_step(F.NumpyOps, P, x, h, dt, cfg)
        y = ctrl.step(x, dt)
        worst = max(worst, float(np.abs(y - y_ref).max()), float(np.abs(ctrl.state - h).max()))
    assert worst <= 1e-6, worst
    # the model really moved (a test that cannot fail otherwise)
    assert float(np.abs(h).max()) > 1e-3


def test_numpy_runtime_matches_torch_model(tmp_path):
    import torch

    model, path = make(tmp_path, "ltc-ncp")
    ctrl = load(path)
    xs = np.random.default_rng(2).standard_normal((40, 5)).astype(np.float32)
    with torch.no_grad():
        y_t, _ = model(torch.tensor(xs[None]), dt=0.3)
    ys = ctrl.run(xs, dt=0.3)
    assert np.abs(ys - y_t[0].numpy()).max() <= 1e-5


@pytest.mark.parametrize("name", ["ltc-ncp", "cfc", "lstm", "gru", "ctrnn"])
def test_step_allocates_nothing(tmp_path, name):
    """After warm-up a step allocates no arrays: net 0 and a peak far below one array of the
    batch (batch 64: one [64, 19, 19] float32 buffer alone would be 92 KB)."""
    _, path = make(tmp_path, name)
    ctrl = load(path, batch=64)
    x = np.random.default_rng(0).standard_normal((64, 5)).astype(np.float32)
    dt = np.full((64, 1), 0.2, np.float32)
    for _ in range(5):
        ctrl.step(x, dt)
    tracemalloc.start()
    try:
        # a first traced window absorbs one-off allocations (numpy/contextvar caches seen once in
        # the full suite); any allocation per step still shows 200-fold in the measured window
        for _ in range(200):
            ctrl.step(x, dt)
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(200):
            ctrl.step(x, dt)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert after - before <= 256, after - before
    assert peak - before <= 2048, peak - before  # numpy's reduce/matmul bookkeeping only
    one_state = 64 * ctrl.state_size * 4
    assert peak - before < one_state


def test_single_row_and_float_dt_allocate_nothing(tmp_path):
    _, path = make(tmp_path, "ltc-ncp")
    ctrl = load(path)
    x = np.ones(5, np.float64)  # float64 observations are cast into the float32 buffer
    for _ in range(3):
        ctrl.step(x, 0.1)
    tracemalloc.start()
    try:
        for _ in range(200):  # one-off allocations land here (see test_step_allocates_nothing)
            ctrl.step(x, 0.1)
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        for _ in range(200):
            y = ctrl.step(x, 0.1)
        after, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert y.shape == (4,)
    assert after - before <= 256 and peak - before <= 2048


def test_reset_state_and_batch(tmp_path):
    model, path = make(tmp_path, "gru")
    ctrl = load(path)
    x = np.linspace(-1, 1, 5).astype(np.float32)
    y1 = ctrl.step(x).copy()
    y2 = ctrl.step(x).copy()
    assert not np.allclose(y1, y2)  # the state carries over
    ctrl.reset()
    assert np.all(ctrl.state == 0)
    np.testing.assert_array_equal(ctrl.step(x), y1)
    # the returned y is a read-only view, overwritten by the next step
    with pytest.raises(ValueError):
        ctrl.step(x)[0] = 1.0
    # batch: rows are independent and equal the single-row run
    ctrl.reset(batch=4)
    ys = ctrl.step(np.stack([x] * 4))
    assert ys.shape == (4, 2) and np.allclose(ys, y1[None], atol=1e-6)
    with pytest.raises(InputShapeError, match="reset\\(batch=2\\)"):
        ctrl.step(np.zeros((2, 5)))
    # setting the state
    ctrl.reset(batch=1)
    ctrl.state = np.full(8, 0.5)
    assert np.allclose(ctrl.state, 0.5)
    with pytest.raises(InputShapeError):
        ctrl.state = np.zeros(7)


def test_dt_handling(tmp_path):
    _, path = make(tmp_path, "ltc-ncp")
    a, b = load(path, batch=2), load(path, batch=2)
    x = np.random.default_rng(0).standard_normal((2, 5))
    ya = a.step(x, dt=np.array([0.1, 0.7])).copy()
    b.reset(batch=1)
    r0 = b.step(x[0], 0.1).copy()
    b.reset()
    r1 = b.step(x[1], 0.7).copy()
    np.testing.assert_allclose(ya, np.stack([r0, r1]), atol=1e-6)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(NonFiniteInputError, match="dt"):
            a.step(x, dt=bad)
    with pytest.raises(InputShapeError, match="dt"):
        a.step(x, dt=np.ones(3))
    with pytest.raises(InputDtypeError, match="dt"):
        a.step(x, dt=np.array(["a", "b"]))


def test_nonfinite_policies(tmp_path):
    _, path = make(tmp_path, "ltc-ncp")
    x_good = np.array([0.5, -0.5, 0.2, 0.1, 0.0], np.float32)
    x_bad = x_good.copy()
    x_bad[1] = np.nan
    ctrl = load(path)
    ctrl.step(x_good)
    state = ctrl.state.copy()
    with pytest.raises(NonFiniteInputError, match="NaN or inf"):
        ctrl.step(x_bad)
    np.testing.assert_array_equal(ctrl.state, state)  # nothing committed
    # hold: a NaN entry keeps its last good value -> same as stepping the good input again
    ref = load(path)
    ref.step(x_good)
    y_ref = ref.step(x_good).copy()
    hold = load(path, nonfinite="hold")
    hold.step(x_good)
    np.testing.assert_allclose(hold.step(x_bad), y_ref, atol=1e-7)
    # zero: a NaN entry becomes 0
    x_zero = x_good.copy()
    x_zero[1] = 0
    ref.reset()
    y_ref = ref.step(x_zero).copy()
    zero = load(path, nonfinite="zero")
    np.testing.assert_allclose(zero.step(np.where(np.isnan(x_bad), np.inf, x_bad)), y_ref, atol=1e-7)
    with pytest.raises(ValueError, match="nonfinite must be one of"):
        load(path, nonfinite="ignore")


def test_ltc_state_bound_guard(tmp_path):
    model, path = make(tmp_path, "ltc-ncp")
    ctrl = load(path)
    lo, hi = ctrl.meta.bounds
    cell = model.config["cell"]
    potentials = F.ltc_bounds({k[5:]: v for k, v in raw_of(model).items() if k.startswith("cell.")}, cell)
    np.testing.assert_array_equal(lo, np.minimum(potentials[0], 0.0))  # holds the reset state too
    rng = np.random.default_rng(0)
    # a long run with large inputs stays inside (the theorem) and the guard never fires
    for _ in range(300):
        ctrl.step(5 * rng.standard_normal(5), dt=rng.uniform(0.01, 2.0))
        assert np.all(ctrl.state >= lo - 1e-4) and np.all(ctrl.state <= hi + 1e-4)
    # a starting state outside the range is allowed (the bound includes it) ...
    ctrl.reset(state=np.full(19, hi.max() + 3.0))
    ctrl.step(np.zeros(5))
    # ... but a backend that produces an out-of-range state is caught, and not committed
    ctrl.reset()
    good = ctrl.state.copy()

    def bad_neuron_3(be):
        be.h_new[0, 3] = hi[3] + 1.0

    sabotage(ctrl, bad_neuron_3)
    with pytest.raises(StateBoundError, match="neuron 3"):
        ctrl.step(np.zeros(5))
    np.testing.assert_array_equal(ctrl.state, good)
    clip = sabotage(load(path, state_check="clip"), bad_neuron_3)
    clip.step(np.zeros(5))
    assert clip.state[0, 3] <= hi[3] + 1e-3
    off = sabotage(load(path, state_check="off"), bad_neuron_3)
    off.step(np.zeros(5))
    assert off.state[0, 3] > hi[3] + 0.5


def sabotage(ctrl, corrupt):
    """Make the controller's backend write a wrong state after each run (a broken backend)."""
    be = ctrl.backend
    real_run = be.run

    def run():
        real_run()
        corrupt(be)

    be.run = run
    return ctrl


def test_nan_state_is_caught_for_any_cell(tmp_path):
    _, path = make(tmp_path, "lstm")
    ctrl = load(path)
    assert ctrl.meta.bounds is None and "no proven state bound" in ctrl.meta.bounds_note
    sabotage(ctrl, lambda be: be.h_new.__setitem__((0, 0), np.nan))
    with pytest.raises(StateBoundError, match="NaN"):
        ctrl.step(np.zeros(5))


def test_unclipped_ltc_has_no_bound_with_reason(tmp_path):
    model = build_model("ltc", 3, units=4, seed=0)
    with __import__("torch").no_grad():
        model.cell.w.fill_(-0.5)
    path = save(model, tmp_path / "neg.safetensors")
    ctrl = load(path)
    assert ctrl.meta.bounds is None and "negative w" in ctrl.meta.bounds_note


def test_input_errors_are_one_line_value_errors(tmp_path):
    _, path = make(tmp_path, "ltc-ncp")
    ctrl = load(path)
    cases = [(np.zeros(4), InputShapeError), (np.zeros((1, 6)), InputShapeError),
             (np.zeros((2, 3, 5)), InputShapeError), (np.array(["a"] * 5), InputDtypeError),
             (np.zeros(5, complex), InputDtypeError), (np.zeros(5, bool), InputDtypeError),
             (np.array([object()] * 5), InputDtypeError)]
    for x, err in cases:
        with pytest.raises(err) as info:
            ctrl.step(x)
        assert isinstance(info.value, ValueError) and isinstance(info.value, RuntimeInputError)
        assert "\n" not in str(info.value) and len(str(info.value)) < 200


@pytest.mark.parametrize("content", [None, b"", b"garbage" * 20, b"\x10\x00\x00\x00\x00\x00\x00\x00{not json}"])
def test_bad_model_files(tmp_path, content):
    path = tmp_path / "m.safetensors"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(ModelLoadError) as info:
        load(path)
    assert "\n" not in str(info.value) and str(path) in str(info.value)


def test_truncated_model_file(tmp_path):
    _, path = make(tmp_path, "gru")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 100])
    with pytest.raises(ModelLoadError):
        load(path)


def test_unknown_suffix_backend_and_folder(tmp_path):
    p = tmp_path / "model.bin"
    p.write_bytes(b"x")
    with pytest.raises(ModelLoadError, match="unknown model file type"):
        load(p)
    _, path = make(tmp_path, "gru")
    with pytest.raises(ValueError, match="unknown backend"):
        load(path, backend="tensorflow")
    with pytest.raises(ModelLoadError, match="manifest.json"):
        load(tmp_path)  # a folder without a manifest
    assert set(BACKENDS) == {"numpy", "onnxruntime", "tflite", "c", "tflm", "mcu", "executorch"}


def test_numpy_backend_from_arrays_no_file():
    model = build_model("cfc", 3, units=6, backbone_units=8, seed=1)
    be = NumpyBackend.from_arrays(model.config, raw_of(model), batch=2)
    ctrl = Controller(be, batch=2)
    assert ctrl.step(np.ones((2, 3))).shape == (2, 6)


def test_runtime_import_needs_no_torch(tmp_path):
    import subprocess
    import sys

    _, path = make(tmp_path, "ltc-ncp")
    code = ("import sys; sys.modules['torch'] = None\n"  # any torch import now fails
            "from ltc_edge.runtime import load\n"
            f"c = load({str(path)!r}); y = c.step([0.1, 0.2, 0.3, 0.4, 0.5], dt=0.5)\n"
            "assert y.shape == (4,), y.shape\nprint('ok')")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0 and "ok" in r.stdout, r.stderr


# -- reliability: what a fuzz campaign on the runtime API found (see test_runtime_fuzz.py) --

def _one_line(err):
    msg = str(err)
    assert isinstance(err, RuntimeInputError) and "\n" not in msg and len(msg) < 240, msg


@pytest.mark.filterwarnings("error::RuntimeWarning")  # no numpy overflow warning on the way either
def test_dt_must_be_finite_and_positive_in_float32(tmp_path):
    _, path = make(tmp_path, "ltc-ncp")
    ctrl = load(path, batch=2)
    x = np.zeros((2, 5))
    for bad in (10**400, -10**400, 1e39, -1e39, 1e-46, 0, np.float64(1e39), np.array(1e39),
                np.array([0.1, 1e39]), np.array([0.1, 1e-50]), np.array([1e39, 1e39], np.longdouble),
                [0.1, float("nan")]):
        with pytest.raises(NonFiniteInputError, match="dt must be finite and > 0 in float32") as info:
            ctrl.step(x, dt=bad)
        _one_line(info.value)
    assert np.all(ctrl.state == 0)
    # the float32 extremes themselves are accepted (the state bound guard then judges the result)
    f32 = np.finfo(np.float32)
    for ok in (float(f32.max), float(f32.smallest_subnormal), 10**38, np.float32(0.3)):
        try:
            ctrl.step(x, dt=ok)
        except StateBoundError:
            pass
    for bad, err in (([0.1, 0.2, 0.3], InputShapeError), ([[0.1], [0.2, 0.3]], InputShapeError),
                     ([], InputShapeError), (1 + 2j, InputDtypeError), ([0.1, 1j], InputDtypeError),
                     (True, InputDtypeError), ("0.1", InputDtypeError), ([10**400, 1], InputDtypeError)):
        with pytest.raises(err) as info:
            ctrl.step(x, dt=bad)
        _one_line(info.value)


def test_run_checks_its_dt_sequence(tmp_path):
    """run(xs, dt): a dt list shorter than the sequence was an IndexError."""
    _, path = make(tmp_path, "gru")
    ctrl = load(path, batch=3)
    xs = np.zeros((4, 3, 5))
    for bad in ([0.1, 0.2, 0.3], np.ones((2, 3)), [[0.1], [0.2, 0.3]]):
        with pytest.raises(InputShapeError) as info:
            ctrl.run(xs, dt=bad)
        _one_line(info.value)
    with pytest.raises(InputShapeError):
        ctrl.run(np.zeros((0, 3, 5)))
    ys = ctrl.run(xs, dt=np.full((4, 3), 0.5))
    assert ys.shape == (4, 3, 2)
    np.testing.assert_array_equal(load(path, batch=3).run(xs, dt=np.float32(0.5)), ys)


def test_batch_is_a_real_integer_up_to_max_batch(tmp_path):
    from ltc_edge.runtime.controller import MAX_BATCH

    _, path = make(tmp_path, "gru")
    ctrl = load(path, batch=2)
    for bad in ("3", 2.5, 2.0, True, None.__class__, 0, -1, MAX_BATCH + 1, 10**9, 10**400, np.array([2])):
        with pytest.raises(InputShapeError, match="batch must be an integer") as info:
            ctrl.reset(batch=bad)
        _one_line(info.value)
        assert ctrl.batch == 2
    with pytest.raises(InputShapeError, match=str(MAX_BATCH)):
        load(path, batch=10**9)  # refused before the backend allocates anything
    ctrl.reset(batch=np.int64(3))
    assert ctrl.batch == 3 and isinstance(ctrl.batch, int) and ctrl.step(np.zeros((3, 5))).shape == (3, 2)


def test_state_tol_and_bounds_are_checked_at_load(tmp_path):
    from ltc_edge.runtime.errors import ModelLoadError as LoadError

    model, path = make(tmp_path, "ltc-ncp")
    for bad in (float("nan"), -1e-3, float("inf"), "0.1", True, 10**400):
        with pytest.raises(RuntimeInputError, match="state_tol") as info:
            load(path, state_tol=bad)
        _one_line(info.value)
    assert load(path, state_tol=0).state_tol == 0.0
    for lo, hi in ((np.nan, 1.0), (-np.inf, 1.0), (0.0, np.inf), (2.0, 1.0), (-1e39, 1.0)):
        be = NumpyBackend(path)
        S = be.meta.state_size
        be.meta.bounds = (np.full(S, lo), np.full(S, hi))
        with pytest.raises(LoadError, match="state bounds") as info:
            Controller(be)
        _one_line(info.value)
    be = NumpyBackend(path)
    be.meta.bounds = (np.zeros(3), np.ones(3))
    with pytest.raises(LoadError, match="state bounds"):
        Controller(be)


def test_bad_controller_and_backend_arguments_stay_in_the_hierarchy(tmp_path):
    _, path = make(tmp_path, "gru")
    for kw in ({"nonfinite": "ignore"}, {"nonfinite": ["raise"]}, {"state_check": None},
               {"state_check": "RAISE"}, {"unknown_option": 1}):
        with pytest.raises(RuntimeInputError) as info:
            load(path, backend="numpy", **kw)
        _one_line(info.value)
    for bad in ("numpy", None, object()):
        with pytest.raises(RuntimeInputError, match="Backend"):
            Controller(bad)


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_state_and_x_beyond_float32_are_nonfinite(tmp_path):
    _, path = make(tmp_path, "ltc-ncp")
    ctrl = load(path)
    ctrl.step(np.ones(5), 0.1)
    good = ctrl.state.copy()
    for bad in (np.full(19, 1e39), [np.nan] * 19):
        with pytest.raises(NonFiniteInputError, match="state"):
            ctrl.state = bad
        with pytest.raises(NonFiniteInputError, match="state"):
            ctrl.reset(state=bad)  # refused before anything is reset
        np.testing.assert_array_equal(ctrl.state, good)
    with pytest.raises(InputShapeError):
        ctrl.state = [[0.0] * 19, [0.0]]
    with pytest.raises(NonFiniteInputError, match="float32"):
        ctrl.step(np.array([1e39, 0, 0, 0, 0]), 0.1)
    for bad in ([1 + 1j] * 5, np.zeros(5, np.complex64), [True] * 5, ["1"] * 5, [[1, 2], [3]]):
        with pytest.raises((InputDtypeError, InputShapeError)) as info:
            ctrl.step(bad, 0.1)
        _one_line(info.value)
    np.testing.assert_array_equal(ctrl.state, good)


def test_rejected_step_keeps_held_inputs(tmp_path):
    """nonfinite='hold': a step rejected for its dt or its state leaves the held inputs as
    they were, so the next step equals one on a controller that never saw it."""
    _, path = make(tmp_path, "ltc-ncp")
    x0 = np.array([0.5, -0.5, 0.2, 0.1, 0.3], np.float32)
    x_nan = np.full(5, np.nan, np.float32)
    a, ref = load(path, nonfinite="hold"), load(path, nonfinite="hold")
    for c in (a, ref):
        c.step(x0, 0.1)
    with pytest.raises(NonFiniteInputError):
        a.step(np.full(5, 9.0), dt=-1.0)  # valid x, bad dt
    real_run = a.backend.run
    sabotage(a, lambda be: be.h_new.__setitem__((0, 0), np.nan))
    with pytest.raises(StateBoundError):
        a.step(np.full(5, 7.0), 0.1)  # rejected after the backend ran
    a.backend.run = real_run
    np.testing.assert_array_equal(a.step(x_nan, 0.1), ref.step(x_nan, 0.1))
    np.testing.assert_array_equal(a.state, ref.state)


def test_failed_rebind_keeps_the_old_batch(tmp_path):
    _, path = make(tmp_path, "gru")
    ctrl = load(path, batch=2)
    real_bind = ctrl.backend.bind

    def bind(batch):
        if batch == 7:
            raise ModelLoadError("this graph cannot run 7 rows")
        real_bind(batch)

    ctrl.backend.bind = bind
    with pytest.raises(ModelLoadError):
        ctrl.reset(batch=7)
    assert ctrl.batch == 2 and ctrl.step(np.zeros((2, 5))).shape == (2, 2)


def test_one_controller_shared_by_threads(tmp_path, step_in_threads):
    """Steps from several threads run one at a time: 4 threads x 50 steps of the same input
    end in the state of 200 sequential steps."""
    _, path = make(tmp_path, "gru")
    shared, ref = load(path), load(path)
    x = np.linspace(-1, 1, 5)
    errors = step_in_threads(shared, x, 50)
    for _ in range(200):
        ref.step(x, 0.1)
    assert not errors
    np.testing.assert_allclose(shared.state, ref.state, atol=1e-6)
