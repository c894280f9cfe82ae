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

import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from ..fileio import read_bytes
from .series import load_series  # noqa: F401  (csv / npz)
from .taskdata import Split, TaskData

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian: dataset-fashion-mnist


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
                          "seq_len": seq_len, "stride": stride},
                    # whole traces (input x[t], target x[t+1]) for streaming
                    streams={k: [Split(a[None, :-1], a[None, 1:]) for a in traces[sl]]
                             for k, sl in (("valid", slice(0, 5)), ("test", slice(5, 15)), ("train", slice(15, 25)))})


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


MAX_IDX_BYTES = 1024 << 20  # an IDX file once gunzipped (Fashion-MNIST's largest: 47 MB)


def _gunzip(raw: bytes, path) -> bytes:
    """Decompress at most MAX_IDX_BYTES (a gzip bomb stops there instead of filling memory)."""
    d = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = d.decompress(raw, MAX_IDX_BYTES + 1)
    except zlib.error as e:
        raise ValueError(f"{path}: not a readable .gz file ({e})") from None
    if len(data) > MAX_IDX_BYTES:
        raise ValueError(f"{path}: unpacks to more than {MAX_IDX_BYTES >> 20} MiB, more than an IDX file may be")
    return data


def read_idx(path) -> np.ndarray:
    """An IDX file (MNIST format, optionally .gz) as a numpy array."""
    path = Path(path)
    data = read_bytes(path, "IDX file", MAX_IDX_BYTES)
    if path.suffix == ".gz":
        data = _gunzip(data, path)
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or len(data) < 4 + 4 * data[3]:
        raise ValueError(f"{path}: not an IDX file (bad magic number or header)")
    dtypes = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
    if data[2] not in dtypes:
        raise ValueError(f"{path}: unknown IDX data type 0x{data[2]:02x}")
    ndim = data[3]
    dims = struct.unpack(f">{ndim}I", data[4:4 + 4 * ndim])
    dtype = np.dtype(dtypes[data[2]])
    expected = math.prod(dims) * dtype.itemsize
    body = data[4 + 4 * ndim:]
    if len(body) != expected:
        raise ValueError(f"{path}: IDX header says {dims} ({expected} bytes) but holds {len(body)} bytes")
    return np.frombuffer(body, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _find_idx(data_dir: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        for p in (data_dir / name, *data_dir.glob(f"**/{name}")):
            if p.is_file():
                return p
    raise FileNotFoundError(f"Fashion-MNIST file {stem}[.gz] not found under {data_dir}; install it with "
                            "`apt-get install dataset-fashion-mnist` or give its folder (`ltc train --data-dir DIR`)")


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, seed: int = 0, limit: int | None = None) -> TaskData:
    """Fashion-MNIST from IDX files (default: Debian's dataset-fashion-mnist package),
    28 rows as a 28-step sequence. valid = a seeded 10% of the training set;
    test = the official test set. `limit` keeps the first n training images (quick runs)."""
    data_dir = Path(data_dir) if data_dir else FASHION_MNIST_DIR
    if not data_dir.is_dir():
        raise FileNotFoundError(f"Fashion-MNIST not found at {data_dir}: install it with `apt-get install "
                                "dataset-fashion-mnist` or give its folder (`ltc train --data-dir DIR`)")
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
