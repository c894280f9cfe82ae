"""Trace F.model_step once into a flat list of numpy calls with preallocated outputs.

The cell math lives only in ltc_edge/nn/functional.py. To run it without allocating an
array per step, we call F.model_step once with *recording* arrays (`Sym`) and a recording
namespace (`RecordingOps`): every operation is evaluated eagerly (so shapes, dtypes and
values are real) and appended to a tape as `(numpy function, positional args)` where the
last positional argument is the preallocated output buffer. Replaying the tape recomputes
every buffer in place (`np.add(a, b, out)`, `np.matmul(a, b, out)`, ...).

Operations whose operands are all constants (parameters, python numbers) are not recorded:
they are plain numpy and get folded at trace time. Basic slicing, `[:, :, None]` and `.T`
are views of buffers, created once at trace time, so they cost nothing per step.
"""

from __future__ import annotations

import functools

import numpy as np


class Tape:
    def __init__(self):
        self.ops: list[tuple] = []

    def record(self, fn, args, example, elementwise=False):
        """Append fn(*args, out) with out = a fresh buffer holding `example` (the eager result).

        For elementwise ufuncs every operand is made the output's shape and C-contiguous
        first (constants at trace time, buffers by a recorded np.copyto), because numpy's
        broadcasting iterator allocates scratch memory on each call; same-shape contiguous
        operands and 0-d constants take numpy's allocation-free fast path.
        """
        out = np.empty_like(example, order="C")
        out[...] = example
        if elementwise:
            args = tuple(self._same_shape(a, out) for a in args)
        else:
            args = tuple(self._contiguous(a) for a in args)
        if fn in (np.maximum, np.minimum):  # numpy deprecates a positional out for these two
            self.ops.append((functools.partial(fn, out=out), args))
        else:
            self.ops.append((fn, args + (out,)))
        return Sym(self, out)

    def _same_shape(self, a, out):
        if isinstance(a, Sym):
            v = a.value
            if v.shape == out.shape and v.flags.c_contiguous:
                return v
            buf = np.empty(out.shape, dtype=v.dtype)
            src = np.broadcast_to(v, out.shape)
            np.copyto(buf, src)
            self.ops.append((np.copyto, (buf, src)))
            return buf
        a = np.asarray(a, dtype=out.dtype if not isinstance(a, np.ndarray) else a.dtype)
        if a.ndim == 0:
            return a
        return np.ascontiguousarray(np.broadcast_to(a, out.shape))

    def _contiguous(self, a):
        if isinstance(a, Sym):
            v = a.value
            if v.flags.c_contiguous:
                return v
            buf = np.ascontiguousarray(v)
            self.ops.append((np.copyto, (buf, v)))
            return buf
        if isinstance(a, (list, tuple)):
            return type(a)(_val(v) for v in a)
        return np.ascontiguousarray(a) if isinstance(a, np.ndarray) else a

    def run(self):
        for fn, args in self.ops:
            fn(*args)


def _val(a):
    if isinstance(a, Sym):
        return a.value
    if isinstance(a, (list, tuple)):
        return type(a)(_val(v) for v in a)
    return a


class Sym:
    """A recording array: wraps a buffer; arithmetic records ufunc calls on the tape."""

    __array_ufunc__ = None  # make numpy defer to our reflected operators (ndarray * Sym)
    __array_priority__ = 1000

    def __init__(self, tape: Tape, value: np.ndarray):
        self.tape = tape
        self.value = value

    # -- metadata --------------------------------------------------------------------
    shape = property(lambda self: self.value.shape)
    dtype = property(lambda self: self.value.dtype)
    ndim = property(lambda self: self.value.ndim)

    def dim(self):
        return self.value.ndim

    def __len__(self):
        return len(self.value)

    # -- views: no tape entry ---------------------------------------------------------
    def __getitem__(self, idx):
        items = idx if isinstance(idx, tuple) else (idx,)
        if not all(i is None or i is Ellipsis or isinstance(i, (slice, int)) for i in items):
            raise TypeError("only basic indexing (slices, ints, None) can be traced")
        return Sym(self.tape, self.value[idx])

    @property
    def T(self):
        return Sym(self.tape, self.value.T)

    # -- arithmetic ---------------------------------------------------------------------
    def _bin(self, fn, a, b):
        return self.tape.record(fn, (a, b), fn(_val(a), _val(b)), elementwise=fn is not np.matmul)

    def __add__(self, o): return self._bin(np.add, self, o)
    def __radd__(self, o): return self._bin(np.add, o, self)
    def __sub__(self, o): return self._bin(np.subtract, self, o)
    def __rsub__(self, o): return self._bin(np.subtract, o, self)
    def __mul__(self, o): return self._bin(np.multiply, self, o)
    def __rmul__(self, o): return self._bin(np.multiply, o, self)
    def __truediv__(self, o): return self._bin(np.true_divide, self, o)
    def __rtruediv__(self, o): return self._bin(np.true_divide, o, self)
    def __matmul__(self, o): return self._bin(np.matmul, self, o)
    def __rmatmul__(self, o): return self._bin(np.matmul, o, self)

    def __neg__(self):
        return self.tape.record(np.negative, (self,), np.negative(self.value), elementwise=True)

    def __pos__(self):
        return self

    def sum(self, axis=None, dim=None):
        return RecordingOps.sum(self, axis if dim is None else dim)


