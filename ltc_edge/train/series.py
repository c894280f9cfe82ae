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
from dataclasses import dataclass, field
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


SHOWN = 3  # problem cells / lines named per kind of problem; the rest are counted


@dataclass
class Columns:
    """A data file's columns, and where each row came from (for messages a user can find in
    the file). data: name -> float64 array, None for a csv column with a non-numeric cell;
    lines: csv only, each row's line in the file (1-based, the header is line 1); text: csv
    only, name -> [count, [(line, cell), ...]] of its non-numeric cells (the first SHOWN)."""
    data: dict
    lines: np.ndarray | None = None
    text: dict = field(default_factory=dict)

    def at(self, rows) -> str:
        """Rows (0-based indices into the columns) as the user finds them: "lines 7, 9, 12 (and
        4 more)" in a csv, "rows 5, 7 (0-based)" in an npz."""
        rows = [int(r) for r in rows]
        csv_file = self.lines is not None
        shown = [int(self.lines[r]) if csv_file else r for r in rows[:SHOWN]]
        word = ("line" if csv_file else "row") + ("s" if len(rows) > 1 else "")
        more = f" (and {len(rows) - SHOWN} more)" if len(rows) > SHOWN else ""
        return f"{word} {', '.join(map(str, shown))}{'' if csv_file else ' (0-based)'}{more}"


def _note(tally: dict, key, line: int, what) -> None:
    """Count one problem under key, keeping the first SHOWN (line, what)."""
    entry = tally.setdefault(key, [0, []])
    entry[0] += 1
    if len(entry[1]) < SHOWN:
        entry[1].append((line, what))


def _header(path: Path, reader) -> list[str]:
    header = next((r for r in reader if r), None)
    if header is None:
        raise ValueError(f"{path}: needs a header line and at least one data row")
    header = [h.strip() for h in header]
    dup = sorted({h for h in header if header.count(h) > 1})
    if dup:
        raise ValueError(f"{path}: column name(s) {', '.join(map(repr, dup))} appear more than once in the header")
    return header


def _parse_csv(path: Path, reader) -> Columns:
    """One float64 array('d') per column (None once a value is not a number), parsed row by row
    so that no list of strings the size of the file is ever held; the first few non-numeric
    cells and ragged lines are kept with their line numbers for the message."""
    header = _header(path, reader)
    cols: list = [array("d") for _ in header]
    lines, text, ragged = array("q"), {}, {}
    last = reader.line_num
    for r in reader:
        line, last = last + 1, reader.line_num  # the record's first line (a quoted field may span lines)
        if not r:
            continue
        if len(r) != len(header):
            _note(ragged, "ragged", line, len(r))
            continue
        lines.append(line)
        for j, v in enumerate(r):
            try:
                value = float(v) if v.strip() != "" else math.nan
            except ValueError:
                _note(text, header[j], line, v)
                cols[j] = None  # non-numeric column: usable only if not selected
                continue
            if cols[j] is not None:
                cols[j].append(value)
    if ragged:
        count, first = ragged["ragged"]
        more = f" (and {count - SHOWN} more)" if count > SHOWN else ""
        raise ValueError(f"{path}: line{'s' if count > 1 else ''} "
                         f"{', '.join(f'{ln} ({n} fields)' for ln, n in first)}{more}: the header has "
                         f"{len(header)} fields")
    return Columns(dict(zip(header, cols)), np.frombuffer(lines, dtype=np.int64), text)


def read_csv_columns(path) -> Columns:
    """Columns of a csv with a header line, float64 (None for a non-numeric column)."""
    path = Path(path)
    try:
        parsed = _parse_csv(path, csv.reader(io.StringIO(_csv_text(path), newline="")))
    except csv.Error as e:
        raise ValueError(f"{path}: not a readable CSV file ({e})") from None
    if not len(parsed.lines):
        raise ValueError(f"{path}: needs a header line and at least one data row")
    parsed.data = {h: None if c is None else np.frombuffer(c, dtype=np.float64) for h, c in parsed.data.items()}
    return parsed


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
        except (zipfile.BadZipFile, NotImplementedError, EOFError, ValueError):  # damaged: "zip file version 11.9"
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


def read_npz_columns(path) -> Columns:
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
    return Columns(out)


# -------------------------------------------------------------------------------------- selecting


def _column(cols: Columns, n: str, path, what) -> tuple[str, np.ndarray | None]:
    """(name, [rows, k] float64 column, None if not numeric) of a column given by name or index."""
    plain = [k for k in cols.data if "[" not in k]
    key = n
    if n not in cols.data and n.lstrip("-").isdigit():
        i = int(n)
        if not -len(plain) <= i < len(plain):
            raise ValueError(f"{path}: {what} column index {i} out of range (0..{len(plain) - 1})")
        key = plain[i]
    if key not in cols.data:
        raise ValueError(f"{path}: {what} column {n!r} not found (columns: {', '.join(plain)})")
    a = cols.data[key]
    return key, (None if a is None else a[:, None] if a.ndim == 1 else a)


# what the model would see in float32, by kind: each kind's first few rows are reported
_BAD_VALUES = {"empty or NaN": np.isnan, "infinite": np.isinf,
               "beyond float32's range": lambda a: np.isfinite(a) & ~np.isfinite(a.astype(np.float32))}


