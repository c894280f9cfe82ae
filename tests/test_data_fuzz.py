"""Property tests over a user's training data files (CSV and NPZ): whatever the bytes, reading
them is "a one-line ValueError, or a correct TaskData" -- never another exception. A correct
TaskData has windows of finite numbers whose inputs are the file's own values."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ltc_edge.train.series import load_series

SETTINGS = settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
cells = st.one_of(st.floats(allow_nan=True, allow_infinity=True).map(repr), st.integers(-10 ** 30, 10 ** 30).map(str),
                  st.sampled_from(["", "nan", "inf", "1e39", "x", "\"1,2\"", "1.5", "-0", "\ufeff1"]),
                  st.text(max_size=5))


def _check(path, **kw):
    try:
        task = load_series(path, inputs="a,b", targets="c", **kw)
    except ValueError as e:  # LtcEdgeError is one too
        assert "\n" not in str(e) and str(e)
        return None
    for split in (task.train, task.valid, task.test):
        assert np.isfinite(split.x).all() and np.isfinite(split.y).all()
        assert split.x.shape[-1] == task.input_size >= 2 and split.y.shape[-1] == task.output_size >= 1
    return task


@SETTINGS
@given(rows=st.lists(st.tuples(cells, cells, cells, cells), min_size=0, max_size=60),
       header=st.sampled_from(["a,b,c,t", "\ufeffa,b,c,t", "a,b,c", "a,a,c,t", "", "a;b;c;t"]),
       seq_len=st.integers(1, 12), with_time=st.booleans())
def test_csv_files_give_a_clean_error_or_finite_windows(tmp_path_factory, rows, header, seq_len, with_time):
    path = tmp_path_factory.mktemp("csv") / "d.csv"
    path.write_text(header + "\n" + "\n".join(",".join(r) for r in rows) + "\n", encoding="utf-8")
    _check(path, seq_len=seq_len, time="t" if with_time else None)


def test_clean_csv_keeps_its_values(tmp_path):
    """The positive case the property test leans on: a clean file's values come back exactly."""
    rng = np.random.default_rng(0)
    data = rng.standard_normal((200, 3))
    t = np.cumsum(rng.uniform(0.01, 0.05, 200))
    path = tmp_path / "d.csv"
    path.write_text("\ufeffa,b,c,t\n" + "\n".join(",".join(repr(float(v)) for v in (*r, tt)) for r, tt in zip(data, t)))
    task = _check(path, seq_len=10, time="t", normalize=False)
    assert task is not None
    np.testing.assert_allclose(task.train.x[0], data[:10, :2], rtol=1e-6)
    np.testing.assert_allclose(task.train.dt[0, 1:].ravel(), np.diff(t[:10]), rtol=1e-5)


def _npz_bytes(arrays: dict) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


arrays = st.one_of(
    st.integers(0, 80).map(lambda n: np.random.default_rng(n).standard_normal(n)),
    st.integers(0, 80).map(lambda n: np.random.default_rng(n).standard_normal((n, 2))),
    st.sampled_from([np.array([1 + 2j, 3j]), np.array(["x", "y"]), np.array([True, False]),
                     np.full(30, np.nan), np.full(30, 1e39), np.zeros((3, 3, 3)), np.zeros(0)]))


@SETTINGS
@given(a=arrays, b=arrays, c=arrays, damage=st.one_of(st.none(), st.integers(0, 10_000)),
       cut=st.one_of(st.none(), st.integers(0, 2000)))
def test_npz_files_give_a_clean_error_or_finite_windows(tmp_path_factory, a, b, c, damage, cut):
    raw = bytearray(_npz_bytes({"a": a, "b": b, "c": c}))
    if damage is not None and raw:
        raw[damage % len(raw)] ^= 0x5A
    if cut is not None:
        raw = raw[: min(cut, len(raw))]
    path = tmp_path_factory.mktemp("npz") / "d.npz"
    path.write_bytes(bytes(raw))
    _check(path, seq_len=4)


def test_npz_header_claiming_huge_arrays_is_refused_before_allocating(tmp_path):
    """A .npy header inside the zip that claims 1e10 floats: refused from the header."""
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f8", "fortran_order": False, "shape": (10 ** 10,)})
    with zipfile.ZipFile(tmp_path / "d.npz", "w") as z:
        z.writestr("a.npy", buf.getvalue() + b"\0" * 64)
        z.writestr("b.npy", buf.getvalue())
        z.writestr("c.npy", buf.getvalue())
    with pytest.raises(ValueError):
        load_series(tmp_path / "d.npz", inputs="a,b", targets="c")
