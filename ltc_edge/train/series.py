"""A user's own time series (csv / npz) as a regression task (numpy only).

Files are read through ltc_edge.fileio (regular files only: a FIFO or a /dev/zero link is
refused, never read) under size limits, and every npz array is checked from its .npy header
(dtype, shape, bytes actually present) before numpy allocates anything for it.
"""

from __future__ import annotations

import csv
import io
import math
import os
import zipfile
from array import array
from pathlib import Path

import numpy as np

from ..fileio import LIMITS, MiB, open_regular, read_bytes
from .taskdata import Split, TaskData, dt_summary

MAX_CSV_BYTES = 256 * MiB      # text and float64 columns are held at once: ~3x this in memory
MAX_ARRAY_BYTES = 1024 * MiB   # all arrays of one npz together, uncompressed
MAX_WINDOW_BYTES = 2048 * MiB  # the windowed float32 splits together (small strides copy a lot)
NUMERIC_KINDS = "iuf"          # complex, bool, object, strings, dates: refused, never cast


def _parse_list(spec, what):
    if spec is None:
        return []
    if isinstance(spec, (list, tuple)):
        items = [str(s) for s in spec]
    else:
        items = [s.strip() for s in str(spec).split(",")]
    items = [s for s in items if s]
    if not items and what != "time":
        raise ValueError(f"no {what} columns given")
    return items


# -------------------------------------------------------------------------------------- csv


def _csv_text(path: Path) -> str:
    raw = read_bytes(path, "data file", MAX_CSV_BYTES)
    try:
        return raw.decode("utf-8-sig")  # a spreadsheet's byte-order mark is not part of the header
    except UnicodeDecodeError:
        raise ValueError(f"{path}: not a UTF-8 text CSV file") from None


def _parse_csv(path: Path, reader) -> tuple[list[str], list]:
    """Header and one float64 array('d') per column (None once a value is not a number), parsed
    row by row so that no list of strings the size of the file is ever held."""
    header = next((r for r in reader if r), None)
    if header is None:
        raise ValueError(f"{path}: needs a header line and at least one data row")
    header = [h.strip() for h in header]
    cols: list = [array("d") for _ in header]
    for r in reader:
        if not r:
            continue
        if len(r) != len(header):
            raise ValueError(f"{path}: line {reader.line_num} has {len(r)} fields, the header has {len(header)}")
        for j, v in enumerate(r):
            if cols[j] is not None:
                try:
                    cols[j].append(float(v) if v.strip() != "" else math.nan)
                except ValueError:
                    cols[j] = None  # non-numeric column: usable only if not selected
    return header, cols


def read_csv_columns(path) -> dict[str, np.ndarray | None]:
    """Columns of a csv with a header line, float64 (None for a non-numeric column)."""
    path = Path(path)
    try:
        header, cols = _parse_csv(path, csv.reader(io.StringIO(_csv_text(path), newline="")))
    except csv.Error as e:
        raise ValueError(f"{path}: not a readable CSV file ({e})") from None
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise ValueError(f"{path}: column name(s) {', '.join(map(repr, dup))} appear more than once in the header")
    if all(c is not None and len(c) == 0 for c in cols):
        raise ValueError(f"{path}: needs a header line and at least one data row")
    return {h: None if c is None else np.frombuffer(c, dtype=np.float64) for h, c in zip(header, cols)}


# -------------------------------------------------------------------------------------- npz


def _npy_header(buf: io.BytesIO, path, name):
    """(shape, dtype) from a .npy header; ValueError if it is not one."""
    fmt = np.lib.format
    try:
        version = fmt.read_magic(buf)
        reader = {(1, 0): fmt.read_array_header_1_0, (2, 0): fmt.read_array_header_2_0}.get(version)
        if reader is None:
            raise ValueError(f".npy format version {version}")
        shape, _, dtype = reader(buf)
    except ValueError as e:
        raise ValueError(f"{path}: member {name!r} is not a readable .npy array ({e})") from None
    return shape, dtype


def _read_member(zf: zipfile.ZipFile, info: zipfile.ZipInfo, path, budget: int) -> np.ndarray:
    key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
    if info.file_size > budget:
        raise ValueError(f"{path}: array {key!r} is {info.file_size / MiB:.0f} MiB; all arrays together "
                         f"may be at most {MAX_ARRAY_BYTES / MiB:.0f} MiB")
    with zf.open(info) as f:  # yields at most file_size bytes, whatever the stream holds
        buf = io.BytesIO(f.read(info.file_size))
    shape, dtype = _npy_header(buf, path, key)
    if dtype.kind not in NUMERIC_KINDS:
        raise ValueError(f"{path}: array {key!r} has dtype {dtype}; use integer or real float arrays")
    need = math.prod(shape) * dtype.itemsize
    if need > len(buf.getbuffer()) - buf.tell():
        raise ValueError(f"{path}: array {key!r} claims shape {shape} ({need} bytes) but the file holds less")
    buf.seek(0)
    return np.load(buf, allow_pickle=False)