def _unary(fn, x):
    if not isinstance(x, Sym):
        return fn(x)
    return x.tape.record(fn, (x,), fn(x.value), elementwise=True)


class RecordingOps:
    """The `xp` namespace for tracing: same primitives as F.NumpyOps, recorded."""

    name = "numpy-traced"

    @staticmethod
    def sigmoid(x):
        # identical formula to F.NumpyOps.sigmoid, so traced == eager bit for bit
        return 0.5 + 0.5 * RecordingOps.tanh(0.5 * x)

    @staticmethod
    def tanh(x):
        return _unary(np.tanh, x)

    @staticmethod
    def exp(x):
        return _unary(np.exp, x)

    @staticmethod
    def abs(x):
        return _unary(np.abs, x)

    @staticmethod
    def relu(x):
        if not isinstance(x, Sym):
            return np.maximum(x, 0)
        zero = np.zeros((), dtype=x.dtype)
        return x.tape.record(np.maximum, (x, zero), np.maximum(x.value, zero), elementwise=True)

    @staticmethod
    def silu(x):
        return x * RecordingOps.sigmoid(x)

    @staticmethod
    def addmm(c, a, b):
        # same formula as F.NumpyOps.addmm: a matmul and an add, each into its own buffer
        return c + a @ b

    @staticmethod
    def gelu(x):
        # no numpy ufunc for erf: F.NumpyOps.gelu as an opaque (allocating) op
        from ltc_edge.nn.functional import NumpyOps

        if not isinstance(x, Sym):
            return NumpyOps.gelu(x)
        return x.tape.record(_copy_result(NumpyOps.gelu), (x,), NumpyOps.gelu(x.value))

    @staticmethod
    def softplus(x):
        from ltc_edge.nn.functional import NumpyOps

        if not isinstance(x, Sym):
            return NumpyOps.softplus(x)
        return x.tape.record(_copy_result(NumpyOps.softplus), (x,), NumpyOps.softplus(x.value))

    @staticmethod
    def sum(x, axis):
        if not isinstance(x, Sym):
            return x.sum(axis=axis)
        return x.tape.record(_reduce_sum(axis), (x,), x.value.sum(axis=axis))

    @staticmethod
    def concat(xs, axis):
        if not any(isinstance(v, Sym) for v in xs):
            return np.concatenate(xs, axis=axis)
        tape = next(v.tape for v in xs if isinstance(v, Sym))
        vals = [_val(v) for v in xs]
        out = np.concatenate(vals, axis=axis)
        # one np.copyto per part into a view of the output (np.concatenate(..., out=) is
        # avoided: in numpy 2.4 it leaks a little memory per call)
        ax = axis % out.ndim
        start = 0
        for v, a in zip(xs, vals):
            stop = start + a.shape[ax]
            idx = (slice(None),) * ax + (slice(start, stop),)
            if isinstance(v, Sym):
                tape.ops.append((np.copyto, (out[idx], a)))
            start = stop
        return Sym(tape, out)


def _reduce_sum(axis):
    def fn(a, out):
        np.add.reduce(a, axis, None, out)
    return fn


def _copy_result(f):
    def fn(a, out):
        out[...] = f(a)
    return fn


class TracedStep:
    """F.model_step for a fixed batch size as a replayable tape.

    Buffers: `x` [B, in], `h` [B, state], `dt` [B, 1] are the inputs (write into them),
    `y` [B, out] and `h_new` [B, state] the outputs (read them after `run()`).
    """

    def __init__(self, P, config, batch: int, dtype=np.float32):
        from ltc_edge.nn import functional as F

        self.batch = batch
        n_in, n_state = config["input_size"], F.state_size(config)
        rng = np.random.default_rng(0)
        tape = Tape()
        # trace on non-trivial values: nothing depends on them but eager evaluation runs on them
        x = Sym(tape, (0.1 * rng.standard_normal((batch, n_in))).astype(dtype))
        h = Sym(tape, (0.1 * rng.standard_normal((batch, n_state))).astype(dtype))
        dt = Sym(tape, np.ones((batch, 1), dtype=dtype))
        y, h_new = F.model_step(RecordingOps, P, x, h, dt, config)
        self.tape = tape
        self.x, self.h, self.dt = x.value, h.value, dt.value
        self.y = _as_buffer(tape, y, (batch, config["output_size"]), dtype)
        self.h_new = _as_buffer(tape, h_new, (batch, n_state), dtype)
        self.n_ops = len(tape.ops)

    def run(self):
        self.tape.run()


def _as_buffer(tape, v, shape, dtype):
    """The output of the trace as a buffer the tape writes (a copy op if it is an input
    or a constant, e.g. a model whose output does not depend on the step)."""
    if isinstance(v, Sym):
        buf = v.value
        if buf.shape != shape:
            raise ValueError(f"traced output has shape {buf.shape}, expected {shape}")
        return buf
    out = np.empty(shape, dtype=dtype)
    out[...] = v
    return out
