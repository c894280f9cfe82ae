"""TFLite backend: ai-edge-litert's Interpreter (else tflite-runtime's). Inputs and outputs
are matched by name (x, state, dt -> y, new_state; TFLite mangles names, so substrings
count) and, failing that, by shape."""

from __future__ import annotations

import os as _os

# LiteRT / TensorFlow Lite log every conversion and delegate at INFO: keep a user's terminal clean
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_os.environ.setdefault("GLOG_minloglevel", "2")

import re

import numpy as np

from .backend import Backend, check_options, check_threads
from .errors import BackendUnavailableError, ModelLoadError
from .meta import attach_bounds, meta_from_manifest, open_artifact


def _interpreter_class():
    try:
        from ai_edge_litert.interpreter import Interpreter
        return Interpreter
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter
        return Interpreter
    except ImportError:
        raise BackendUnavailableError("the tflite backend needs ai-edge-litert (pip install "
                                      "'ltc-edge[tflite]') or tflite-runtime") from None


def _assign(details, roles, sizes, what):
    """{role: detail}: by name (x, state, dt / y, new_state, TFLite-mangled), else by the
    position number in converter names (serving_default_args_0, ..._output_1_output), else
    by the last dimension."""
    def base(d):
        return d["name"].split(":")[0]

    by_name = {}
    for role in roles:
        hits = [d for d in details if base(d) == role or re.search(rf"(^|[_/]){role}$", base(d))]
        if len(hits) == 1:
            by_name[role] = hits[0]
    if len(by_name) == len(details) == len(roles):
        return by_name
    nums = [re.findall(r"(\d+)", base(d)) for d in details]
    if all(nums) and len({int(n[-1]) for n in nums}) == len(details) and len(details) == len(roles):
        ordered = [d for _, d in sorted(zip([int(n[-1]) for n in nums], details), key=lambda t: t[0])]
        return dict(zip(roles, ordered))
    out = {}
    for role, size in zip(roles, sizes):
        hits = [d for d in details if int(d["shape"][-1]) == size and d not in out.values()]
        if len(hits) != 1:
            raise ModelLoadError(f"cannot tell which TFLite {what} tensor is {role!r} (names: "
                                 f"{', '.join(d['name'] for d in details)})")
        out[role] = hits[0]
    return out


def to_tensor(d: dict, v: np.ndarray) -> np.ndarray:
    """Float values in a tensor's type: as they are for float32, quantised with the tensor's
    scale and zero point for an integer tensor (the I/O of a full-int8 model)."""
    if d["dtype"] == np.float32:
        return v
    scale, zp = d["quantization"]
    info = np.iinfo(d["dtype"])
    return np.clip(np.round(v / scale) + zp, info.min, info.max).astype(d["dtype"])


def from_tensor(d: dict, v: np.ndarray) -> np.ndarray:
    """A tensor's values as float32 (dequantised for an integer tensor)."""
    if d["dtype"] == np.float32:
        return v
    scale, zp = d["quantization"]
    return ((v.astype(np.float32) - zp) * scale).astype(np.float32)


class TFLiteBackend(Backend):
    name = "tflite"

    def __init__(self, path, batch: int = 1, *, threads: int = 1, model_file=None, **kw):
        check_options("tflite", kw)
        Interpreter = _interpreter_class()
        manifest, path, data = open_artifact(path, "tflite")
        if manifest is None:
            raise ModelLoadError(f"{path}: no manifest.json beside it (export writes one; it names the inputs, "
                                 "outputs, sizes and checksums)")
        try:  # the sha256-checked bytes, not the path: nothing can swap the file in between
            self.interp = Interpreter(model_content=data, num_threads=check_threads(threads))
        except Exception as e:  # the interpreter raises ValueError/RuntimeError variants
            raise ModelLoadError(f"{path}: not a loadable TFLite model ({str(e).splitlines()[0][:200]})") from None
        self.meta = meta_from_manifest(manifest, path)
        if model_file is not None:
            attach_bounds(self.meta, model_file)
        m = self.meta
        ins, outs = self.interp.get_input_details(), self.interp.get_output_details()
        if len(ins) not in (2, 3) or len(outs) != 2:
            raise ModelLoadError(f"{path}: expected inputs (x, state[, dt]) and outputs (y, new_state), "
                                 f"found {len(ins)} inputs and {len(outs)} outputs")
        roles = ["x", "state", "dt"][:len(ins)]
        a = _assign(ins, roles, [m.input_size, m.state_size, 1], "input")
        self.in_x, self.in_h, self.in_dt = a["x"], a["state"], a.get("dt")
        a = _assign(outs, ["y", "new_state"], [m.output_size, m.state_size], "output")
        self.out_y, self.out_h = a["y"], a["new_state"]
        for d, n, role in ((self.in_x, m.input_size, "x"), (self.in_h, m.state_size, "state"),
                           (self.out_y, m.output_size, "y"), (self.out_h, m.state_size, "new_state")):
            if int(d["shape"][-1]) != n:
                raise ModelLoadError(f"{path}: tensor {role} has shape {list(d['shape'])}, the manifest implies "
                                     f"[B, {n}]")
        if self.in_dt is None and m.fixed_dt is None and m.uses_dt:
            m.fixed_dt = m.default_dt
        self.path = path
        self._bound = None
        self.bind(batch)

    def bind(self, batch: int) -> None:
        super().bind(batch)
        sig = self.in_x.get("shape_signature", self.in_x["shape"])
        # a graph with a static batch of 1 (what litert-torch writes) steps rows one by one
        self.row_loop = batch > 1 and int(sig[0]) != -1
        want = 1 if self.row_loop else batch
        if self._bound != want:
            it = self.interp
            sizes = [(self.in_x, self.meta.input_size), (self.in_h, self.meta.state_size)]
            if self.in_dt is not None:
                sizes.append((self.in_dt, 1))
            try:
                for d, n in sizes:
                    it.resize_tensor_input(d["index"], [want, n], strict=False)
                it.allocate_tensors()
            except (RuntimeError, ValueError) as e:
                raise ModelLoadError(f"{self.path}: cannot run this TFLite model with batch {batch} "
                                     f"({str(e).splitlines()[0][:160]})") from None
            self._bound = want
        rows = range(batch) if self.row_loop else [slice(None)]
        self._rows = [(self.x[r:r + 1], self.h[r:r + 1], self.dt[r:r + 1], self.y[r:r + 1], self.h_new[r:r + 1])
                      if self.row_loop else (self.x, self.h, self.dt, self.y, self.h_new) for r in rows]

    def run(self) -> None:
        # the interpreter is not re-entrant (a second thread's set_tensor during invoke raises
        # RuntimeError): callers serialise steps, as the Controller's lock does
        it = self.interp
        ix, ih, idt = self.in_x, self.in_h, self.in_dt
        oy, oh = self.out_y, self.out_h
        for x, h, dt, y, h_new in self._rows:  # to_tensor/from_tensor: no copy for float32 I/O
            it.set_tensor(ix["index"], to_tensor(ix, x))
            it.set_tensor(ih["index"], to_tensor(ih, h))
            if idt is not None:
                it.set_tensor(idt["index"], to_tensor(idt, dt))
            it.invoke()
            np.copyto(y, from_tensor(oy, it.get_tensor(oy["index"])))
            np.copyto(h_new, from_tensor(oh, it.get_tensor(oh["index"])))

    def describe(self) -> dict:
        return {"file": str(self.path), "has_dt_input": self.in_dt is not None}
