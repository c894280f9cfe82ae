"""Controller: reset() / step(x, dt) / state over any backend, with the shared guards.

Guards (the same for every backend):
  * x: a real numeric dtype (not bool, complex, str or object), shape [in] (batch 1) or
    [B, in]; values are cast to float32, so a float64 beyond float32's range counts as inf.
    NaN/inf handled by a policy: 'raise' (NonFiniteInputError), 'hold' (each bad entry
    keeps its last good value), 'zero' (bad entries become 0).
  * dt: finite and > 0 *in float32* (1.4e-45 .. 3.4e38), a float or one per row; a model
    exported with a fixed dt only accepts that dt.
  * batch: an integer in [1, MAX_BATCH] (65,536).
  * state after each step: finite, and for LTC models inside the per-neuron bounds of the
    LTC paper (F.ltc_state_bounds, widened to include the state the run started from, when
    set with reset(state=...) or ctrl.state = ..., and by F.bound_margin(state_tol)). On a
    violation the step is not committed: 'raise' (StateBoundError, default), 'clip'
    (clamp into the bounds) or 'off'. Bounds and state_tol must be finite (checked at load).
A rejected step changes nothing: state, held inputs and outputs keep their values.
The step path allocates no arrays: inputs are copied into the backend's buffers and every
check writes into preallocated boolean buffers. A backend with native guards (the Backend
contract's `native_guards`, runtime/backend.py) gets the bounds and the state policy once and
does the input and state checks and the rollback in its one call; the errors and policies are
the same. The Controller never asks which backend it drives.

Threads: a Controller may be shared; step/reset/state= hold a lock, so steps from several
threads run one at a time (the backends' interpreters are not re-entrant). The returned y
is still overwritten by the next step of any thread: copy it, or give each thread its own
Controller (no lock contention).
"""

from __future__ import annotations

import threading

import numpy as np

from ltc_edge import precision as precisions
from ltc_edge.nn import functional as F

from .backend import (GUARD_MODES, MAX_BATCH, STATUS_BAD_DT, STATUS_NONFINITE_INPUT, STATUS_NONFINITE_STATE,
                      Backend, check_batch, short_repr)
from .errors import (InputDtypeError, InputShapeError, ModelLoadError, NonFiniteInputError,
                     RuntimeInputError, StateBoundError)

NONFINITE_POLICIES = ("raise", "hold", "zero")
STATE_POLICIES = ("raise", "clip", "off")
__all__ = ["Controller", "MAX_BATCH", "NONFINITE_POLICIES", "STATE_POLICIES"]

_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_F32_MAX = float(np.finfo(np.float32).max)
_X_NONFINITE = ("x contains NaN or inf (or values beyond float32's range; nonfinite policy 'raise': use "
                "'hold' or 'zero' to keep running)")
_F32_TINY = float(np.finfo(np.float32).smallest_subnormal)  # the smallest dt > 0 in float32


def _check_numeric(a, what):
    if a.dtype.kind not in "fiu":
        raise InputDtypeError(f"{what} must be a real number array, got dtype {a.dtype}")


def _as_array(v, what):
    """np.asarray(v), with ragged or unconvertible sequences as a one-line InputShapeError."""
    if isinstance(v, np.ndarray):
        return v
    try:
        return np.asarray(v)
    except (ValueError, TypeError, OverflowError):
        raise InputShapeError(f"{what} must be a number array, got a ragged or unreadable "
                              f"{type(v).__name__}: {short_repr(v)}") from None


def _copy_f32(dst, src):
    """Copy into a float32 buffer. A float wider than float32 may overflow to inf there (the
    finiteness checks then reject it); numpy's overflow warning would only repeat that."""
    if src.dtype.kind == "f" and src.dtype.itemsize > 4:
        with np.errstate(over="ignore"):
            np.copyto(dst, src, casting="same_kind")
    else:
        np.copyto(dst, src, casting="same_kind")


