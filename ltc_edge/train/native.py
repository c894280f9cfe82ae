"""The native training kernel of dense LTC cells: every semi-implicit unfold of a whole window
of steps in one C call (ltc_window.c), its backward in closed form (no autograd graph of
192 unfolds, no torch.compile wait). What `ltc train --compile` runs for an LTC whose
wiring trains in the dense form (functional.LISTS_MAX_DENSITY) with the semi-implicit solver;
about 2x the torch.compile'd step on the cheetah LTC-32 (benchmarks/train_speed.py).

Everything around the unfolds stays torch and functional.py (input mapping and normalisation,
sensory synapses, cm/Δ, output mapping, readout), so autograd carries the gradients into the
raw parameters. The C file ships with the package and is built with the system C compiler into
a private temporary folder once per process (codegen/toolchain.py's compiler; about half a
second; no cache to trust or go stale).

    library() -> ctypes library (or NativeUnavailable with the reason)
    dense_ltc(config) -> None if the kernel computes this cell, else why not
    gate_bytes(config, batch, steps) -> bytes of the gates a window keeps
    window_too_big(config, batch, steps) -> None if it runs a window this size, else why not
    window_sequence(model, x[B, T, in], dt None or [B, T]) -> y[B, T, out]
"""

from __future__ import annotations

import ctypes
import shutil
import tempfile
from pathlib import Path

import numpy as np
import torch

from ..codegen import toolchain
from ..codegen.cliterals import CodegenError
from ..nn import functional as F

SOURCE = Path(__file__).with_name("ltc_window.c")
# The kernel keeps every gate of the window for the backward (as eager autograd does);
# above this many bytes the torch.compile'd step, which recomputes them, runs instead.
MAX_GATE_BYTES = 2 << 30
# no -ffast-math: its startup code would flush subnormals to zero process-wide (ltc_window.c
# declares glibc's vector expf itself); -fno-math-errno lets the expf calls vectorise
FLAGS = ["-O3", "-march=native", "-fno-math-errno"]


class NativeUnavailable(RuntimeError):
    """No C compiler, or the kernel did not build here."""


_LIB: dict = {}


def _build(out_dir: str) -> ctypes.CDLL:
    lib, error = Path(out_dir) / "ltc_window.so", ""
    for extra in (["-fopenmp"], []):  # without OpenMP (e.g. Apple clang): one thread
        try:
            toolchain.compile_library(SOURCE, lib, flags=FLAGS + extra, libs=["-lm"])
        except CodegenError as e:
            error = str(e)
            continue
        try:
            return ctypes.CDLL(str(lib))
        except OSError as e:  # e.g. a temporary folder mounted noexec
            raise NativeUnavailable(f"the built kernel did not load: {str(e)[:200]}") from None
    raise NativeUnavailable(error)


def library() -> ctypes.CDLL:
    """The built kernel, once per process (a failure is remembered too)."""
    if "lib" not in _LIB:
        out_dir = tempfile.mkdtemp(prefix="ltc-edge-native-")
        try:
            _LIB["lib"] = _build(out_dir)
        except NativeUnavailable as e:
            _LIB["lib"] = e
        finally:
            shutil.rmtree(out_dir, ignore_errors=True)  # the loaded library stays mapped
    if isinstance(_LIB["lib"], NativeUnavailable):
        raise _LIB["lib"]
    return _LIB["lib"]


def dense_ltc(config: dict) -> str | None:
    """None when the cell is one the kernel computes, else why not."""
    cell = config["cell"]
    if cell["kind"] != "ltc":
        return f"a {cell['kind']} cell (the native kernel is the LTC's)"
    if cell.get("solver", "semi_implicit") != "semi_implicit":
        return f"the {cell['solver']} solver (the native kernel is the semi-implicit one)"
    if np.mean(np.abs(np.asarray(cell["wiring"]["adjacency"])) > 0) <= F.LISTS_MAX_DENSITY:
        return "a sparse wiring (it trains in the synapse-list form)"
    return None


