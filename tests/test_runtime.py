"""Runtime: load/reset/step on the numpy backend (traced F.model_step, allocation-free),
the shared guards, batch handling and clear errors on bad files and inputs."""

import tracemalloc

import numpy as np
import pytest

from ltc_edge.nn import build_model, save
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
    kind, kw = CASES[name]
    model = build_model(kind, 5, seed=seed, **kw)
    model.apply_constraints()
    return model, save(model, tmp_path / f"{name}.safetensors")


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
    np.testing.assert_array_equal(lo, F.ltc_bounds({k[5:]: v for k, v in raw_of(model).items()
                                                    if k.startswith("cell.")}, cell)[0])
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
    assert set(BACKENDS) == {"numpy", "onnxruntime", "tflite", "c"}


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