def _npz_arrays(path: Path) -> dict[str, np.ndarray]:
    fd = open_regular(path, "data file", LIMITS["data"])
    with os.fdopen(fd, "rb") as f:
        try:
            zf = zipfile.ZipFile(f)
        except zipfile.BadZipFile:
            raise ValueError(f"{path}: not an npz archive (np.savez writes one; a .npy file is not)") from None
        arrays, budget = {}, MAX_ARRAY_BYTES
        with zf:
            for info in zf.infolist():
                try:
                    a = _read_member(zf, info, path, budget)
                except (zipfile.BadZipFile, EOFError, OSError, NotImplementedError) as e:
                    raise ValueError(f"{path}: corrupt npz member {info.filename!r} ({e})") from None
                budget -= info.file_size
                arrays[info.filename[:-4] if info.filename.endswith(".npy") else info.filename] = a
    return arrays


def read_npz_columns(path) -> dict[str, np.ndarray]:
    """An npz's 1-D arrays as columns; a 2-D array k also as columns k[0], k[1], ..."""
    path = Path(path)
    out = {}
    for k, a in _npz_arrays(path).items():
        if a.ndim == 1:
            out[k] = a.astype(np.float64)
        elif a.ndim == 2:
            for j in range(a.shape[1]):
                out[f"{k}[{j}]"] = a[:, j].astype(np.float64)
            out[k] = a.astype(np.float64)
        else:
            raise ValueError(f"{path}: array {k!r} has {a.ndim} dimensions; use 1-D or 2-D arrays")
    return out


# -------------------------------------------------------------------------------------- selecting


def _column(cols: dict, n: str, path, what) -> tuple[str, np.ndarray]:
    plain = [k for k in cols if "[" not in k]
    key = n
    if n not in cols and n.lstrip("-").isdigit():
        i = int(n)
        if not -len(plain) <= i < len(plain):
            raise ValueError(f"{path}: {what} column index {i} out of range (0..{len(plain) - 1})")
        key = plain[i]
    if key not in cols:
        raise ValueError(f"{path}: {what} column {n!r} not found (columns: {', '.join(plain)})")
    a = cols[key]
    if a is None:
        raise ValueError(f"{path}: {what} column {key!r} is not numeric")
    a = a[:, None] if a.ndim == 1 else a
    bad = np.argwhere(~np.isfinite(a.astype(np.float32)))  # what the model will see
    if len(bad):
        raise ValueError(f"{path}: {what} column {key!r} has a NaN, empty, infinite or out-of-float32-range "
                         f"value at row {bad[0][0]}")
    return key, a


def _select(cols: dict, names: list[str], path, what) -> tuple[np.ndarray, list[str]]:
    picked, labels = [], []
    for n in names:
        key, a = _column(cols, n, path, what)
        if picked and len(a) != len(picked[0]):
            raise ValueError(f"{path}: {what} column {key!r} has {len(a)} rows, {labels[0]!r} has "
                             f"{len(picked[0])}; all selected columns must have the same length")
        picked.append(a)
        labels += [key] if a.shape[1] == 1 else [f"{key}[{j}]" for j in range(a.shape[1])]
    return np.concatenate(picked, axis=1), labels


def _time_deltas(cols, time, path, rows: int) -> np.ndarray:
    t, _ = _select(cols, [time], path, "time")
    t = t[:, 0]
    if len(t) != rows:
        raise ValueError(f"{path}: time column {time!r} has {len(t)} rows, the inputs have {rows}")
    d = np.diff(t)
    if (d <= 0).any():
        i = int(np.argmax(d <= 0)) + 1
        raise ValueError(f"{path}: time column {time!r} must increase strictly (row {i})")
    dt = np.concatenate([[np.median(d)] if len(d) else [1.0], d]).astype(np.float32)
    if not (np.isfinite(dt) & (dt > 0)).all():
        raise ValueError(f"{path}: time column {time!r} has steps that are 0 or infinite in float32; rescale it")
    return dt


# -------------------------------------------------------------------------------------- windows


def check_split(split) -> np.ndarray:
    """Chronological train, valid, test fractions: three finite numbers in (0, 1), sum <= 1."""
    try:
        fr = np.asarray(split, dtype=float)
    except (TypeError, ValueError):
        fr = np.zeros(0)
    if fr.shape != (3,) or not np.isfinite(fr).all() or (fr <= 0).any() or (fr >= 1).any() \
            or fr.sum() > 1 + 1e-9:
        raise ValueError(f"split must be three fractions in (0, 1) that sum to at most 1, like 0.7,0.15,0.15; "
                         f"got {split}")
    return fr


def _split_bounds(fr: np.ndarray, rows: int) -> list[tuple[int, int]]:
    b = np.minimum(np.round(np.cumsum(fr) * rows).astype(int), rows)
    return [(0, int(b[0])), (int(b[0]), int(b[1])), (int(b[1]), int(b[2]))]


