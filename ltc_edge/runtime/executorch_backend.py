"""ExecuTorch backend: a `--format executorch` export folder (model.pte: the step graph,
XNNPACK-delegated) in ExecuTorch's runtime (its Python bindings). The program has batch 1
(what a control loop steps); a batch is stepped row by row. Inputs are handed over as torch
views of the backend's own numpy buffers (no copy); the bindings return new output tensors
each step, which are copied into the backend's outputs (that allocation is the runtime's)."""

from __future__ import annotations

import contextlib
import os
import sys

import numpy as np

from .backend import Backend, check_options, check_threads
from .errors import BackendUnavailableError, ModelLoadError
from .meta import attach_bounds, meta_from_manifest, open_artifact


@contextlib.contextmanager
def _stderr_silenced():
    """ExecuTorch's C++ logs CPU probing ("cpuinfo_utils.cpp ...") and torchao its optional
    kernels on stderr when the runtime starts: keep a user's terminal to one line."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


_PYBINDINGS = "executorch.extension.pybindings.portable_lib"
_POOL = {}  # "threads": the size of ExecuTorch's threadpool in this process, once known


def threadpool_size(threads: int = 1) -> int | None:
    """Size ExecuTorch's threadpool to `threads` where that is safe, and return its size.
    ExecuTorch has one pool per process, sized to the cores when created, and one control,
    _unsafe_reset_threadpool, safe only before any program is loaded (a program keeps the pool
    it was loaded with: resizing under it crashed here). So the pool is sized once, before this
    process's first load, and only if nothing imported ExecuTorch's runtime before; every later
    load runs on the pool as it is. One thread is what the onnxruntime and LiteRT backends use:
    at batch 1 ExecuTorch's step takes 0.6x the time on one thread as on two."""
    if "threads" not in _POOL:
        fresh = _PYBINDINGS not in sys.modules
        with _stderr_silenced():  # its C++ logs the reset
            from executorch.extension.pybindings import portable_lib

            reset = getattr(portable_lib, "_unsafe_reset_threadpool", None)
            count = getattr(portable_lib, "_threadpool_get_thread_count", None)
            if fresh and reset is not None and count is not None and count() != threads:
                reset(threads)
            _POOL["threads"] = None if count is None else int(count())  # None: this ExecuTorch does not say
    return _POOL["threads"]


def load_method(content: bytes, source, threads: int = 1):
    """The forward method of a .pte program (its bytes) in ExecuTorch's runtime (it keeps its
    program alive: a method whose program is freed crashes), on a pool of `threads` where it
    can be sized (threadpool_size)."""
    try:
        threadpool_size(threads)
        with _stderr_silenced():
            from executorch.runtime import Runtime

            program = Runtime.get().load_program(content)
            method = program.load_method("forward")
            method.program = program
            return method
    except ImportError:
        raise BackendUnavailableError("the executorch backend needs executorch: "
                                      "pip install 'ltc-edge[executorch]'") from None
    except Exception as e:  # the bindings raise RuntimeError / ValueError variants
        raise ModelLoadError(f"{source}: not a loadable ExecuTorch program "
                             f"({' '.join(str(e).split())[:200] or type(e).__name__})") from None


def _sizes(meta_list, count):
    return [list(meta_list(i).sizes()) for i in range(count)]


class ExecuTorchBackend(Backend):
    name = "executorch"

    def __init__(self, path, batch: int = 1, *, threads: int = 1, model_file=None, **kw):
        check_options("executorch", kw)
        threads = check_threads(threads)
        manifest, path, data = open_artifact(path, "executorch")
        if manifest is None:
            raise ModelLoadError(f"{path}: no manifest.json beside it (ltc export --format executorch writes one; "
                                 "it names the inputs, outputs, sizes and checksums)")
        self.meta = meta_from_manifest(manifest, path)
        if model_file is not None:
            attach_bounds(self.meta, model_file)
        self.method = load_method(data, path, threads)
        self.threads = threadpool_size()
        self.has_dt = len(manifest.inputs) == 3
        self._check_io(path)
        self.path = path
        self.bind(batch)

    def _check_io(self, path) -> None:
        """The program's tensors must be what the manifest says: [1, in], [1, S] (, [1, 1]) ->
        [1, out], [1, S]."""
        m, md = self.meta, self.method.metadata
        want_in = [[1, m.input_size], [1, m.state_size]] + ([[1, 1]] if self.has_dt else [])
        want_out = [[1, m.output_size], [1, m.state_size]]
        got_in = _sizes(md.input_tensor_meta, md.num_inputs())
        got_out = _sizes(md.output_tensor_meta, md.num_outputs())
        if got_in != want_in or got_out != want_out:
            raise ModelLoadError(f"{path}: the program's tensors are {got_in} -> {got_out}, "
                                 f"the manifest implies {want_in} -> {want_out}")

    def bind(self, batch: int) -> None:
        import torch

        super().bind(batch)
        views = [(self.x, self.h, self.dt, self.y, self.h_new)]
        views = [tuple(a[r:r + 1] for a in views[0]) for r in range(self.batch)]
        self._rows = [([torch.from_numpy(x), torch.from_numpy(h)] + ([torch.from_numpy(dt)] if self.has_dt else []),
                       y, h_new) for x, h, dt, y, h_new in views]

    def run(self) -> None:
        for feeds, y, h_new in self._rows:
            out_y, out_h = self.method.execute(feeds)
            np.copyto(y, out_y.numpy())
            np.copyto(h_new, out_h.numpy())

    def describe(self) -> dict:
        return {"file": str(self.path), "has_dt_input": self.has_dt, "delegate": "XNNPACK",
                "threads": self.threads}
