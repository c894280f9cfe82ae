"""Training tasks, all offline: a small registry name -> loader.

Every loader returns a `TaskData` with .train / .valid / .test splits (each a `Split` with
x [N, T, in] float32, y and dt [N, T] float32 or None), the task type (regression or
classification), the metric and default training settings. Regression targets are
[N, T, out] float32 (a prediction per step); classification targets are [N] int64 labels
read from the last step. Only numpy is needed here (scikit-learn for digits, gymnasium for
pendulum); torch is not imported.

Export and runtime helpers: `load_task(name, **opts)` and `TaskData.calibration_inputs()`.
"""

from __future__ import annotations

import csv as _csv
import gzip
import os
import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian: dataset-fashion-mnist


@dataclass
class Split:
    x: np.ndarray                    # [N, T, in] float32
    y: np.ndarray                    # [N, T, out] float32 (regression) or [N] int64 (classification)
    dt: np.ndarray | None = None     # [N, T] float32 elapsed time per step, None = 1.0

    def __len__(self):
        return int(self.x.shape[0])


@dataclass
class TaskData:
    name: str
    kind: str                        # "regression" or "classification"
    metric: str                      # "mse" or "accuracy"
    train: Split
    valid: Split
    test: Split
    input_size: int
    output_size: int                 # regression: target columns; classification: classes
    normalization: dict | None = None  # goes into the model config (raw in, raw out)
    defaults: dict = field(default_factory=dict)  # epochs, batch_size, grad_clip, lr{model}
    info: dict = field(default_factory=dict)       # provenance, options, column names

    @property
    def higher_is_better(self) -> bool:
        return self.metric == "accuracy"

    def calibration_inputs(self, n: int = 64, seed: int = 0, split: str = "valid"):
        """Held-out input sequences for quantisation calibration and drift checks:
        (x [n, T, in] float32, dt [n, T] float32 or None), drawn without replacement
        (seeded) from the validation split (never the training data)."""
        s = getattr(self, split)
        idx = np.random.default_rng(seed).permutation(len(s))[: min(n, len(s))]
        idx.sort()
        return s.x[idx], (None if s.dt is None else s.dt[idx])


def _check_finite(name, **arrays):
    for k, a in arrays.items():
        if a is not None and a.dtype.kind == "f" and not np.isfinite(a).all():
            raise ValueError(f"{name}: {k} contains NaN or infinite values")


# --------------------------------------------------------------------------------------
# cheetah (the LTC paper's protocol, raminmh/liquid_time_constant_networks cheetah.py)


def cut_windows(arr: np.ndarray, seq_len: int, stride: int):
    """The paper's cut_in_sequences: starts 0, stride, ... < len - seq_len - 1; the target is
    the next observation (x[t+1])."""
    xs, ys = [], []
    for s in range(0, arr.shape[0] - seq_len - 1, stride):
        xs.append(arr[s:s + seq_len])
        ys.append(arr[s + 1:s + seq_len + 1])
    return xs, ys


def load_cheetah(seq_len: int = 32, stride: int = 10, path: str | os.PathLike | None = None) -> TaskData:
    """HalfCheetah next-observation prediction, the LTC paper's protocol (no normalisation):
    sorted traces, valid = 0-4, test = 5-14, train = 15-24, windows of 32 with stride 10."""
    path = Path(path) if path else DATA_DIR / "cheetah.npz"
    if not path.is_file():
        raise FileNotFoundError(f"cheetah data not found at {path} (it ships inside the package)")
    with np.load(path) as z:
        traces = [z[k].astype(np.float32) for k in sorted(z.files)]

    def split(files):
        xs, ys = [], []
        for arr in files:
            x, y = cut_windows(arr, seq_len, stride)
            xs += x
            ys += y
        return Split(np.stack(xs), np.stack(ys))

    return TaskData("cheetah", "regression", "mse", train=split(traces[15:25]), valid=split(traces[0:5]),
                    test=split(traces[5:15]), input_size=17, output_size=17, normalization=None,
                    defaults={"epochs": 200, "batch_size": 16, "grad_clip": None,
                              "lr": {"ltc": 0.01, "default": 0.001}},
                    info={"source": "raminmh/liquid_time_constant_networks (Apache-2.0)",
                          "files": {"valid": "0-4", "test": "5-14", "train": "15-24"},
                          "seq_len": seq_len, "stride": stride})


