"""C99 code generation: golden tests (compiled with the project's strict flags, cgen.CFLAGS:
-std=c99 -Wall -Wextra -Werror -pedantic -Wconversion -Wdouble-promotion, called through ctypes) against the numpy runtime for every cell kind, and the properties of
the generated code (no malloc, no mutable globals, sparse synapse loops)."""

import json
import re
import shutil
import subprocess

import numpy as np
import pytest

from ltc_edge.export import get_exporter
from ltc_edge.codegen import c as cgen
from ltc_edge.nn import build_model, save
from model_cases import make_case
from ltc_edge.runtime import ModelLoadError, NonFiniteInputError, StateBoundError, load

pytestmark = pytest.mark.skipif(cgen.find_cc() is None, reason="no host C compiler (cc/gcc)")

NORM = {"input_mean": [0.1, -0.2, 0.3, 0.0, 0.5], "input_std": [1.5, 0.5, 2.0, 1.0, 0.8],
        "output_mean": [0.5, -1.0], "output_std": [2.0, 0.5]}

CASES = {
    "ltc-ncp": ("ltc", dict(wiring="auto-ncp", units=19, output_size=4)),
    "ltc-full-readout": ("ltc", dict(units=8, output_size=2, readout=True, normalization=NORM)),
    "ltc-euler": ("ltc", dict(units=6, solver="euler", ode_unfolds=4, input_mapping="linear",
                              output_mapping="none")),
    # 3 unfolds: at 2 (delta up to 0.5) one step of the 1000 lands at RK4's stability edge, where
    # any fp32 rounding difference is amplified ~200x (libm expf: 5.7e-6, our exp2: 1.9e-5; at 3: 3e-7)
    "ltc-rk4-softplus": ("ltc", dict(units=6, solver="rk4", ode_unfolds=3, implicit_param_constraints=True)),
    "cfc": ("cfc", dict(units=12, backbone_units=16)),
    "cfc-pure": ("cfc", dict(units=8, mode="pure", backbone_layers=2, backbone_units=16)),
    "cfc-nogate-silu": ("cfc", dict(units=8, mode="no_gate", activation="silu", backbone_units=8)),
    "cfc-relu-0bb": ("cfc", dict(units=8, activation="relu", backbone_layers=0)),
    "cfc-gelu": ("cfc", dict(units=8, activation="gelu", backbone_units=8)),  # erf_ (no libm erff)
    "cfc-ncp": ("cfc", dict(wiring="auto-ncp", units=16, output_size=4)),
    "ctrnn": ("ctrnn", dict(units=8)),
    "ctrnn-rk4": ("ctrnn", dict(units=8, solver="rk4", ode_unfolds=2)),
    "node": ("node", dict(units=8, ode_hidden=12)),
    "lstm": ("lstm", dict(units=8, output_size=3)),
    "gru": ("gru", dict(units=8, output_size=2, normalization=NORM)),
}


def make(tmp_path, name, seed=0):
    return make_case(CASES, tmp_path, name, seed)


@pytest.mark.parametrize("name, unroll", [(name, u) for name, (kind, _) in CASES.items()
                                           for u in (("on", "off") if kind == "ltc" else ("off",))])
def test_golden_c_equals_numpy_runtime(tmp_path, name, unroll):
    """1000 steps, batch 2, random inputs and per-row dt: compiled C == numpy runtime to 1e-5,
    the LTC's unrolled and loop forms (other kinds have one form)."""
    model, path = make(tmp_path, name)
    out = tmp_path / "c"
    rng = np.random.default_rng(3)  # drift reference: dt as in the loop below (the explicit
    # Euler LTC turns chaotic at the synthetic reference's dt = 1, where fp32 orderings part ways)
    npz = tmp_path / "ref.npz"
    np.savez(npz, x=rng.standard_normal((8, 200, 5)).astype(np.float32),
             dt=rng.uniform(0.05, 0.5, (8, 200)).astype(np.float32))
    manifest = get_exporter("c")(model, out, calibration=str(npz), unroll=unroll)  # compiles with cgen.CFLAGS
    assert manifest["cflags"] == cgen.CFLAGS and "-Wconversion" in cgen.CFLAGS
    assert manifest.get("unrolled", False) == (unroll == "on" and model.config["cell"].get("solver") == "semi_implicit")
    assert (out / manifest["files"]["library"]["name"]).exists()
    assert manifest["drift"]["max_abs"] <= 1e-4 and manifest["drift"]["steps"] >= 1000  # drift-checked at export
    ref = load(path, batch=2)
    ctrl = load(out, batch=2)
    assert ctrl.backend_name == "c"
    rng = np.random.default_rng(7)
    worst = 0.0
    for _ in range(1000):
        x = rng.standard_normal((2, 5)).astype(np.float32)
        dt = rng.uniform(0.05, 1.0, 2)
        worst = max(worst, float(np.abs(ref.step(x, dt) - ctrl.step(x, dt)).max()),
                    float(np.abs(ref.state - ctrl.state).max()))
    assert worst <= 1e-5, worst
    assert float(np.abs(ref.state).max()) > 1e-3