def gate_bytes(config: dict, batch: int, steps: int) -> int:
    """Bytes of the sigmoid gates `steps` steps keep for the backward (an LTC's are per synapse
    and unfold): this kernel's window, or a torch.compile'd chunk with saved gates (train/loop.py)."""
    cell = config["cell"]
    n = cell.get("units", 0)
    per_step = n * n * cell.get("ode_unfolds", 1) if cell["kind"] == "ltc" else 8 * max(n, 1)
    return 4 * batch * steps * per_step


def window_too_big(config: dict, batch: int, steps: int) -> str | None:
    """For a dense LTC (dense_ltc): None when the kernel runs a window of this size, else why not."""
    size = gate_bytes(config, batch, steps)
    if size > MAX_GATE_BYTES:
        return f"its gates ({size / 2**30:.1f} GiB) exceed {MAX_GATE_BYTES / 2**30:.0f} GiB"
    return None


def _ptr(t: torch.Tensor):
    return ctypes.c_void_p(t.data_ptr())


class _Window(torch.autograd.Function):
    """(ns, ds, cmt [B,T,N], mu, sigma, w_erev, w [N,N], h0 [B,N]) -> v [B,T,N] after each step."""

    @staticmethod
    def forward(ctx, ns, ds, cmt, mu, sigma, we, w, h0, unfolds):
        ns, ds, cmt, mu, sigma, we, w, h0 = (t.detach().float().contiguous()
                                             for t in (ns, ds, cmt, mu, sigma, we, w, h0))
        B, T, N = ns.shape
        vseq, vin = torch.empty(B, T, N), torch.empty(T, unfolds, B, N)
        gates, D = torch.empty(T, unfolds, B, N, N), torch.empty(T, unfolds, B, N)
        library().ltc_window_forward(torch.get_num_threads(), B, T, N, unfolds, *map(_ptr, (
            ns, ds, cmt, mu, sigma, we, w, h0, vseq, gates, vin, D)))
        ctx.save_for_backward(cmt, mu, sigma, we, w, vseq, gates, vin, D)
        ctx.unfolds = unfolds
        return vseq

    @staticmethod
    def backward(ctx, gv):
        cmt, mu, sigma, we, w, vseq, gates, vin, D = ctx.saved_tensors
        B, T, N = vseq.shape
        per_step = [torch.empty(B, T, N) for _ in range(3)]  # ns, ds, cmt
        g_h0, per_synapse = torch.empty(B, N), [torch.empty(N, N) for _ in range(4)]
        # every tensor the C code reads or writes is named here: alive until the call returns
        gv, scratch = gv.float().contiguous(), torch.empty(4 * N * N * B)
        library().ltc_window_backward(torch.get_num_threads(), B, T, N, ctx.unfolds, *map(_ptr, (
            cmt, mu, sigma, we, w, vseq, gates, vin, D, gv, *per_step, g_h0, *per_synapse, scratch)))
        return (*per_step, *per_synapse, g_h0, None)


def window_sequence(model, x: torch.Tensor, dt: torch.Tensor | None) -> torch.Tensor:
    """x[B, T, in] -> y[B, T, out] from the model's initial state, as functional.model_step
    stepped T times (the unfolds in the kernel, the rest in torch)."""
    xp, P, config = F.ops_for(x), model.prepared(training=True), model.config
    cell, C = config["cell"], P["cell"]
    B, T, _ = x.shape
    rows_dt = 1.0 if dt is None else dt.reshape(B * T, 1)
    num_s, den_s = F.ltc_sensory(xp, C, F.model_input(xp, P, x.reshape(B * T, -1), rows_dt, config))
    unfolds, eps = cell.get("ode_unfolds", 6), cell.get("epsilon", 1e-8)
    ns = (C["gleak_vleak"] + num_s).reshape(B, T, -1)
    ds = (C["gleak"] + den_s + eps).reshape(B, T, -1)
    cmt = C["cm"] * unfolds / (1.0 if dt is None else dt.reshape(B, T, 1))  # cm / (dt / unfolds)
    cmt = cmt.expand(B, T, ns.shape[-1])
    v = _Window.apply(ns, ds, cmt, C["mu"], C["sigma"], C["w_erev"], C["w"], model.initial_state(B), unfolds)
    return F.model_output(P, F.ltc_output(C, v, cell))
