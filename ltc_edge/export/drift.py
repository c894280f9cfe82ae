"""Reference data and the drift check run at export time.

Data for calibration (quantisation) and drift comes from `--calibration`:
  * a task (cheetah, digits, pendulum, ...) as `from_task(load_task(name), name)`, made by the
    caller (the CLI does it for a task name): calibration from the training split, drift and
    the task metric on the test split;
  * an .npz file with key x [N, T, in] (and optional dt [N, T] or [N, T, 1], y [N, T, out]
    regression targets or y [N] class labels): the first 80% of the sequences calibrate,
    the rest (at least one) are held out;
  * nothing: seeded smooth random inputs around the model's input normalisation (fine for
    fp32 and fp16, which are judged on output error; int8 needs real data).

The drift check runs the exported file and the torch model side by side for >= 1000
recurrent steps, each feeding its own state back (so error accumulation shows), and records
the max-abs and relative output error (in normalised output units when the model has an
output_std) and the task metric of both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .. import precision as precisions
from ..fileio import LIMITS, open_regular

BUDGETS = precisions.drift_budgets()  # name -> budget, from the registry (ltc_edge/precision.py)
DRIFT_STEPS = 1000


@dataclass
class RefData:
    source: str
    calib_x: np.ndarray            # [N, T, in]
    calib_dt: np.ndarray | None    # [N, T] or None
    x: np.ndarray                  # held out [N, T, in]
    dt: np.ndarray | None
    y: np.ndarray | None           # [N, T, out] float (regression) or [N] int (classification)
    synthetic: bool = False
    dt_from_data: bool = True      # False: dt filled in with the model's default dt (with_default_dt)

    @property
    def task_kind(self) -> str | None:
        if self.y is None:
            return None
        return "classification" if self.y.dtype.kind in "iu" else "regression"


def _dt2(dt, x, what):
    if dt is None:
        return None
    dt = np.asarray(dt, dtype=np.float32)
    if dt.ndim == 3 and dt.shape[2] == 1:
        dt = dt[:, :, 0]
    if dt.shape != x.shape[:2]:
        raise ValueError(f"{what}: dt must have shape {x.shape[:2]} (or with a trailing 1), got {dt.shape}")
    return dt


def from_task(task, name: str) -> RefData:
    """RefData from a training task (ltc_edge.train.load_task(name)): calibration from its
    training split, drift and the task metric on its test split. The caller loads the task:
    export never imports train."""
    tr, te = task.train, task.test
    return RefData(f"task:{name}", tr.x.astype(np.float32), _dt2(tr.dt, tr.x, name), te.x.astype(np.float32),
                   _dt2(te.dt, te.x, name), te.y)


def load_reference(spec, config: dict, *, fixed_dt: float | None = None, seed: int = 0) -> RefData:
    """RefData from an .npz path, a RefData (e.g. from_task) or None (synthetic). Sequences
    without dt are given the model's default dt (its training data's median dt), so that the
    torch model and the export step the same dynamics the runtime does."""
    data = _reference(spec, config, fixed_dt=fixed_dt, seed=seed)
    check_reference(data)
    return with_default_dt(data, config, fixed_dt)


def check_reference(data: RefData) -> None:
    """One-line ValueError unless every set holds at least one sequence of at least one step
    and every dt is positive and finite (a dt of -1 or inf steps the model into inf / NaN)."""
    for what, x, dt in (("calibration", data.calib_x, data.calib_dt), ("held-out", data.x, data.dt)):
        if x is None:
            continue
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"calibration {data.source}: its {what} set is empty (x {list(x.shape)}); "
                             "needs at least one sequence of at least one step")
        if dt is not None and not (np.isfinite(dt).all() and (dt > 0).all()):
            bad = dt[~(np.isfinite(dt) & (dt > 0))].ravel()[0]
            raise ValueError(f"calibration {data.source}: dt must be positive and finite, found {bad:g}")


def with_default_dt(data: RefData, config: dict, fixed_dt=None) -> RefData:
    from dataclasses import replace

    from ..nn import functional as F
    from ..nn.schema import default_dt

    if fixed_dt is not None or not F.cell_spec(config["cell"]["kind"]).uses_dt or data.dt is not None:
        return data
    d = np.float32(default_dt(config))
    return replace(data, calib_dt=None if data.calib_x is None else np.full(data.calib_x.shape[:2], d, np.float32),
                   dt=np.full(data.x.shape[:2], d, np.float32), dt_from_data=False)


def fold_dt(data: RefData, config: dict, fixed_dt=None) -> tuple[float, str]:
    """(dt, where it comes from) for a step that folds one dt in (the int8 C step): --fixed-dt,
    else the calibration data's own dt (varying: its median, the training median's analogue),
    else the model's training median dt, else 1.0 per step."""
    from ..nn.schema import default_dt

    if fixed_dt is not None:
        return float(fixed_dt), "--fixed-dt"
    dts = [d.ravel() for d in (data.calib_dt, data.dt) if d is not None]
    if data.dt_from_data and dts:
        v = np.concatenate(dts)
        lo, hi, med = (float(str(np.float32(a))) for a in (v.min(), v.max(), np.median(v)))
        if lo == hi:
            return lo, f"the calibration data's dt ({data.source})"
        return med, f"the median of the calibration data's dt ({data.source}; it varies from {lo:g} to {hi:g})"
    task_dt = ((config.get("task") or {}).get("dt") or {}).get("median")
    return default_dt(config), ("the model's training median dt" if task_dt is not None
                                else "the ncps default of 1.0 per step (neither the data nor the model records a dt)")


