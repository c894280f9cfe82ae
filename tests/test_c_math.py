"""The generated C's own math (exp2_, expf_, sigmoid_, tanh_ of ltc_edge/codegen/templates/
math.c.in: no libm) against double precision, over a sweep of the whole float32 range (every
4099th bit pattern: both signs, subnormals, +-inf, NaNs) plus dense sweeps of the ranges the
steps see. The bounds asserted here are the ones stated in the generated source:
  exp2_(t): relative error <= 2.5e-7 for |t| <= 125, clamped to 2^+-125 beyond (never 0, inf
            or subnormal); expf_(x): the same for |x| <= 86.64 (5e-6 under -ffast-math, which
            may reorder its two-part reduction); exp2_bounded_(t) (no clamp: the LTC's recurrent
            gates): the same error for |t| <= 126, NaN -> NaN, and no undefined behaviour;
  sigmoid_, tanh_: absolute error <= 2.5e-7 for every float (+-inf included); NaN -> NaN."""

import ctypes
import subprocess

import numpy as np
import pytest

from ltc_edge.codegen import c as cgen

pytestmark = pytest.mark.skipif(cgen.find_cc() is None, reason="no host C compiler (cc/gcc)")

WRAP = """
#define APPLY(name, fn) void name(const float *x, float *y, int n) { int i; for (i = 0; i < n; ++i) y[i] = fn(x[i]); }
APPLY(v_exp2, exp2_)
APPLY(v_exp2_bounded, exp2_bounded_)
APPLY(v_exp, expf_)
APPLY(v_sigmoid, sigmoid_)
APPLY(v_tanh, tanh_)
"""
BOUND = 2.5e-7


@pytest.fixture(scope="module", params=[["-O2"], ["-O3", "-ffast-math"]], ids=["O2", "O3-fast-math"])
def lib(request, tmp_path_factory):
    d = tmp_path_factory.mktemp("cmath")
    src = d / "m.c"
    src.write_text(cgen.math_source() + WRAP)
    flags = [f for f in cgen.CFLAGS if not f.startswith("-O")] + request.param
    # compile with the flags, link without them: gcc links crtfastmath.o into a -ffast-math
    # shared library, which flushes subnormals to zero for the whole (test) process on load
    subprocess.run([cgen.find_cc(), *flags, "-Wno-missing-prototypes", "-fPIC", "-c", "-o", str(d / "m.o"),
                    str(src)], check=True)
    subprocess.run([cgen.find_cc(), "-shared", "-o", str(d / "m.so"), str(d / "m.o")], check=True)
    L = ctypes.CDLL(str(d / "m.so"))

    def call(name, x):
        x = np.ascontiguousarray(x, np.float32)
        y = np.empty_like(x)
        getattr(L, name)(x.ctypes.data_as(ctypes.c_void_p), y.ctypes.data_as(ctypes.c_void_p), ctypes.c_int(x.size))
        return y
    call.fast_math = "-ffast-math" in request.param
    assert np.float32(1e-45) * np.float32(1.0) != 0  # subnormals still work in this process
    return call


def sweep(lo, hi, n=1_000_001):
    every = np.arange(0, 2**32, 4099, dtype=np.uint64).astype(np.uint32).view(np.float32)
    edges = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, -1e-45, 1.17549435e-38, 3.4028235e38,
                      -3.4028235e38, lo, hi, np.nextafter(np.float32(hi), np.float32(np.inf))], np.float32)
    return np.concatenate([every, np.linspace(lo, hi, n, dtype=np.float32), edges])


def rel_err(y, ref):
    return np.abs(y.astype(np.float64) / ref - 1.0)


@pytest.mark.parametrize("name, fn, limit", [("v_exp2", np.exp2, 125.0), ("v_exp", np.exp, 86.64)])
def test_exp_relative_error_and_clamping(lib, name, fn, limit):
    x = sweep(-limit * 1.1, limit * 1.1)
    y = lib(name, x)
    with np.errstate(invalid="ignore"):
        x64 = x.astype(np.float64)
    inside = np.abs(x64) <= limit
    with np.errstate(over="ignore"):
        worst = float(rel_err(y[inside], fn(x64[inside])).max())
    tol = 5e-6 if lib.fast_math and name == "v_exp" else BOUND
    assert worst <= tol, worst
    print(f"{name}: max relative error {worst:.3g} for |x| <= {limit}")
    big, small = np.float32(fn(np.float64(limit))), np.float32(fn(-np.float64(limit)))
    outside = ~inside & ~np.isnan(x)
    assert np.all(y[outside & (x > 0)] == lib(name, [limit])[0])  # clamped: the value at the limit
    assert np.all(y[outside & (x < 0)] == lib(name, [-limit])[0])
    finite = y[~np.isnan(x)]
    assert np.all(np.isfinite(finite)) and finite.min() >= small * (1 - tol) and finite.max() <= big * (1 + tol)
    assert finite.min() >= np.finfo(np.float32).tiny  # never 0 or subnormal
    if not lib.fast_math:
        assert np.all(np.isnan(y[np.isnan(x)]))


@pytest.mark.parametrize("name, fn", [
    ("v_sigmoid", lambda x: 0.5 + 0.5 * np.tanh(0.5 * x)),
    ("v_tanh", np.tanh),
])
def test_sigmoid_tanh_absolute_error(lib, name, fn):
    x = sweep(-30.0, 30.0)
    y = lib(name, x)
    ok = ~np.isnan(x)
    worst = float(np.abs(y[ok].astype(np.float64) - fn(x[ok].astype(np.float64))).max())
    assert worst <= BOUND, worst
    print(f"{name}: max absolute error {worst:.3g}")
    lo, hi = (0.0, 1.0) if name == "v_sigmoid" else (-1.0, 1.0)
    assert lib(name, [-np.inf, np.inf]).tolist() == pytest.approx([lo, hi], abs=1e-30)
    assert y[ok].min() >= lo and y[ok].max() <= hi
    if not lib.fast_math:
        assert np.all(np.isnan(y[~ok]))


def test_exp2_bounded_error_and_nan(lib):
    """exp2_bounded_ (the recurrent gates' 2^t, exact rounding by the 1.5*2^23 trick, or a float
    -> int conversion under -ffast-math) holds exp2_'s error on |t| <= 126, where it is used."""
    t = np.concatenate([np.linspace(-126.0, 126.0, 2_000_001, dtype=np.float32),
                        np.float32([-126.0, 126.0, -0.5, 0.5, -0.0, 0.0, 1e-30, -1e-30])])
    y = lib("v_exp2_bounded", t)
    worst = float(rel_err(y, np.exp2(t.astype(np.float64))).max())
    assert worst <= BOUND, worst
    if not lib.fast_math:
        assert np.isnan(lib("v_exp2_bounded", [np.nan])[0])