# --------------------------------------------------------------------------------------
# image rows as sequences


def _seeded_split(n, seed, valid_frac, test_frac):
    perm = np.random.default_rng(seed).permutation(n)
    n_test, n_valid = int(round(n * test_frac)), int(round(n * valid_frac))
    return perm[n_test + n_valid:], perm[n_test:n_test + n_valid], perm[:n_test]


def load_digits(seed: int = 0) -> TaskData:
    """scikit-learn's 8x8 digits, read row by row (8 steps of 8 pixels); the label is read
    from the last step. Fixed seeded split: 70% train, 10% valid, 20% test."""
    from sklearn.datasets import load_digits as _ld

    d = _ld()
    x = d.images.astype(np.float32)              # [1797, 8, 8], values 0..16
    y = d.target.astype(np.int64)
    tr, va, te = _seeded_split(len(y), seed, 0.1, 0.2)
    return TaskData("digits", "classification", "accuracy", Split(x[tr], y[tr]), Split(x[va], y[va]),
                    Split(x[te], y[te]), input_size=8, output_size=10,
                    # pixels 0..16 -> 0..1: the range ncps's sensory synapse init expects
                    normalization={"input_mean": [0.0] * 8, "input_std": [16.0] * 8,
                                   "output_mean": None, "output_std": None},
                    defaults={"epochs": 100, "batch_size": 32, "grad_clip": 1.0,
                              "lr": {"ltc": 0.01, "default": 0.003}},
                    info={"source": "sklearn.datasets.load_digits", "split_seed": seed})