def _quiet_errstate():
    """(set, reset, value) of the context variable in which numpy >= 2 keeps its floating-point
    error settings, the value with every warning off; or (None, None, None) (older numpy: float64
    x then goes the general way). The fast path's float64 -> float32 copy sets it around the copy,
    as _copy_f32 does with np.errstate, which costs ~1.5 us per use (it builds its settings on
    every entry); this ~0.1 us."""
    try:
        from numpy._core import _ufunc_config as config
        var = config._extobj_contextvar
        return var.set, var.reset, config._make_extobj(all="ignore")
    except (ImportError, AttributeError, TypeError):
        return None, None, None


_quiet_set, _quiet_reset, _QUIET_EXTOBJ = _quiet_errstate()


def _choice(value, choices, what):
    if not isinstance(value, str) or value not in choices:
        raise RuntimeInputError(f"{what} must be one of {', '.join(choices)}, got {short_repr(value)}")
    return value


def _check_tol(tol, precision):
    if tol is None:  # float rounding for fp32; quantized models drift further
        return F.STATE_TOL if precisions.is_float(precision) else 0.05
    if isinstance(tol, bool) or not isinstance(tol, (int, float, np.integer, np.floating)):
        raise RuntimeInputError(f"state_tol must be a number, got {type(tol).__name__} {short_repr(tol)}")
    # NaN or inf would switch the bound check off silently: state_check='off' says so openly
    if not 0 <= tol <= 1e6:
        raise RuntimeInputError(f"state_tol must be finite, >= 0 and <= 1e6, got {short_repr(tol)} "
                                "(state_check='off' turns the bound check off)")
    return float(tol)


def _widened_bounds(meta, tol):
    """(lo - tol', hi + tol') as float32 [S], tol' = tol * (1 + |hi - lo|), or None. NaN/inf or
    out-of-float32 bounds (a corrupt manifest) would silently disable the check: refused."""
    if meta.bounds is None:
        return None
    S, src = meta.state_size, meta.source or "model"
    try:
        lo, hi = (np.asarray(v, dtype=np.float64) for v in meta.bounds)
    except (ValueError, TypeError):
        raise ModelLoadError(f"{src}: state bounds are not two number arrays") from None
    if lo.shape != (S,) or hi.shape != (S,):
        raise ModelLoadError(f"{src}: state bounds must be two [{S}] arrays, got {list(lo.shape)} and {list(hi.shape)}")
    with np.errstate(over="ignore", invalid="ignore"):
        w = F.bound_margin(lo, hi, tol)
        lo_w, hi_w = lo - w, hi + w
    ok = np.isfinite(lo_w) & np.isfinite(hi_w) & (lo <= hi)
    ok &= (np.abs(lo_w) <= _F32_MAX) & (np.abs(hi_w) <= _F32_MAX)
    if not ok.all():
        i = int(np.argmin(ok))
        raise ModelLoadError(f"{src}: state bounds must be finite in float32 with lo <= hi; neuron {i} has "
                             f"[{lo[i]:.4g}, {hi[i]:.4g}]")
    return lo_w.astype(np.float32), hi_w.astype(np.float32)