def _reference(spec, config: dict, *, fixed_dt: float | None = None, seed: int = 0) -> RefData:
    n_in = config["input_size"]
    if spec is None:
        return synthetic(config, fixed_dt=fixed_dt, seed=seed)
    if isinstance(spec, RefData):
        if spec.x.shape[-1] != n_in:
            raise ValueError(f"calibration {spec.source} has {spec.x.shape[-1]} inputs, the model {n_in}")
        return spec
    path = Path(str(spec))
    if path.suffix == ".npz" or path.exists():
        if not path.is_file():
            raise FileNotFoundError(f"calibration file {path} not found")
        fd = open_regular(path, "calibration file", LIMITS["data"])  # no FIFO, no /dev/zero
        try:
            with os.fdopen(fd, "rb") as f, np.load(f, allow_pickle=False) as z:
                arrays = {k: z[k] for k in z.files}
        except Exception as e:  # zipfile / pickle errors: not a usable npz
            raise ValueError(f"calibration file {path}: not a readable .npz ({type(e).__name__})") from None
        if "x" not in arrays:
            raise ValueError(f"calibration file {path}: needs an array 'x' [N, T, {n_in}] (has {', '.join(arrays) or 'nothing'})")
        x = np.asarray(arrays["x"], dtype=np.float32)
        if x.ndim == 2:
            x = x[None]
        if x.ndim != 3 or x.shape[2] != n_in:
            raise ValueError(f"calibration file {path}: x must be [N, T, {n_in}] for this model, got {list(x.shape)}")
        if not np.isfinite(x).all():
            raise ValueError(f"calibration file {path}: x contains NaN or infinite values")
        if 0 in x.shape[:2]:
            raise ValueError(f"calibration file {path}: x has shape {list(x.shape)}: needs at least one "
                             "sequence of at least one step")
        dt = _dt2(arrays.get("dt"), x, f"calibration file {path}")
        y = arrays.get("y")
        n = x.shape[0]
        cut = n - max(1, n // 5) if n > 1 else 1
        held = slice(cut, None) if n > 1 else slice(0, None)
        return RefData(str(path), x[:cut], None if dt is None else dt[:cut], x[held],
                       None if dt is None else dt[held], None if y is None else np.asarray(y)[held])
    raise ValueError(f"calibration {spec!r}: no such .npz file (task names are read by the CLI, "
                     "`ltc export --calibration cheetah`; from Python pass drift.from_task(load_task(name), name))")


def synthetic(config: dict, *, fixed_dt=None, seed: int = 0, n: int = 16, length: int = 250) -> RefData:
    """Smooth (AR(1), unit variance) random inputs in the model's raw input units."""
    rng = np.random.default_rng(seed)
    n_in, phi = config["input_size"], 0.95
    z = np.zeros((n, length, n_in))
    z[:, 0] = rng.standard_normal((n, n_in))
    for t in range(1, length):
        z[:, t] = phi * z[:, t - 1] + np.sqrt(1 - phi ** 2) * rng.standard_normal((n, n_in))
    norm = config.get("normalization") or {}
    if norm.get("input_mean") is not None:
        z = z * np.asarray(norm["input_std"]) + np.asarray(norm["input_mean"])
    x = z.astype(np.float32)
    dt = None if fixed_dt is None else np.full((n, length), fixed_dt, np.float32)
    half = n // 2
    return RefData("synthetic", x[:half], None if dt is None else dt[:half], x[half:],
                   None if dt is None else dt[half:], None, synthetic=True)


# --------------------------------------------------------------------------------------
# running


def torch_runner(model, fixed_dt=None):
    """(x, state, dt) -> (y, state) numpy, through the torch model's own step."""
    import torch

    from ..nn.schema import default_dt

    dt_none = default_dt(model.config)
    with torch.no_grad():
        P = model.prepared()

    def run(x, state, dt):
        with torch.no_grad():
            d = fixed_dt if fixed_dt is not None else (dt_none if dt is None else torch.from_numpy(dt))
            y, h = model.step(torch.from_numpy(x), torch.from_numpy(state), d, prepared=P)
        return y.numpy(), h.numpy()

    return run


def _dt_col(dt, t, B):
    return None if dt is None else np.ascontiguousarray(dt[:, t:t + 1], dtype=np.float32)


def run_sequences(runner, x, dt, state_size, batch: int | None = None):
    """Per-step outputs [N, T, out] of sequences started from zero state; runner is called
    with at most `batch` sequences at a time (None: all)."""
    N, T, _ = x.shape
    batch = batch or N
    outs = []
    for s in range(0, N, batch):
        xs = x[s:s + batch]
        ds = None if dt is None else dt[s:s + batch]
        h = np.zeros((xs.shape[0], state_size), np.float32)
        ys = []
        for t in range(T):
            y, h = runner(np.ascontiguousarray(xs[:, t]), h, _dt_col(ds, t, xs.shape[0]))
            ys.append(np.asarray(y, dtype=np.float32))
        outs.append(np.stack(ys, 1))
    return np.concatenate(outs, 0)


def chain(x, dt, steps: int, lanes: int):
    """Held-out sequences put back to back: [lanes, >= steps, in] (and dt), state carried."""
    N, T, _ = x.shape
    reps = -(-steps // T)
    lanes = max(1, min(lanes, N))
    idx = [[(b + k * lanes) % N for k in range(reps)] for b in range(lanes)]
    X = np.stack([np.concatenate([x[i] for i in row], 0) for row in idx])
    D = None if dt is None else np.stack([np.concatenate([dt[i] for i in row], 0) for row in idx])
    return X, D


def metric(kind, outputs, y):
    if kind == "classification":
        return "accuracy", float((outputs[:, -1].argmax(-1) == y.reshape(-1)).mean())
    if kind == "regression":
        return "mse", float(np.mean((outputs - y) ** 2))
    return None, None


def drift_check(model, runner, data: RefData, precision: str, *, fixed_dt=None, batch: int | None = None,
                steps: int = DRIFT_STEPS, lanes: int = 4, max_eval: int = 256) -> dict:
    """Run `runner` (the exported file) and the torch model side by side; figures + verdict."""
    from ..nn import functional as F

    S = F.state_size(model.config)
    ref = torch_runner(model, fixed_dt)
    dt_hold = data.dt
    if fixed_dt is not None and dt_hold is not None:
        dt_hold = np.full_like(dt_hold, fixed_dt)
    X, D = chain(data.x, dt_hold, steps, lanes)
    y_exp = run_sequences(runner, X, D, S, batch)
    y_ref = run_sequences(ref, X, D, S)
    scale = 1.0
    norm = model.config.get("normalization") or {}
    if norm.get("output_std") is not None:
        scale = np.asarray(norm["output_std"], dtype=np.float32)
    err = (y_exp - y_ref) / scale
    refn = y_ref / scale
    out = {"steps": int(X.shape[1]), "sequences": int(X.shape[0]), "data": data.source,
           "max_abs": float(np.abs(err).max()),
           "rel": float(np.linalg.norm(err) / max(np.linalg.norm(refn), 1e-12)),
           "final_step_max_abs": float(np.abs(err[:, -1]).max()),
           "units": "normalised outputs" if np.ndim(scale) else "outputs"}
    if not np.isfinite(y_exp).all():
        out["max_abs"] = out["rel"] = float("inf")
    # the task metric, per held-out sequence from zero state
    xe = data.x[:max_eval]
    de = None if dt_hold is None else dt_hold[:max_eval]
    ye = None if data.y is None else data.y[:max_eval]
    if ye is not None:
        name, m_exp = metric(data.task_kind, run_sequences(runner, xe, de, S, batch), ye)
        _, m_ref = metric(data.task_kind, run_sequences(ref, xe, de, S), ye)
    else:  # no targets: the torch model's outputs are the target; metric = NRMSE to them
        o_exp, o_ref = run_sequences(runner, xe, de, S, batch), run_sequences(ref, xe, de, S)
        name, m_ref = "nrmse_to_fp32", 0.0
        m_exp = float(np.sqrt(np.mean(((o_exp - o_ref) / scale) ** 2)) /
                      max(np.sqrt(np.mean((o_ref / scale) ** 2)), 1e-12))
    delta = m_exp - m_ref
    rel = abs(delta) if name == "nrmse_to_fp32" else abs(delta) / max(abs(m_ref), 1e-12)
    out["metric"] = {"name": name, "exported": m_exp, "torch_fp32": m_ref, "delta": delta, "rel_delta": rel}
    budget = BUDGETS[precision]
    out["budget"] = budget
    over = []
    if not np.isfinite(out["max_abs"]):  # never within any budget, whatever the metric says
        over.append(f"non-finite outputs (max-abs output error {out['max_abs']:g})")
    elif "max_abs" in budget and not out["max_abs"] <= budget["max_abs"]:
        over.append(f"max-abs output error {out['max_abs']:.3g} > {budget['max_abs']:g}")
    if "metric_rel" in budget and not rel <= budget["metric_rel"]:
        over.append(f"{name} {m_exp:.4g} vs fp32 {m_ref:.4g}: relative change {rel:.3g} > {budget['metric_rel']:g}")
    out["within_budget"] = not over
    out["over_budget"] = over
    return out
