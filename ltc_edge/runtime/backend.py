"""The backend interface: a backend owns numpy buffers for one batch size and fills the
outputs from the inputs when `run()` is called. The Controller writes the inputs in place,
so the whole step path can be allocation-free (the numpy backend is)."""

from __future__ import annotations

import numpy as np

from .errors import InputShapeError, RuntimeInputError
from .meta import ModelMeta

# rows per controller: bounds what one reset(batch=...) may allocate (the numpy backend's
# traced buffers for an LTC-19 NCP take about 14 KB per row: 0.9 GB at MAX_BATCH)
MAX_BATCH = 65_536

# Backends that run the Controller's checks in their own step (native_guards = True: the input
# checks, the state bounds and the rollback of a rejected step, e.g. in compiled code) take the
# Controller's bounds once, bind_guards(lo, hi, GUARD_MODES[state_check], x), and return one of
# these status codes from run_guarded() or guarded_call()() (the generated C header's <PREFIX>_OK
# ... defines), `where` naming the bad x index / dt row / state index, or the smallest neuron
# index outside the bounds. The Controller then only maps a status to its error.
STATUS_OK, STATUS_NONFINITE_INPUT, STATUS_BAD_DT, STATUS_NONFINITE_STATE, STATUS_OUT_OF_BOUNDS = range(5)
GUARD_MODES = {"raise": 0, "clip": 1, "off": 2}


def check_batch(batch) -> int:
    """`batch` as an int in [1, MAX_BATCH]; only real integers (not bool, str or float)."""
    if isinstance(batch, bool) or not isinstance(batch, (int, np.integer)):
        raise InputShapeError(f"batch must be an integer in [1, {MAX_BATCH}], got {type(batch).__name__} "
                              f"{short_repr(batch)}")
    if not 1 <= batch <= MAX_BATCH:
        raise InputShapeError(f"batch must be an integer in [1, {MAX_BATCH}] (MAX_BATCH), got {short_repr(batch)}")
    return int(batch)


def check_options(backend: str, options: dict) -> None:
    """Reject keyword options a backend does not know (one line, in the error hierarchy)."""
    if options:
        raise RuntimeInputError(f"{backend} backend: unknown option(s) {', '.join(sorted(map(str, options)))}")


def check_threads(threads) -> int:
    """Worker threads for onnxruntime / LiteRT / ExecuTorch: an integer in [1, 256]."""
    if isinstance(threads, bool) or not isinstance(threads, (int, np.integer)) or not 1 <= threads <= 256:
        raise RuntimeInputError(f"threads must be an integer in [1, 256], got {short_repr(threads)}")
    return int(threads)


def short_repr(value, limit: int = 40) -> str:
    """repr(value) cut to `limit` characters and one line: error messages stay one short line."""
    if isinstance(value, int) and abs(value).bit_length() > 128:  # repr of a huge int is slow or refused
        return f"<int of {abs(value).bit_length()} bits>"
    try:
        s = repr(value)
    except Exception:  # a user object whose __repr__ fails must not mask the real error
        s = f"<{type(value).__name__}>"
    s = " ".join(s.split())
    return s if len(s) <= limit else s[:limit - 3] + "..."


class Backend:
    name = "?"
    native_guards = False  # see STATUS_OK above: True adds bind_guards, run_guarded, guarded_call, where

    meta: ModelMeta
    # inputs (written by the Controller): x[B, in], h[B, S] (the state), dt[B, 1]
    # outputs (read after run()): y[B, out], h_new[B, S] (may be h itself: updated in place)

    def bind(self, batch: int) -> None:
        """(Re)allocate the buffers for `batch` rows."""
        batch = check_batch(batch)
        m = self.meta
        self.batch = batch
        self.x = np.zeros((batch, m.input_size), np.float32)
        self.h = np.zeros((batch, m.state_size), np.float32)
        self.dt = np.full((batch, 1), m.default_dt, np.float32)
        self.y = np.zeros((batch, m.output_size), np.float32)
        self.h_new = np.zeros((batch, m.state_size), np.float32)

    def run(self) -> None:
        raise NotImplementedError

    # -- native guards (native_guards = True only) --------------------------------------
    def bind_guards(self, lo, hi, mode: int, x=None) -> None:
        """Pre-bind the guarded step's bounds: lo, hi float32 [batch, S] arrays (kept alive and
        updated in place by the caller) or None (finiteness only); mode: a GUARD_MODES value; x:
        a float32 [batch, in] array the guarded step reads instead of self.x, or None."""
        raise NotImplementedError

    def run_guarded(self) -> int:
        """The guarded step: a status code (STATUS_OK = 0); `where` then holds the index it names."""
        raise NotImplementedError

    def guarded_call(self):
        """run_guarded as a no-argument callable (the Controller's fast path), valid until the
        next bind."""
        raise NotImplementedError

    def describe(self) -> dict:
        return {}