def read_idx(path) -> np.ndarray:
    """An IDX file (MNIST format, optionally .gz) as a numpy array."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    if len(data) < 4 or data[0] != 0 or data[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise ValueError(f"{path}: unknown IDX data type 0x{data[2]:02x}")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    dtype = np.dtype(dtypes[data[2]])
    expected = int(np.prod(dims)) * dtype.itemsize
    body = data[4 + 4 * ndim:]
    if len(body) != expected:
        raise ValueError(f"{path}: IDX header says {dims} ({expected} bytes) but holds {len(body)} bytes")
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _find_idx(data_dir: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        for p in (data_dir / name, *data_dir.glob(f"**/{name}")):
            if p.is_file():
                return p
    raise FileNotFoundError(f"Fashion-MNIST file {stem}[.gz] not found under {data_dir}; "
                            "install it with `apt-get install dataset-fashion-mnist` or pass --data-dir")


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, seed: int = 0, limit: int | None = None) -> TaskData:
    """Fashion-MNIST from IDX files (default: Debian's dataset-fashion-mnist package),
    28 rows as a 28-step sequence. valid = a seeded 10% of the training set;
    test = the official test set. `limit` keeps the first n training images (quick runs)."""
    data_dir = Path(data_dir) if data_dir else FASHION_MNIST_DIR
    if not data_dir.is_dir():
        raise FileNotFoundError(f"Fashion-MNIST not found at {data_dir}: install it with "
                                "`apt-get install dataset-fashion-mnist` or pass --data-dir")
    xtr = read_idx(_find_idx(data_dir, "train-images-idx3-ubyte")).astype(np.float32)
    ytr = read_idx(_find_idx(data_dir, "train-labels-idx1-ubyte")).astype(np.int64)
    xte = read_idx(_find_idx(data_dir, "t10k-images-idx3-ubyte")).astype(np.float32)
    yte = read_idx(_find_idx(data_dir, "t10k-labels-idx1-ubyte")).astype(np.int64)
    if xtr.ndim != 3 or len(xtr) != len(ytr) or xte.ndim != 3 or len(xte) != len(yte):
        raise ValueError(f"{data_dir}: image and label files do not match")
    if limit:
        xtr, ytr = xtr[:limit], ytr[:limit]
    perm = np.random.default_rng(seed).permutation(len(ytr))
    nv = max(1, len(ytr) // 10)
    va, tr = perm[:nv], perm[nv:]
    norm = {"input_mean": [0.0] * xtr.shape[2], "input_std": [255.0] * xtr.shape[2],
            "output_mean": None, "output_std": None}
    return TaskData("fashion-mnist", "classification", "accuracy", Split(xtr[tr], ytr[tr]),
                    Split(xtr[va], ytr[va]), Split(xte, yte), input_size=xtr.shape[2],
                    output_size=int(max(ytr.max(), yte.max()) + 1), normalization=norm,
                    defaults={"epochs": 10, "batch_size": 128, "grad_clip": 1.0,
                              "lr": {"ltc": 0.01, "default": 0.003}},
                    info={"source": str(data_dir), "split_seed": seed})


# --------------------------------------------------------------------------------------
# user time series: csv / npz


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


def _read_csv_columns(path: Path) -> dict[str, np.ndarray]:
    with open(path, newline="") as f:
        rows = list(_csv.reader(f))
    rows = [r for r in rows if r]
    if len(rows) < 2:
        raise ValueError(f"{path}: needs a header line and at least one data row")
    header = [h.strip() for h in rows[0]]
    cols: dict[str, list] = {h: [] for h in header}
    for i, r in enumerate(rows[1:], start=2):
        if len(r) != len(header):
            raise ValueError(f"{path}: line {i} has {len(r)} fields, the header has {len(header)}")
        for h, v in zip(header, r):
            cols[h].append(v)
    out = {}
    for h, vals in cols.items():
        try:
            out[h] = np.array([float(v) if v.strip() != "" else np.nan for v in vals], dtype=np.float64)
        except ValueError:
            out[h] = None  # non-numeric column: usable only if not selected
    return out


def _read_npz_columns(path: Path) -> dict[str, np.ndarray]:
    out = {}
    with np.load(path) as z:
        for k in z.files:
            a = np.asarray(z[k])
            if a.ndim == 1:
                out[k] = a.astype(np.float64)
            elif a.ndim == 2:
                for j in range(a.shape[1]):
                    out[f"{k}[{j}]"] = a[:, j].astype(np.float64)
                out[k] = a.astype(np.float64)
            else:
                raise ValueError(f"{path}: array {k!r} has {a.ndim} dimensions; use 1-D or 2-D arrays")
    return out


def _select(cols: dict, names: list[str], path, what) -> tuple[np.ndarray, list[str]]:
    keys = list(cols)
    plain = [k for k in keys if "[" not in k]
    picked, labels = [], []
    for n in names:
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
        bad = np.argwhere(~np.isfinite(a))
        if len(bad):
            raise ValueError(f"{path}: {what} column {key!r} has NaN or empty/infinite value at row {bad[0][0]}")
        picked.append(a)
        labels += [key] if a.shape[1] == 1 else [f"{key}[{j}]" for j in range(a.shape[1])]
    return np.concatenate(picked, axis=1), labels


def load_series(data: str | os.PathLike, inputs, targets, time: str | None = None, seq_len: int = 32,
                stride: int | None = None, split=(0.7, 0.15, 0.15), normalize: bool = True,
                fmt: str | None = None) -> TaskData:
    """A user's own time series (csv with a header line, or npz of 1-D/2-D arrays).

    inputs/targets: column names or 0-based indices ("a,b" or a list). time: optional column
    of timestamps; dt = its difference (irregular sampling; the first row uses the median
    dt) is passed to the model per step. The series is split chronologically (train, valid,
    test fractions), then each part is cut into windows of seq_len (stride defaults to
    seq_len // 2). Targets are predicted at every step. Mean/std of the training part go into
    the model's normalization, so the saved model takes raw inputs and gives raw outputs.
    """
    path = Path(data)
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    fmt = fmt or path.suffix.lstrip(".").lower()
    if fmt not in ("csv", "npz"):
        raise ValueError(f"{path}: unknown data format {fmt!r} (use .csv or .npz)")
    cols = _read_csv_columns(path) if fmt == "csv" else _read_npz_columns(path)
    in_names, out_names = _parse_list(inputs, "input"), _parse_list(targets, "target")
    x, in_labels = _select(cols, in_names, path, "input")
    y, out_labels = _select(cols, out_names, path, "target")
    L = x.shape[0]
    if time:
        t, _ = _select(cols, [time], path, "time")
        t = t[:, 0]
        d = np.diff(t)
        if (d <= 0).any():
            i = int(np.argmax(d <= 0)) + 1
            raise ValueError(f"{path}: time column {time!r} must increase strictly (row {i})")
        dt_all = np.concatenate([[np.median(d)], d])
    else:
        dt_all = None
    seq_len = int(seq_len)
    stride = int(stride) if stride else max(1, seq_len // 2)
    if seq_len < 1:
        raise ValueError("seq_len must be >= 1")
    fr = np.asarray(split, dtype=float)
    if fr.shape != (3,) or (fr < 0).any() or fr.sum() <= 0:
        raise ValueError(f"split must be three non-negative fractions, got {split}")
    fr = fr / fr.sum()
    bounds = np.round(np.cumsum(fr) * L).astype(int)
    parts = [(0, bounds[0]), (bounds[0], bounds[1]), (bounds[1], L)]

    def windows(a, b):
        xs, ys, ds = [], [], []
        for s in range(a, b - seq_len + 1, stride):
            xs.append(x[s:s + seq_len])
            ys.append(y[s:s + seq_len])
            if dt_all is not None:
                ds.append(dt_all[s:s + seq_len])
        if not xs:
            raise ValueError(f"{path}: a split of {b - a} rows is shorter than --seq-len {seq_len}; "
                             "use a shorter --seq-len or a different --split")
        return Split(np.stack(xs).astype(np.float32), np.stack(ys).astype(np.float32),
                     None if dt_all is None else np.stack(ds).astype(np.float32))

    tr, va, te = (windows(a, b) for a, b in parts)
    norm = None
    if normalize:
        xtr, ytr = x[: bounds[0]], y[: bounds[0]]
        sx, sy = xtr.std(0), ytr.std(0)
        norm = {"input_mean": xtr.mean(0).astype(np.float32).tolist(),
                "input_std": np.where(sx < 1e-8, 1.0, sx).astype(np.float32).tolist(),
                "output_mean": ytr.mean(0).astype(np.float32).tolist(),
                "output_std": np.where(sy < 1e-8, 1.0, sy).astype(np.float32).tolist()}
    return TaskData(fmt, "regression", "mse", tr, va, te, input_size=x.shape[1], output_size=y.shape[1],
                    normalization=norm,
                    defaults={"epochs": 50, "batch_size": 16, "grad_clip": 1.0,
                              "lr": {"ltc": 0.01, "default": 0.003}},
                    info={"data": str(path), "inputs": in_labels, "targets": out_labels, "time": time,
                          "seq_len": seq_len, "stride": stride, "split": fr.tolist()})


def load_csv(data=None, **kw) -> TaskData:
    if data is None:
        raise ValueError("task csv needs --data FILE.csv (with --inputs and --targets)")
    return load_series(data, fmt="csv", **kw)


def load_npz(data=None, **kw) -> TaskData:
    if data is None:
        raise ValueError("task npz needs --data FILE.npz (with --inputs and --targets)")
    return load_series(data, fmt="npz", **kw)


def load_pendulum(**kw) -> TaskData:
    from .pendulum import load_pendulum as _lp

    return _lp(**kw)


TASKS = {"cheetah": load_cheetah, "digits": load_digits, "fashion-mnist": load_fashion_mnist,
         "pendulum": load_pendulum, "csv": load_csv, "npz": load_npz}


def load_task(name: str, **opts) -> TaskData:
    """load_task("cheetah"), load_task("csv", data="f.csv", inputs="a,b", targets="c", time="t")."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose one of {', '.join(TASKS)}")
    opts = {k: v for k, v in opts.items() if v is not None}
    try:
        task = TASKS[name](**opts)
    except TypeError as e:
        if "unexpected keyword" in str(e):
            raise ValueError(f"task {name}: {e}") from None
        raise
    for s in ("train", "valid", "test"):
        sp = getattr(task, s)
        _check_finite(f"task {name} ({s})", x=sp.x, y=sp.y, dt=sp.dt)
    return task


def calibration_inputs(name: str, n: int = 64, seed: int = 0, **opts):
    """Held-out input sequences of a task: (x [n, T, in], dt [n, T] or None)."""
    return load_task(name, **opts).calibration_inputs(n=n, seed=seed)


def evaluate_pendulum(policy_step_fn, episodes: int = 10, seed: int = 0, **kw):
    from .pendulum import evaluate_pendulum as _ep

    return _ep(policy_step_fn, episodes=episodes, seed=seed, **kw)


__all__ = ["Split", "TaskData", "TASKS", "load_task", "calibration_inputs", "evaluate_pendulum",
           "read_idx", "cut_windows"]