def _problems(cols: Columns, key: str, a, what: str) -> list[str]:
    """The column's bad values, one phrase per kind (non-numeric, NaN, infinite, too large)."""
    if a is None:
        count, first = cols.text.get(key, [0, []])
        cells = ", ".join(f"{v!r} at line {ln}" for ln, v in first)
        return [f"{what} column {key!r} is not numeric: {cells}" + (f" ({count} such cells)" if count > SHOWN else "")]
    out = []
    for kind, test in _BAD_VALUES.items():
        rows = np.nonzero(test(a).any(axis=1))[0]
        if len(rows):
            out.append(f"{what} column {key!r} has {kind} values at {cols.at(rows)}")
    return out


def _select(cols: Columns, names: list[str], path, what, problems: list) -> tuple[np.ndarray, list[str]]:
    """The named columns side by side; their bad values are appended to `problems`."""
    picked, labels = [], []
    for n in names:
        key, a = _column(cols, n, path, what)
        problems += _problems(cols, key, a, what)
        if a is None:
            a = np.zeros((len(cols.lines), 1))  # stands in until the problems are reported
        if picked and len(a) != len(picked[0]):
            raise ValueError(f"{path}: {what} column {key!r} has {len(a)} rows, {labels[0]!r} has "
                             f"{len(picked[0])}; all selected columns must have the same length")
        picked.append(a)
        labels += [key] if a.shape[1] == 1 else [f"{key}[{j}]" for j in range(a.shape[1])]
    return np.concatenate(picked, axis=1), labels


def _time_deltas(cols: Columns, time, path, rows: int, problems: list) -> np.ndarray | None:
    """dt per row from the time column (None if it has problems, which go to `problems`)."""
    found = []
    t, _ = _select(cols, [time], path, "time", found)
    t = t[:, 0]
    if len(t) != rows:
        raise ValueError(f"{path}: time column {time!r} has {len(t)} rows, the inputs have {rows}")
    d = np.diff(t)
    back = np.nonzero(d <= 0)[0] + 1
    if len(back) and not found:
        found.append(f"time column {time!r} does not increase strictly at {cols.at(back)}")
    problems += found
    if found:
        return None
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
                         f"{MAX_WINDOW_BYTES / MiB:.0f} MiB; use a larger stride or a shorter window "
                         "(`ltc train --stride N --seq-len N`)")


def _windows(x, y, dt, a, b, seq_len, stride, path) -> Split:
    starts = range(a, b - seq_len + 1, stride)
    if not starts:
        raise ValueError(f"{path}: a split of {b - a} rows is shorter than the {seq_len}-step window; use more "
                         "rows, or a shorter window or another split (`ltc train --seq-len N --split A,B,C`)")
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
    problems: list[str] = []
    with np.errstate(all="ignore"):  # bad values are reported by line below, not as warnings
        fmt, cols = _read_columns(path, fmt)
        x, in_labels = _select(cols, _parse_list(inputs, "input"), path, "input", problems)
        y, out_labels = _select(cols, _parse_list(targets, "target"), path, "target", problems)
        if len(y) != len(x):
            raise ValueError(f"{path}: the targets have {len(y)} rows, the inputs {len(x)}; they must match")
        dt = _time_deltas(cols, time, path, len(x), problems) if time else None
        if problems:  # every kind of problem at once, each with its first few lines
            raise ValueError(f"{path}: " + "; ".join(problems))
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
                          "train_dt": dt_summary(dt[1:parts[0][1]] if dt is not None and parts[0][1] > 1 else 1.0),
                          "warnings": _doubts(cols, time, in_labels, parts, (va, te), path)},
                    streams={name: [_contiguous(x, y, dt, a, b)]
                             for name, (a, b) in zip(("train", "valid", "test"), parts)})


MIN_EVAL_WINDOWS = 5  # fewer valid / test windows than this: a metric too noisy to compare models by


def _doubts(cols: Columns, time, in_labels, parts, held_out, path) -> list[str]:
    """What load_series accepts but a user should hear about (`ltc train` prints these on
    stderr): the timestamp column also fed as an input, a valid / test split of a few windows."""
    out = []
    if time and _column(cols, time, path, "time")[0] in in_labels:
        out.append(f"the time column {time!r} is also an input: the model sees raw timestamps, which only "
                   "grow and never repeat in deployment (dt already reaches it); leave it out of --inputs")
    for name, (a, b), split in zip(("valid", "test"), parts[1:], held_out):
        if len(split) < MIN_EVAL_WINDOWS:
            out.append(f"the {name} split is {b - a} rows ({len(split)} window{'s' if len(split) > 1 else ''}): "
                       "its metric is a noisy estimate; use more rows or a larger --split fraction")
    return out


def _contiguous(x, y, dt, a, b) -> Split:
    """Rows a..b as one sequence (streaming: the state carried over the whole split, each row
    with its true dt)."""
    return Split(x[None, a:b].astype(np.float32), y[None, a:b].astype(np.float32),
                 None if dt is None else dt[None, a:b].astype(np.float32))