def _check_window_memory(parts, seq_len, stride, width, path):
    n = sum(len(range(a, b - seq_len + 1, stride)) for a, b in parts)
    need = n * seq_len * width * 4
    if need > MAX_WINDOW_BYTES:
        raise ValueError(f"{path}: {n} windows of {seq_len} steps need {need / MiB:.0f} MiB, more than "
                         f"{MAX_WINDOW_BYTES / MiB:.0f} MiB; use a larger --stride or a shorter --seq-len")


def _windows(x, y, dt, a, b, seq_len, stride, path) -> Split:
    starts = range(a, b - seq_len + 1, stride)
    if not starts:
        raise ValueError(f"{path}: a split of {b - a} rows is shorter than --seq-len {seq_len}; "
                         "use a shorter --seq-len or a different --split")
    xs = np.stack([x[s:s + seq_len] for s in starts]).astype(np.float32)
    ys = np.stack([y[s:s + seq_len] for s in starts]).astype(np.float32)
    ds = None if dt is None else np.stack([dt[s:s + seq_len] for s in starts])
    return Split(xs, ys, ds)


def _normalization(x, y) -> dict:
    sx, sy = x.std(0), y.std(0)
    return {"input_mean": x.mean(0).astype(np.float32).tolist(),
            "input_std": np.where(sx < 1e-8, 1.0, sx).astype(np.float32).tolist(),
            "output_mean": y.mean(0).astype(np.float32).tolist(),
            "output_std": np.where(sy < 1e-8, 1.0, sy).astype(np.float32).tolist()}


# -------------------------------------------------------------------------------------- the task


def _read_columns(path: Path, fmt: str | None):
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt not in ("csv", "npz"):
        raise ValueError(f"{path}: unknown data format {fmt!r} (use .csv or .npz)")
    return fmt, (read_csv_columns(path) if fmt == "csv" else read_npz_columns(path))


def _window_options(seq_len, stride) -> tuple[int, int]:
    seq_len = int(seq_len)
    stride = max(1, seq_len // 2) if stride is None else int(stride)
    if seq_len < 1 or stride < 1:
        raise ValueError(f"seq_len and stride must be >= 1, got {seq_len} and {stride}")
    return seq_len, stride


def load_series(data: str | os.PathLike, inputs, targets, time: str | None = None, seq_len: int = 32,
                stride: int | None = None, split=(0.7, 0.15, 0.15), normalize: bool = True,
                fmt: str | None = None) -> TaskData:
    """A user's own time series (csv with a header line, or npz of 1-D/2-D arrays).

    inputs/targets: column names or 0-based indices ("a,b" or a list). time: optional column
    of timestamps; dt = its difference (irregular sampling; the first row uses the median
    dt) is passed to the model per step. The series is split chronologically (train, valid,
    test fractions of the rows; rows past their sum are unused), then each part is cut into
    windows of seq_len (stride defaults to seq_len // 2). Targets are predicted at every step.
    Mean/std of the training part go into the model's normalization, so the saved model takes
    raw inputs and gives raw outputs.
    """
    path = Path(data)
    seq_len, stride = _window_options(seq_len, stride)
    fr = check_split(split)
    with np.errstate(all="ignore"):  # bad values are reported by row below, not as warnings
        fmt, cols = _read_columns(path, fmt)
        x, in_labels = _select(cols, _parse_list(inputs, "input"), path, "input")
        y, out_labels = _select(cols, _parse_list(targets, "target"), path, "target")
        if len(y) != len(x):
            raise ValueError(f"{path}: the targets have {len(y)} rows, the inputs {len(x)}; they must match")
        dt = _time_deltas(cols, time, path, len(x)) if time else None
        parts = _split_bounds(fr, len(x))
        _check_window_memory(parts, seq_len, stride, x.shape[1] + y.shape[1] + (dt is not None), path)
        tr, va, te = (_windows(x, y, dt, a, b, seq_len, stride, path) for a, b in parts)
        norm = _normalization(x[: parts[0][1]], y[: parts[0][1]]) if normalize else None
    return TaskData(fmt, "regression", "mse", tr, va, te, input_size=x.shape[1], output_size=y.shape[1],
                    normalization=norm,
                    defaults={"epochs": 50, "batch_size": 16, "grad_clip": 1.0,
                              "lr": {"ltc": 0.01, "default": 0.003}},
                    info={"data": str(path), "inputs": in_labels, "targets": out_labels, "time": time,
                          "seq_len": seq_len, "stride": stride, "split": fr.tolist(),
                          # the training rows' own time steps (row 0 has none: its dt is a stand-in)
                          "train_dt": dt_summary(dt[1:parts[0][1]] if dt is not None and parts[0][1] > 1 else 1.0)},
                    streams={name: [_contiguous(x, y, dt, a, b)]
                             for name, (a, b) in zip(("train", "valid", "test"), parts)})


def _contiguous(x, y, dt, a, b) -> Split:
    """Rows a..b as one sequence (streaming: the state carried over the whole split, each row
    with its true dt)."""
    return Split(x[None, a:b].astype(np.float32), y[None, a:b].astype(np.float32),
                 None if dt is None else dt[None, a:b].astype(np.float32))