@pytest.mark.parametrize("unroll", ["on", "off"])
def test_generated_code_properties(tmp_path, unroll):
    model, _ = make(tmp_path, "ltc-ncp")
    m = get_exporter("c")(model, tmp_path / "c", prefix="pendulum_ctl", unroll=unroll)
    src = (tmp_path / "c" / "pendulum_ctl.c").read_text()
    hdr = (tmp_path / "c" / "pendulum_ctl.h").read_text()
    code = re.sub(r"/\*.*?\*/", "", src, flags=re.S)  # without the comments
    # the one #if picks the FPv4 (Cortex-M4F) step at compile time; no other, no dead template code
    assert code.count("#if") == 1 and code.count(f"#if {cgen.FPV4_TEST}\n") == 1 and code.count("#else") == 1
    for banned in ("malloc(", "free(", "printf", "errno", "<stdio.h>", "<math.h>", "double", "expf("):
        assert banned not in code, banned  # no libm, no stdio, no double math
    assert "#define PENDULUM_CTL_STATE_SIZE 19" in hdr and m["unrolled"] == (unroll == "on")
    assert "pendulum_ctl_step(pendulum_ctl_state_t *s, const float *x, float dt, float *y)" in hdr
    assert "int pendulum_ctl_step_checked(pendulum_ctl_state_t *s, const float *x, float dt, float *y)" in hdr
    assert "#define PENDULUM_CTL_STATE_OUT_OF_BOUNDS 4" in hdr and "#define PENDULUM_CTL_HAS_STATE_BOUNDS 1" in hdr
    # only existing synapses are stored: the synapse lists have exactly the wiring's synapses
    # (the unrolled form pads them with zeros to a multiple of 8)
    adj = np.abs(np.asarray(model.config["cell"]["wiring"]["adjacency"]))
    sadj = np.abs(np.asarray(model.config["cell"]["wiring"]["sensory_adjacency"]))
    assert m["synapses"] == int(adj.sum()) < 19 * 19 and m["sensory_synapses"] == int(sadj.sum())
    size = -(-m["synapses"] // 8) * 8 if unroll == "on" else m["synapses"]
    assert f"static const float R_MU[{size}]" in src
    assert ("R_PRE[" in src) == (unroll == "off")  # unrolled: constant indices in the code
    # no mutable global state (empty .data and .bss), and no external symbol at all (no libm)
    obj = tmp_path / "m.o"
    subprocess.run([cgen.find_cc(), *cgen.CFLAGS, "-c", "-o", str(obj), str(tmp_path / "c" / "pendulum_ctl.c")],
                   check=True)
    if shutil.which("size"):
        text, data, bss = map(int, subprocess.run(["size", str(obj)], capture_output=True, text=True,
                                                   check=True).stdout.splitlines()[1].split()[:3])
        assert data == 0 and bss == 0, (data, bss)
        assert text > m["weights_bytes"]
    if shutil.which("nm"):
        undefined = subprocess.run(["nm", "-u", str(obj)], capture_output=True, text=True, check=True).stdout.split()
        assert undefined == [], undefined
    # the manifest: sizes, bounds for the runtime guards, the config
    mf = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert mf["format"] == "c" and mf["state_size"] == 19 and len(mf["state_bounds"]["lo"]) == 19
    assert mf["config"] == model.config


def test_sparse_and_dense_loops_agree(tmp_path):
    _, path = make(tmp_path, "ltc-ncp")
    a = load(path, backend="c")
    b = load(path, backend="c", sparse=False)
    assert a.backend.describe()["weights_bytes"] < b.backend.describe()["weights_bytes"]
    assert b.backend.manifest.details["synapses"] == 19 * 19
    rng = np.random.default_rng(0)
    for _ in range(200):
        x = rng.standard_normal(5)
        np.testing.assert_allclose(a.step(x, 0.3), b.step(x, 0.3), atol=1e-6)


def test_fixed_dt_export(tmp_path):
    model, path = make(tmp_path, "ltc-ncp")
    get_exporter("c")(model, tmp_path / "c", fixed_dt=0.25)
    assert "#define LTC_MODEL_FIXED_DT 2.5e-01f" in (tmp_path / "c" / "ltc_model.h").read_text()
    c = load(tmp_path / "c")
    ref = load(path)
    assert c.meta.fixed_dt == 0.25
    x = np.ones(5)
    np.testing.assert_allclose(c.step(x), ref.step(x, 0.25), atol=1e-6)
    with pytest.raises(ValueError, match="fixed dt"):
        c.step(x, dt=0.5)


def test_export_refuses_overwrite_and_bad_options(tmp_path):
    model, path = make(tmp_path, "gru")
    exp = get_exporter("c")
    exp(str(path), tmp_path / "c")  # a model file path works too
    exp(model, tmp_path / "c", prefix="again")  # an earlier export is replaced whole, like every format
    assert sorted(p.name for p in (tmp_path / "c").iterdir()) == ["MODEL_CARD.md", "again.c", "again.h", "libagain.so", "manifest.json"]
    with pytest.raises(ValueError, match="precision"):
        exp(model, tmp_path / "c2", precision="int4")
    with pytest.raises(ValueError, match="C identifier"):
        exp(model, tmp_path / "c3", prefix="1bad-name")
    with pytest.raises(ValueError, match="unknown option"):
        exp(model, tmp_path / "c4", frobnicate=True)
    assert not (tmp_path / "c2").exists() or not any((tmp_path / "c2").iterdir())


def test_sources_without_library_are_compiled_on_load(tmp_path):
    model, path = make(tmp_path, "lstm")
    m = get_exporter("c")(model, tmp_path / "c", build=False)
    assert "library" not in m["files"] and not list((tmp_path / "c").glob("*.so"))
    c = load(tmp_path / "c")
    ref = load(path)
    np.testing.assert_allclose(c.step(np.ones(5)), ref.step(np.ones(5)), atol=1e-6)


def test_c_backend_bad_files(tmp_path):
    (tmp_path / "libx.so").write_bytes(b"not an elf")
    with pytest.raises(ModelLoadError, match="manifest.json"):
        load(tmp_path / "libx.so")
    (tmp_path / "manifest.json").write_text(json.dumps({"format": "c", "prefix": "x", "library": "libx.so",
                                                        "input_size": 1, "output_size": 1, "state_size": 1}))
    with pytest.raises(ModelLoadError, match="re-export"):  # a manifest of the old layout
        load(tmp_path / "libx.so")
    from ltc_edge.artifact import FileEntry, Manifest

    (tmp_path / "x.c").write_text("int x;\n")
    (tmp_path / "x.h").write_text("int x;\n")
    Manifest(format="c", precision="fp32", prefix="x", kind="gru", input_size=1, output_size=1, state_size=1,
             uses_dt=False, files={"library": FileEntry.of(tmp_path / "libx.so"),
                                   "source": FileEntry.of(tmp_path / "x.c"),
                                   "header": FileEntry.of(tmp_path / "x.h")},
             config=build_model("gru", 1, 1, units=1, seed=0).config,
             details={"model": {"state_size": 1}, "functions": {n: f"x_{n}" for n in ("reset", "step", "step_batch", "sizes")}}
             ).write(tmp_path)
    with pytest.raises(ModelLoadError, match="cannot load"):  # checksums fine, not a library
        load(tmp_path / "libx.so")
    (tmp_path / "manifest.json").write_text("{broken")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load(tmp_path / "libx.so")


def test_c_step_allocation_free_in_numpy_buffers(tmp_path):
    """The ctypes call reuses preallocated pointers; y is the same buffer every step."""
    _, path = make(tmp_path, "ltc-ncp")
    c = load(path, backend="c", batch=3)
    y1 = c.step(np.ones((3, 5)))
    y2 = c.step(np.zeros((3, 5)))
    assert y1 is y2  # same read-only view, refreshed in place


@pytest.mark.filterwarnings("error::RuntimeWarning")  # float64 beyond float32: no numpy overflow warning
def test_c_fast_path_takes_float64_and_batch_rows(tmp_path, monkeypatch):
    """Batch 1 on the C backend: a float64 x[in] (gymnasium's observations) and an x[1, in] of
    either dtype take the fast path (the general path's copy is never called) and give the
    float32 x[in] path's results bit for bit; their guards stay the same."""
    from ltc_edge.runtime import controller as C

    _, path = make(tmp_path, "ltc-ncp")
    ref, fast = load(path, backend="c"), load(path, backend="c")
    monkeypatch.setattr(C, "_copy_f32", lambda *a: pytest.fail("the general path's copy was called"))
    xs = np.random.default_rng(3).standard_normal((60, 5))  # float64, most not exact in float32
    forms = {"f64": lambda x: x, "f32_row": lambda x: x.astype(np.float32)[None, :], "f64_row": lambda x: x[None, :],
             "f64_strided": lambda x: np.repeat(x, 2)[::2]}
    for name, form in forms.items():
        ref.reset()
        fast.reset()
        for t, x in enumerate(xs):
            want = np.array(ref.step(x.astype(np.float32), 0.1 + 0.01 * (t % 3)))
            got = fast.step(form(x), 0.1 + 0.01 * (t % 3))
            assert got.shape == (want.shape if form(x).ndim == 1 else (1, *want.shape)), name
            np.testing.assert_array_equal(got.reshape(want.shape), want, err_msg=name)
        np.testing.assert_array_equal(fast.state, ref.state, err_msg=name)
    good = fast.state.copy()
    for bad in (np.array([1e39, 0, 0, 0, 0]), np.array([[0, 0, np.nan, 0, 0]]), np.full((1, 5), -np.inf, np.float32)):
        with pytest.raises(NonFiniteInputError, match="float32's range"):
            fast.step(bad, 0.1)
    np.testing.assert_array_equal(fast.state, good)  # rejected steps commit nothing


@pytest.fixture(scope="module")
def narrowed(tmp_path_factory):
    """The numpy and the C backend of one LTC, their state bounds narrowed (both alike) so a
    run leaves them: the C guards (in the library) must behave as the numpy guards."""
    from ltc_edge.runtime.c_backend import CBackend
    from ltc_edge.runtime.numpy_backend import NumpyBackend

    _, path = make(tmp_path_factory.mktemp("guards"), "ltc-ncp")
    backends = NumpyBackend(path), CBackend(path)
    for be in backends:
        lo, hi = be.meta.bounds
        be.meta.bounds = (lo + 0.35 * (hi - lo), hi - 0.35 * (hi - lo))
    assert backends[1].native_guards and not backends[0].native_guards
    return backends


def _guarded_run(ctrl, steps=80):
    """(outcome, y, state) per step over inputs with NaN/inf entries and bad dt now and then."""
    rng = np.random.default_rng(11)
    out = []
    for t in range(steps):
        x = 3 * rng.standard_normal((2, 5))
        if t % 7 == 3:
            x[t % 2, t % 5] = np.nan if t % 2 else np.inf
        dt = rng.uniform(0.05, 1.0, 2)
        if t % 11 == 5:
            dt[1] = [0.0, np.nan, -1.0][t % 3]
        try:
            y = ctrl.step(x, dt if t % 3 else float(dt[0]))
            outcome = "ok"
        except (NonFiniteInputError, StateBoundError) as e:
            y, outcome = ctrl.backend.y, f"{type(e).__name__}: {e}"
        out.append((outcome, np.array(y), ctrl.state.copy()))
    return out


@pytest.mark.parametrize("nonfinite", ["raise", "hold", "zero"])
@pytest.mark.parametrize("state_check", ["raise", "clip", "off"])
def test_c_guards_match_numpy_guards(narrowed, nonfinite, state_check):
    from ltc_edge.runtime import Controller

    runs = [_guarded_run(Controller(be, batch=2, nonfinite=nonfinite, state_check=state_check)) for be in narrowed]
    outcomes = [o for o, _, _ in runs[0]]
    assert outcomes == [o for o, _, _ in runs[1]]
    y_last = None
    for (outcome, y_np, h_np), (_, y_c, h_c) in zip(*runs):
        np.testing.assert_allclose(h_c, h_np, atol=1e-5)
        if outcome == "ok":
            np.testing.assert_allclose(y_c, y_np, atol=1e-5)
            y_last = y_c
        elif y_last is not None:  # a rejected step leaves y as it was (the controller's contract)
            np.testing.assert_array_equal(y_c, y_last)
    kinds = {o.split(":")[0] for o in outcomes}
    assert "ok" in kinds  # the run exercises the guards it should
    if nonfinite == "raise":
        assert "NonFiniteInputError" in kinds
    if state_check == "raise":
        assert "StateBoundError" in kinds and any("neuron" in o for o in outcomes)


def test_step_checked_status_codes(tmp_path):
    """The firmware entry point: a status code, and nothing changes unless it is OK."""
    import ctypes

    model, _ = make(tmp_path, "ltc-ncp")
    get_exporter("c")(model, tmp_path / "c")
    hdr = (tmp_path / "c" / "ltc_model.h").read_text()
    codes = {n: int(re.search(rf"#define LTC_MODEL_{n} (\d+)", hdr).group(1))
             for n in ("OK", "NONFINITE_INPUT", "BAD_DT", "NONFINITE_STATE")}
    lib = ctypes.CDLL(str(tmp_path / "c" / "libltc_model.so"))
    fn = lib.ltc_model_step_checked
    fn.restype = ctypes.c_int
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_float, ctypes.c_void_p]
    h, y = np.zeros(19, np.float32), np.full(4, 7.0, np.float32)
    P = lambda a: a.ctypes.data  # noqa: E731

    def call(x, dt):
        return fn(P(h), P(np.asarray(x, np.float32)), dt, P(y))
    assert call([0, 0, np.nan, 0, 0], 0.1) == codes["NONFINITE_INPUT"]
    assert call([0, 0, np.inf, 0, 0], 0.1) == codes["NONFINITE_INPUT"]
    for dt in (0.0, -1.0, float("nan"), float("inf")):
        assert call(np.ones(5), dt) == codes["BAD_DT"]
    assert np.all(h == 0) and np.all(y == 7.0)
    assert call(np.ones(5), 0.1) == codes["OK"] and np.any(h != 0) and np.all(y != 7.0)
    ref = load(tmp_path / "c")
    ref.step(np.ones(5), 0.1)
    np.testing.assert_allclose(h, ref.state[0], atol=1e-6)
    h[2], before = np.nan, y.copy()
    assert call(np.ones(5), 0.1) == codes["NONFINITE_STATE"]
    assert np.isnan(h[2]) and np.array_equal(y, before)  # not committed


