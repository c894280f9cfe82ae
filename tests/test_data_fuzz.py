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


KINDS = {"": "empty or NaN", "nan": "empty or NaN", "inf": "infinite", "-inf": "infinite",
         "1e39": "beyond float32's range", "x": "non-numeric"}


def _lines(found: list) -> str:
    more = f" (and {len(found) - 3} more)" if len(found) > 3 else ""
    return f"line{'s' if len(found) > 1 else ''} {', '.join(map(str, found[:3]))}{more}"


@SETTINGS
@given(n=st.integers(20, 50), bad=st.dictionaries(st.integers(0, 49), st.sampled_from(sorted(KINDS)), max_size=9),
       blanks=st.sets(st.integers(0, 49), max_size=5))
def test_csv_problems_are_named_at_their_file_lines(tmp_path_factory, n, bad, blanks):
    """Wherever bad cells and blank lines fall, the message names the first three file lines of
    each kind of problem (the header is line 1) and counts the rest; a clean file loads."""
    lines, where = ["a,b,c"], {}
    for i in range(n):
        if i in blanks:
            lines.append("")
        lines.append(f"{i}.5,{bad.get(i, f'{i}.75')},{i}.25")
        if i in bad:
            where.setdefault(KINDS[bad[i]], []).append(len(lines))
    path = tmp_path_factory.mktemp("csv") / "d.csv"
    path.write_text("\n".join(lines) + "\n")
    if not where:
        assert load_series(path, inputs="a,b", targets="c", seq_len=1).train.x.shape[1:] == (1, 2)
        return
    with pytest.raises(ValueError) as e:
        load_series(path, inputs="a,b", targets="c", seq_len=1)
    msg = str(e.value)
    if "non-numeric" in where:  # the column is unusable: only its text cells are named
        found = where["non-numeric"]
        cells = ", ".join(f"'x' at line {ln}" for ln in found[:3])
        assert msg == f"{path}: input column 'b' is not numeric: {cells}" + \
            (f" ({len(found)} such cells)" if len(found) > 3 else "")
        return
    want = [f"input column 'b' has {kind} values at {_lines(where[kind])}"
            for kind in ("empty or NaN", "infinite", "beyond float32's range") if kind in where]
    assert msg == f"{path}: " + "; ".join(want)


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


def test_npz_whose_central_directory_claims_a_future_zip_version(tmp_path):
    """A damaged byte in the central directory ("zip file version 11.9": zipfile raises
    NotImplementedError from the constructor): one clean ValueError, as for other damage."""
    raw = bytearray(_npz_bytes({"a": np.zeros(8), "b": np.zeros(8), "c": np.zeros(8)}))
    cd = raw.rfind(b"PK\x01\x02")
    raw[cd + 6] = 119  # the first member's "version needed to extract"
    path = tmp_path / "d.npz"
    path.write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="not an npz archive"):
        load_series(path, inputs="a,b", targets="c")


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
