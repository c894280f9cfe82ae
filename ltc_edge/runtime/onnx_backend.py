"""onnxruntime backend: a one-step ONNX graph with inputs x[B, in], state[B, S], dt[B, 1]
(dt absent when exported with a fixed dt) and outputs y, new_state (names from manifest.json
when there is one beside the file)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .backend import Backend
from .errors import BackendUnavailableError, ModelLoadError
from .meta import ModelMeta, attach_bounds, meta_from_manifest, read_manifest


def _dim(d):
    return d if isinstance(d, int) else None


class OnnxBackend(Backend):
    name = "onnxruntime"

    def __init__(self, path, batch: int = 1, *, threads: int = 1, model_file=None, **kw):
        if kw:
            raise ValueError(f"onnxruntime backend: unknown option(s) {', '.join(sorted(kw))}")
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailableError("the onnxruntime backend needs onnxruntime: "
                                          "pip install 'ltc-edge[onnx]'") from None
        path = Path(path)
        if not path.is_file():
            raise ModelLoadError(f"{path}: no such ONNX file")
        so = ort.SessionOptions()
        so.intra_op_num_threads = int(threads)
        so.inter_op_num_threads = 1
        so.log_severity_level = 3
        try:
            self.sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelLoadError(f"{path}: not a loadable ONNX model ({str(e).splitlines()[0][:200]})") from None
        ins = {i.name: i for i in self.sess.get_inputs()}
        outs = [o.name for o in self.sess.get_outputs()]
        if "x" not in ins or "state" not in ins:
            raise ModelLoadError(f"{path}: expected inputs x and state (and dt), found {', '.join(ins)}")
        self.has_dt = "dt" in ins
        self.out_names = ["y", "new_state"] if {"y", "new_state"} <= set(outs) else outs[:2]
        try:
            self.meta = meta_from_manifest(read_manifest(path), path)
        except ModelLoadError:
            if (path.parent / "manifest.json").exists():
                raise
            xs, ss = ins["x"].shape, ins["state"].shape
            ys = self.sess.get_outputs()[0].shape
            if not all(isinstance(v, int) for v in (xs[-1], ss[-1], ys[-1])):
                raise ModelLoadError(f"{path}: no manifest.json and the graph's sizes are not static") from None
            self.meta = ModelMeta(input_size=xs[-1], output_size=ys[-1], state_size=ss[-1], kind="?",
                                  uses_dt=self.has_dt, source=str(path),
                                  bounds_note="no manifest: LTC bounds unknown")
        if model_file is not None:
            attach_bounds(self.meta, model_file)
        m = self.meta
        if tuple(_dim(d) for d in ins["x"].shape[1:]) not in ((m.input_size,), (None,)):
            raise ModelLoadError(f"{path}: input x has shape {ins['x'].shape}, manifest says {m.input_size} inputs")
        if not self.has_dt and m.fixed_dt is None and m.uses_dt:
            # exported with a baked dt the manifest does not state: only the default applies
            m.fixed_dt = m.default_dt
        self.fixed_batch = _dim(ins["x"].shape[0])
        self.path = path
        self.bind(batch)

    def bind(self, batch: int) -> None:
        if self.fixed_batch is not None and self.fixed_batch != batch:
            raise ModelLoadError(f"{self.path}: the ONNX graph has a fixed batch of {self.fixed_batch}; "
                                 f"re-export with a dynamic batch to step {batch} rows")
        super().bind(batch)
        self.feeds = {"x": self.x, "state": self.h}
        if self.has_dt:
            self.feeds["dt"] = self.dt

    def run(self) -> None:
        y, h = self.sess.run(self.out_names, self.feeds)
        np.copyto(self.y, y)
        np.copyto(self.h_new, h)

    def describe(self) -> dict:
        return {"file": str(self.path), "has_dt_input": self.has_dt}