class Controller:
    """A model ready for a control loop: `reset()`, `y = step(x, dt=None)`, `state`.

    `step` returns a read-only view of the backend's output buffer, overwritten by the
    next step (call .copy() to keep it): this keeps the step allocation-free.
    """

    def __init__(self, backend, *, batch: int = 1, nonfinite: str = "raise", state_check: str = "raise",
                 state_tol: float | None = None):
        if not isinstance(backend, Backend):
            raise RuntimeInputError(f"backend must be a runtime Backend (see ltc_edge.runtime.load), "
                                    f"got {type(backend).__name__}")
        self.nonfinite = _choice(nonfinite, NONFINITE_POLICIES, "nonfinite")
        self.state_check = _choice(state_check, STATE_POLICIES, "state_check")
        self.backend = backend
        self.meta = backend.meta
        self.state_tol = _check_tol(state_tol, self.meta.precision)
        self._bounds = _widened_bounds(self.meta, self.state_tol)
        self._lock = threading.Lock()
        self._batch = None
        self.reset(batch=check_batch(batch))

    # -- info --------------------------------------------------------------------------
    @property
    def backend_name(self) -> str:
        return self.backend.name

    @property
    def input_size(self) -> int:
        return self.meta.input_size

    @property
    def output_size(self) -> int:
        return self.meta.output_size

    @property
    def state_size(self) -> int:
        return self.meta.state_size

    @property
    def batch(self) -> int:
        return self._batch

    @property
    def state_bounds(self) -> tuple[np.ndarray, np.ndarray] | None:
        """(lo, hi) float32 [B, S] copies of what the state guard checks now (the model's LTC
        bounds, its margin and the starting state), or None when the model has no bound. Set
        whatever the state_check policy, so 'off' runs can still count violations."""
        return None if self._lo is None else (self._lo.copy(), self._hi.copy())

    def info(self) -> dict:
        m = self.meta
        return {"backend": self.backend.name, "kind": m.kind, "inputs": m.input_size,
                "outputs": m.output_size, "state_size": m.state_size, "batch": self._batch,
                "uses_dt": m.uses_dt, "fixed_dt": m.fixed_dt, "precision": m.precision,
                "state_bounds": m.bounds is not None, "bounds_note": m.bounds_note,
                "nonfinite": self.nonfinite, "state_check": self.state_check,
                "source": m.source, **self.backend.describe()}

    def __repr__(self):
        m = self.meta
        return (f"Controller({m.kind}, backend={self.backend.name}, in={m.input_size}, "
                f"out={m.output_size}, state={m.state_size}, batch={self._batch})")

    # -- state -------------------------------------------------------------------------
    def reset(self, batch: int | None = None, state=None) -> None:
        """Zero the state (or set it), forget held inputs; `batch` changes the batch size
        (an integer in [1, MAX_BATCH])."""
        new = self._batch if batch is None else check_batch(batch)
        with self._lock:
            h0 = None if state is None else self._state_array(state, new)  # validated before any change
            if new != self._batch:
                self._rebind(new)
            self._zero(h0)

    def _rebind(self, batch):
        old = self._batch
        try:
            self._allocate(batch)
        except MemoryError:
            err = InputShapeError(f"batch {batch}: not enough memory for this model's buffers")
        except RuntimeInputError as e:
            err = e
        else:
            return
        if old is not None:  # keep the controller usable at its old batch (zeroed)
            self._allocate(old)
            self._zero(None)
        raise err

    def _zero(self, h0):
        b = self.backend
        b.h[...] = 0 if h0 is None else h0
        b.x[...] = 0
        b.dt[...] = self.meta.default_dt
        self._dt_value = self.meta.default_dt
        self._set_bounds_from(b.h)

    def _allocate(self, batch):
        b = self.backend
        b.bind(batch)
        self._batch = batch
        S, n_in = self.meta.state_size, self.meta.input_size
        self._stage = np.zeros((batch, n_in), np.float32)
        self._stage_row = self._stage[0]
        self._finite_x = np.ones((batch, n_in), bool)
        self._bad_x = np.zeros((batch, n_in), bool)
        self._x_held = np.zeros((batch, n_in), np.float32)  # 'hold': b.x before this step
        self._finite_h = np.ones((batch, S), bool)
        self._cmp_h = np.zeros((batch, S), bool)
        self._lo = self._hi = None
        self._in_place = b.h_new is b.h
        self._h_good = np.zeros((batch, S), np.float32)
        if self._bounds is not None:
            self._lo = np.zeros((batch, S), np.float32)
            self._hi = np.zeros((batch, S), np.float32)
        self._y_view = b.y.view()
        self._y_view.flags.writeable = False
        self._y_row = self._y_view[0] if batch == 1 else None
        self._state_view = b.h.view()
        self._state_view.flags.writeable = False
        self._stage_mv = memoryview(self._stage_row)
        self._dt_value = None  # the one value the dt buffer holds throughout, when known
        self._native = b.native_guards
        self._guarded_call = None  # the backend's guarded step as a no-argument call (nonfinite 'raise')
        if self._native:
            # nonfinite 'raise': the backend reads x from the staging buffer, so a rejected step leaves b.x alone
            raw = self.nonfinite == "raise"
            b.bind_guards(self._lo, self._hi, GUARD_MODES[self.state_check], x=self._stage if raw else None)
            if raw:
                self._guarded_call = b.guarded_call()
        self._fast_shape = (n_in,) if self._guarded_call is not None and batch == 1 else None
        self._fast_shape_2d = (1, n_in)
        self._default_dt = self.meta.default_dt

    def _set_bounds_from(self, h):
        if self._lo is None:
            return
        lo, hi = self._bounds
        np.minimum(lo, h, out=self._lo)  # the bound covers the starting state too
        np.maximum(hi, h, out=self._hi)

    @property
    def state(self) -> np.ndarray:
        """The current state [B, S] (read-only view; assign `ctrl.state = array` to set it)."""
        return self._state_view

    @state.setter
    def state(self, value):
        with self._lock:
            self.backend.h[...] = self._state_array(value, self._batch)
            self._set_bounds_from(self.backend.h)

    def _state_array(self, value, batch):
        """`value` as a float32 [batch or 1, S] array, finite after the cast (a float64 1e39
        would become inf in the state buffer)."""
        a = _as_array(value, "state")
        _check_numeric(a, "state")
        S = self.meta.state_size
        if a.ndim == 1 and a.shape == (S,):
            a = a[None, :]
        if a.shape not in ((batch, S), (1, S)):
            raise InputShapeError(f"state must have shape [{batch}, {S}] (or [{S}]), got {list(a.shape)}")
        out = np.empty(a.shape, np.float32)
        _copy_f32(out, a)
        if not np.all(np.isfinite(out)):
            raise NonFiniteInputError("state contains NaN or inf (or values beyond float32's range)")
        return out

    # -- stepping ----------------------------------------------------------------------
    def step(self, x, dt=None):
        """Advance one step: x[in] (batch 1) or x[B, in] -> y[out] or y[B, out].

        Bad input raises a RuntimeInputError and commits nothing. Thread-safe (one step at a
        time); the returned view is overwritten by the next step."""
        if self._fast_shape is not None:
            # batch 1, native guards: the shortest path (the same checks) for a float32 or float64
            # x of shape [in] or [1, in]; anything else goes the general way below, before any
            # state changes. acquire/try/release: half the cost of `with lock`.
            lock = self._lock
            lock.acquire()
            try:
                y = self._stage_fast(x)
                if y is not None:
                    if not ((dt is None and self._dt_value == self._default_dt)
                            or (type(dt) is float and dt == self._dt_value)):
                        self._set_dt_raw(dt)
                    status = self._guarded_call()
                    if status:
                        self._reject(status, False)
                    return y
            finally:
                lock.release()
        a = x if isinstance(x, np.ndarray) else _as_array(x, "x")
        if a.dtype.kind not in "fiu":
            _check_numeric(a, "x")
        with self._lock:
            b = self.backend
            n_in = self.meta.input_size
            if a.ndim == 1 and a.shape[0] == n_in and self._batch == 1:
                single = True
            elif a.ndim == 2 and a.shape[1] == n_in and a.shape[0] == self._batch:
                single = False
            else:
                raise self._x_shape_error(a)
            if self._guarded_call is not None:  # native guards, nonfinite 'raise': the short path
                _copy_f32(self._stage_row if single else self._stage, a)
                if dt is not None or self._dt_value != self.meta.default_dt:
                    self._set_dt_raw(dt)
                status = self._guarded_call()
                if status:
                    self._reject(status, False)
                return self._y_row if single else self._y_view
            saved = self._load_x(a, single, dt)  # True: b.x is restored on a rejection
            if self._native:
                status = b.run_guarded()
                if status:
                    self._reject(status, saved)
            else:
                if self._in_place:  # the backend updates the state in place: keep the last good one
                    np.copyto(self._h_good, b.h)
                b.run()
                self._check_and_commit(saved)
            return self._y_row if single else self._y_view

    def _stage_fast(self, x):
        """Copy x into the staging row when it is a float32 or float64 array of shape [in] or
        [1, in] and return the output view that step returns for it; else None, nothing
        changed. Dtype and shape are checked first: a buffer copy that fails raises, and the
        exception alone costs about a microsecond. (The row takes a [1, in] x: numpy drops the
        leading 1, faster than a copy into the [1, in] buffer.)"""
        kind = getattr(x, "dtype", None)
        if kind is _F32:
            shape = x.shape
            if shape == self._fast_shape:
                self._stage_mv[:] = x  # `mv[:] = x` (no memoryview(x) object): the cheapest copy
                return self._y_row
            if shape == self._fast_shape_2d:
                self._stage_row[...] = x
                return self._y_view
            return None
        if kind is not _F64 or _QUIET_EXTOBJ is None:
            return None
        shape = x.shape
        if shape == self._fast_shape:
            out = self._y_row
        elif shape == self._fast_shape_2d:
            out = self._y_view
        else:
            return None
        token = _quiet_set(_QUIET_EXTOBJ)  # beyond float32's range becomes inf (the guards reject it), unwarned
        try:
            self._stage_row[...] = x
        finally:
            _quiet_reset(token)
        return out

    def _load_x(self, a, single, dt):
        """Stage x, apply the nonfinite policy and set dt. Returns True: b.x was saved for the
        rollback of a rejected step (the held inputs of 'hold', the last inputs otherwise)."""
        b = self.backend
        stage = self._stage
        _copy_f32(self._stage_row if single else stage, a)
        fin = self._finite_x
        np.isfinite(stage, out=fin)
        all_finite = fin.all()
        if not all_finite and self.nonfinite == "raise":
            raise NonFiniteInputError(_X_NONFINITE)
        self._set_dt(dt)  # before b.x changes: a rejected dt leaves the held inputs alone
        held = self.nonfinite == "hold"
        np.copyto(self._x_held, b.x)  # restored if the step is rejected
        if all_finite:
            np.copyto(b.x, stage)
        elif held:  # b.x carries the held inputs
            np.copyto(b.x, stage, where=fin)
        else:  # zero
            np.logical_not(fin, out=self._bad_x)
            np.copyto(b.x, stage)
            b.x[self._bad_x] = 0  # rare path (bad input): a small index allocation is fine
        return True

    def _set_dt_raw(self, dt):
        """_set_dt when x went unchecked into the staging buffer (the backend checks it before stepping):
        as in _load_x, a non-finite x is reported before a bad dt."""
        try:
            self._set_dt(dt)
        except RuntimeInputError:
            if not np.isfinite(self._stage).all():
                raise NonFiniteInputError(_X_NONFINITE) from None
            raise

    def _reject(self, status, held):
        """A step the backend's guards refused (nothing committed: it restored the state and y)."""
        if held:
            np.copyto(self.backend.x, self._x_held)
        if status == STATUS_NONFINITE_INPUT:
            raise NonFiniteInputError(_X_NONFINITE)
        if status == STATUS_BAD_DT:
            self.backend.dt.fill(self.meta.default_dt)
            self._dt_value = self.meta.default_dt
            raise NonFiniteInputError("dt must be finite and > 0 in float32 in every row")
        if status == STATUS_NONFINITE_STATE:
            raise StateBoundError(f"the {self.meta.kind} state became NaN/inf; step not committed "
                                  "(state keeps its last good value)")
        i = self.backend.where
        lo, hi = self.meta.bounds
        raise StateBoundError(f"LTC state left its proven bounds (neuron {i}: range [{lo[i]:.4g}, {hi[i]:.4g}]); "
                              "step not committed")

    def _x_shape_error(self, a):
        n_in = self.meta.input_size
        if a.ndim == 2 and a.shape[1] == n_in:
            return InputShapeError(f"x has batch {a.shape[0]} but the controller was reset for batch "
                                   f"{self._batch}: call reset(batch={a.shape[0]})")
        want = f"[{n_in}] or [B, {n_in}]" if self._batch == 1 else f"[{self._batch}, {n_in}]"
        return InputShapeError(f"x must have shape {want}, got {list(a.shape)}")

    def _set_dt(self, dt):
        m, buf = self.meta, self.backend.dt
        if dt is None:
            if self._dt_value != m.default_dt:
                buf.fill(m.default_dt)
                self._dt_value = m.default_dt
            return
        if isinstance(dt, (int, float)) and not isinstance(dt, bool):
            # compared as Python numbers: exact for ints of any size (float(10**400) overflows)
            if not _F32_TINY <= dt <= _F32_MAX:
                raise NonFiniteInputError(f"dt must be finite and > 0 in float32 (1.4e-45 to 3.4e38), "
                                          f"got {short_repr(dt)}")
            v = float(dt)
            if m.fixed_dt is not None and abs(v - m.fixed_dt) > 1e-6 * max(1.0, abs(m.fixed_dt)):
                raise InputShapeError(f"this model was exported with a fixed dt={m.fixed_dt}; got dt={v}")
            if v != self._dt_value:
                buf.fill(v)
                self._dt_value = v
            return
        a = _as_array(dt, "dt")
        _check_numeric(a, "dt")
        if a.size == 1:
            return self._set_dt(float(a.reshape(())))
        if a.shape not in ((self._batch,), (self._batch, 1)):
            raise InputShapeError(f"dt must be a float, [{self._batch}] or [{self._batch}, 1], got {list(a.shape)}")
        _copy_f32(buf, a.reshape(self._batch, 1))
        self._dt_value = None
        lo, hi = buf.min(), buf.max()  # NaN fails both comparisons below
        if not (lo > 0 and hi <= _F32_MAX):
            buf.fill(m.default_dt)
            self._dt_value = m.default_dt
            raise NonFiniteInputError("dt must be finite and > 0 in float32 in every row")
        tol = None if m.fixed_dt is None else 1e-6 * max(1.0, abs(m.fixed_dt))
        if tol is not None and (abs(lo - m.fixed_dt) > tol or abs(hi - m.fixed_dt) > tol):
            raise InputShapeError(f"this model was exported with a fixed dt={m.fixed_dt}; got other dt values")

    def _check_and_commit(self, held):
        b = self.backend
        h_new = b.h_new
        np.isfinite(h_new, out=self._finite_h)
        if not self._finite_h.all():
            if self.state_check != "off":
                self._restore(held)
                raise StateBoundError(f"the {self.meta.kind} state became NaN/inf; step not committed "
                                      "(state keeps its last good value)")
        elif self._lo is not None and self.state_check != "off":
            cmp = self._cmp_h
            np.less(h_new, self._lo, out=cmp)
            bad = cmp.any()
            if not bad:
                np.greater(h_new, self._hi, out=cmp)
                bad = cmp.any()
            if bad:
                if self.state_check == "raise":
                    self._restore(held)
                    i = int(np.argmax(np.any((h_new < self._lo) | (h_new > self._hi), axis=0)))
                    lo, hi = self.meta.bounds
                    raise StateBoundError(
                        f"LTC state left its proven bounds (neuron {i}: range [{lo[i]:.4g}, {hi[i]:.4g}]); "
                        "step not committed")
                np.clip(h_new, self._lo, self._hi, out=h_new)
        if h_new is not b.h:
            np.copyto(b.h, h_new)

    def _restore(self, held):
        """Undo a rejected step: the state of an in-place backend, the inputs 'hold' keeps."""
        if self._in_place:
            np.copyto(self.backend.h, self._h_good)
        if held:
            np.copyto(self.backend.x, self._x_held)

    def run(self, xs, dt=None):
        """Step through a sequence xs[T, in] or xs[T, B, in] from the current state; dt is a
        float or one per step ([T] or [T, B]). Returns the outputs stacked (a convenience:
        allocates the result)."""
        xs = _as_array(xs, "xs")
        _check_numeric(xs, "xs")
        if xs.ndim not in (2, 3):
            raise InputShapeError(f"xs must have shape [T, in] or [T, B, in], got {list(xs.shape)}")
        dts = None if dt is None or np.ndim(_as_array(dt, "dt")) == 0 else _as_array(dt, "dt")
        if dts is not None and dts.shape[0] != xs.shape[0]:
            raise InputShapeError(f"dt must be a float or one per step ([{xs.shape[0]}, ...]), "
                                  f"got {list(dts.shape)}")
        if xs.shape[0] == 0:
            raise InputShapeError("xs must hold at least one step (T >= 1)")
        return np.stack([np.array(self.step(xs[t], dt if dts is None else dts[t])) for t in range(xs.shape[0])])