def test_cli_unroll_option(tmp_path):
    from typer.testing import CliRunner

    from ltc_edge.cli import app

    _, path = make(tmp_path, "ltc-ncp")
    runner = CliRunner()
    r = runner.invoke(app, ["export", str(path), "--format", "c", "--out", str(tmp_path / "c"), "--unroll", "off"])
    assert r.exit_code == 0, r.output
    mf = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert mf["unrolled"] is False and "R_PRE[" in (tmp_path / "c" / "ltc_model.c").read_text()
    for args in (["--format", "c", "--unroll", "sometimes"], ["--format", "onnx", "--unroll", "on"]):
        r = runner.invoke(app, ["export", str(path), *args, "--out", str(tmp_path / "bad")])
        lines = [line for line in r.output.splitlines() if line.strip()]
        assert r.exit_code == 1 and len(lines) == 1 and "unroll" in lines[0] and "Traceback" not in r.output
        assert not (tmp_path / "bad").exists()


def test_unroll_auto_threshold():
    """auto unrolls up to UNROLL_MAX_SYNAPSES per synapse list, the loop form above."""
    model = build_model("ltc", 5, units=24, seed=0)  # fully connected: 576 recurrent synapses
    model.apply_constraints()
    raw = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    assert 24 * 24 > cgen.UNROLL_MAX_SYNAPSES >= 19 * 19
    assert cgen.generate(model.config, raw)["info"]["unrolled"] is False
    assert cgen.generate(model.config, raw, unroll="on")["info"]["unrolled"] is True
    small = build_model("ltc", 5, units=19, seed=0)
    raw = {k: v.detach().numpy() for k, v in small.state_dict().items()}
    assert cgen.generate(small.config, raw)["info"]["unrolled"] is True
    with pytest.raises(ValueError, match="unroll must be one of"):
        cgen.generate(small.config, raw, unroll="yes")


