"""Controller: reset() / step(x, dt) / state over any backend, with the shared guards.

Guards (the same for every backend):
  * x: numeric dtype, shape [in] (batch 1) or [B, in]; NaN/inf handled by a policy:
    'raise' (NonFiniteInputError), 'hold' (each bad entry keeps its last good value),
    'zero' (bad entries become 0).
  * dt: finite and > 0, a float or one per row; a model exported with a fixed dt only
    accepts that dt.
  * state after each step: finite, and for LTC models inside the per-neuron bounds of the
    LTC paper (F.ltc_bounds, widened to include the state the run started from). On a
    violation the step is not committed: 'raise' (StateBoundError, default), 'clip'
    (clamp into the bounds) or 'off'.
The step path allocates no arrays: inputs are copied into the backend's buffers and every
check writes into preallocated boolean buffers.
"""

from __future__ import annotations

import numpy as np

from .errors import InputDtypeError, InputShapeError, NonFiniteInputError, StateBoundError

NONFINITE_POLICIES = ("raise", "hold", "zero")
STATE_POLICIES = ("raise", "clip", "off")


def _check_numeric(a, what):
    if a.dtype.kind not in "fiu":
        raise InputDtypeError(f"{what} must be a real number array, got dtype {a.dtype}")


class Controller:
    """A model ready for a control loop: `reset()`, `y = step(x, dt=None)`, `state`.

    `step` returns a read-only view of the backend's output buffer, overwritten by the
    next step (call .copy() to keep it): this keeps the step allocation-free.
    """

    def __init__(self, backend, *, batch: int = 1, nonfinite: str = "raise", state_check: str = "raise",
                 state_tol: float | None = None):
        if nonfinite not in NONFINITE_POLICIES:
            raise ValueError(f"nonfinite must be one of {', '.join(NONFINITE_POLICIES)}, got {nonfinite!r}")
        if state_check not in STATE_POLICIES:
            raise ValueError(f"state_check must be one of {', '.join(STATE_POLICIES)}, got {state_check!r}")
        self.backend = backend
        self.meta = backend.meta
        self.nonfinite = nonfinite
        self.state_check = state_check
        if state_tol is None:  # float rounding for fp32; quantized models drift further
            state_tol = 1e-4 if self.meta.precision in ("fp32", "fp16", "float32") else 0.05
        self.state_tol = float(state_tol)
        self.reset(batch=batch)

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
        """Zero the state (or set it), forget held inputs; `batch` changes the batch size."""
        if batch is not None:
            batch = int(batch)
            if batch < 1:
                raise InputShapeError(f"batch must be >= 1, got {batch}")
            if batch != getattr(self, "_batch", None):
                self._allocate(batch)
        b = self.backend
        b.h[...] = 0
        b.x[...] = 0
        b.dt[...] = self.meta.default_dt
        if state is not None:
            self.state = state
        else:
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
        self._finite_dt = np.ones((batch, 1), bool)
        self._finite_h = np.ones((batch, S), bool)
        self._cmp_h = np.zeros((batch, S), bool)
        self._lo = self._hi = None
        self._in_place = b.h_new is b.h
        self._h_good = np.zeros((batch, S), np.float32)
        if self.meta.bounds is not None:
            self._lo = np.zeros((batch, S), np.float32)
            self._hi = np.zeros((batch, S), np.float32)
        self._y_view = b.y.view()
        self._y_view.flags.writeable = False
        self._y_row = self._y_view[0] if batch == 1 else None
        self._state_view = b.h.view()
        self._state_view.flags.writeable = False

    def _set_bounds_from(self, h):
        if self._lo is None:
            return
        lo, hi = self.meta.bounds
        tol = self.state_tol * (1.0 + np.abs(hi - lo))
        np.minimum(lo - tol, h, out=self._lo)  # the bound covers the starting state too
        np.maximum(hi + tol, h, out=self._hi)

    @property
    def state(self) -> np.ndarray:
        """The current state [B, S] (read-only view; assign `ctrl.state = array` to set it)."""
        return self._state_view

    @state.setter
    def state(self, value):
        a = np.asarray(value)
        _check_numeric(a, "state")
        S = self.meta.state_size
        if a.ndim == 1 and a.shape == (S,):
            a = a[None, :]
        if a.shape not in ((self._batch, S), (1, S)):
            raise InputShapeError(f"state must have shape [{self._batch}, {S}] (or [{S}]), got {list(a.shape)}")
        if not np.all(np.isfinite(a)):
            raise NonFiniteInputError("state contains NaN or inf")
        np.copyto(self.backend.h, a, casting="same_kind")
        self._set_bounds_from(self.backend.h)

    # -- stepping ----------------------------------------------------------------------
    def step(self, x, dt=None):
        """Advance one step: x[in] (batch 1) or x[B, in] -> y[out] or y[B, out]."""
        b = self.backend
        a = x if isinstance(x, np.ndarray) else np.asarray(x)
        _check_numeric(a, "x")
        n_in = self.meta.input_size
        if a.ndim == 1 and a.shape[0] == n_in and self._batch == 1:
            single = True
        elif a.ndim == 2 and a.shape[1] == n_in and a.shape[0] == self._batch:
            single = False
        elif a.ndim == 2 and a.shape[1] == n_in:
            raise InputShapeError(f"x has batch {a.shape[0]} but the controller was reset for batch "
                                  f"{self._batch}: call reset(batch={a.shape[0]})")
        else:
            want = f"[{n_in}] or [B, {n_in}]" if self._batch == 1 else f"[{self._batch}, {n_in}]"
            raise InputShapeError(f"x must have shape {want}, got {list(a.shape)}")
        stage = self._stage
        np.copyto(self._stage_row if single else stage, a, casting="same_kind")
        fin = self._finite_x
        np.isfinite(stage, out=fin)
        if fin.all():
            np.copyto(b.x, stage)
        elif self.nonfinite == "raise":
            raise NonFiniteInputError("x contains NaN or inf (nonfinite policy 'raise'; "
                                      "use 'hold' or 'zero' to keep running)")
        elif self.nonfinite == "hold":
            np.copyto(b.x, stage, where=fin)
        else:  # zero
            np.logical_not(fin, out=self._bad_x)
            np.copyto(b.x, stage)
            b.x[self._bad_x] = 0  # rare path (bad input): a small index allocation is fine

        self._set_dt(dt)
        if self._in_place:  # the backend updates the state in place: keep the last good one
            np.copyto(self._h_good, b.h)
        b.run()
        self._check_and_commit()
        return self._y_row if single else self._y_view

    def _set_dt(self, dt):
        m, buf = self.meta, self.backend.dt
        if dt is None:
            buf.fill(m.default_dt)
            return
        if isinstance(dt, (int, float)) and not isinstance(dt, bool):
            v = float(dt)
            if not (v > 0 and v < float("inf")):
                raise NonFiniteInputError(f"dt must be finite and > 0, got {v}")
            if m.fixed_dt is not None and abs(v - m.fixed_dt) > 1e-6 * max(1.0, abs(m.fixed_dt)):
                raise InputShapeError(f"this model was exported with a fixed dt={m.fixed_dt}; got dt={v}")
            buf.fill(v)
            return
        a = dt if isinstance(dt, np.ndarray) else np.asarray(dt)
        _check_numeric(a, "dt")
        if a.size == 1:
            return self._set_dt(float(a.reshape(())))
        if a.shape not in ((self._batch,), (self._batch, 1)):
            raise InputShapeError(f"dt must be a float, [{self._batch}] or [{self._batch}, 1], got {list(a.shape)}")
        np.copyto(buf, a.reshape(self._batch, 1), casting="same_kind")
        np.isfinite(buf, out=self._finite_dt)
        if not self._finite_dt.all() or not (buf > 0).all():
            buf.fill(m.default_dt)
            raise NonFiniteInputError("dt must be finite and > 0 in every row")
        if m.fixed_dt is not None and not np.allclose(buf, m.fixed_dt, rtol=1e-6):
            raise InputShapeError(f"this model was exported with a fixed dt={m.fixed_dt}; got other dt values")

    def _check_and_commit(self):
        b = self.backend
        h_new = b.h_new
        np.isfinite(h_new, out=self._finite_h)
        if not self._finite_h.all():
            if self.state_check != "off":
                self._restore()
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
                    self._restore()
                    i = int(np.argmax(np.any((h_new < self._lo) | (h_new > self._hi), axis=0)))
                    lo, hi = self.meta.bounds
                    raise StateBoundError(
                        f"LTC state left its proven bounds (neuron {i}: range [{lo[i]:.4g}, {hi[i]:.4g}]); "
                        "step not committed")
                np.clip(h_new, self._lo, self._hi, out=h_new)
        if h_new is not b.h:
            np.copyto(b.h, h_new)

    def _restore(self):
        if self._in_place:
            np.copyto(self.backend.h, self._h_good)

    def run(self, xs, dt=None):
        """Step through a sequence xs[T, in] or xs[T, B, in] from the current state; returns
        the outputs stacked (a convenience: allocates the result)."""
        xs = np.asarray(xs)
        out = []
        for t in range(xs.shape[0]):
            d = None if dt is None or np.isscalar(dt) else dt[t]
            out.append(np.array(self.step(xs[t], dt if np.isscalar(dt) else d)))
        return np.stack(out)