UB_DRIVER = r"""
#include <stdio.h>
#include "m.h"
int main(void)
{
    const float specials[4] = {1e30f, -1e30f, 1.0f / 0.0f, -1.0f / 0.0f};
    m_state_t s;
    float x[5] = {0.5f, -1.0f, 2.0f, 0.0f, 1.0f}, y[4];
    int i, k;
    for (k = 0; k < 4; ++k) {               /* states far outside the bounds: defined, no trap */
        m_reset(&s);
        for (i = 0; i < M_STATE_SIZE; i += 2) s.h[i] = specials[k];
        m_step(&s, x, 0.1f, y);
    }
    m_reset(&s);
    x[0] = 0.0f / 0.0f;                     /* NaN in: NaN out after a few steps */
    for (k = 0; k < 3; ++k) m_step(&s, x, 0.1f, y);
    for (i = 0; i < 4; ++i) printf("%d\n", y[i] != y[i]);
    return 0;
}
"""


@pytest.mark.parametrize("unroll", ["on", "off"])
def test_bounded_recurrent_gates(tmp_path, unroll):
    """The LTC's recurrent gates read states clamped to V_SAFE_LO/HI (|a (v - mu)| <= 120 there)
    and use exp2_bounded_: the range holds the LTC bounds, a state far outside (or inf) is defined
    behaviour under UBSan, NaN still propagates to the outputs; a model whose gates are too steep
    for such a range keeps exp2_'s clamp."""
    model, path = make(tmp_path, "ltc-ncp")
    from ltc_edge.nn import functional as F
    from ltc_edge.nn.modelfile import read
    config, raw = read(path)
    gen = cgen.generate(config, raw, prefix="m", unroll=unroll)
    src = gen["files"]["m.c"]
    assert "exp2_bounded_(a[k]" in src and ("vc[j] = safe_(v[j], j)" in src or "vc[i] = safe_(vv[i], i)" in src)
    safe = [np.array([float(v.rstrip("f")) for v in re.search(rf"{n}\[\d+\] = \{{(.*?)\}};", src, re.S)
                      .group(1).replace("\n", "").split(",")])[:19] for n in ("V_SAFE_LO", "V_SAFE_HI")]
    lo, hi = F.ltc_state_bounds(config, raw)[0]
    assert np.all(safe[0] <= np.minimum(lo, 0) - 1) and np.all(safe[1] >= np.maximum(hi, 0) + 1)
    for name, text in gen["files"].items():
        (tmp_path / name).write_text(text)
    (tmp_path / "drv.c").write_text(UB_DRIVER)
    exe = tmp_path / "drv"
    built = subprocess.run([cgen.find_cc(), "-O1", "-std=c99", "-fsanitize=undefined,float-cast-overflow",
                            "-fno-sanitize-recover=all", "-o", str(exe), str(tmp_path / "m.c"), str(tmp_path / "drv.c")],
                           capture_output=True, text=True)
    if built.returncode != 0 and "sanitize" in built.stderr:
        pytest.skip("no UBSan runtime")
    assert built.returncode == 0, built.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and "runtime error" not in run.stderr, run.stderr
    assert run.stdout.split() == ["1"] * 4  # NaN reached every output
    steep = dict(raw)
    steep["cell.sigma"] = raw["cell.sigma"] * 1e4  # |a| ~ 1e5: no range keeps |t| <= 120 around the bounds
    src2 = cgen.generate(config, steep, prefix="m", unroll=unroll)["files"]["m.c"]
    assert "safe_(" not in src2 and "exp2_bounded_(a[k]" not in src2
