"""onnxruntime backend: a one-step ONNX graph with inputs x[B, in], state[B, S], dt[B, 1]
(dt absent when exported with a fixed dt) and outputs y, new_state. With a manifest (an
export folder, or a .onnx inside one) the bytes onnxruntime parses are the sha256-checked ones;
a bare .onnx is taken as the user's own file, sizes read from the graph. An --ort export's
model.ort or model_b1.onnx runs when named (onnxruntime reads the ORT format's bytes as well)."""

from __future__ import annotations

from ltc_edge.fileio import LIMITS, read_bytes

from .backend import Backend, check_options, check_threads
from .errors import BackendUnavailableError, ModelLoadError, UnsafeFileError
from .meta import ModelMeta, attach_bounds, meta_from_manifest, open_artifact


def _dim(d):
    return d if isinstance(d, int) else None


def _read_model(path):
    try:
        return read_bytes(path, "ONNX model", LIMITS["artifact"])
    except (FileNotFoundError, UnsafeFileError) as e:
        raise ModelLoadError(str(e)) from None


def _meta_from_graph(path, ins, outs, has_dt) -> ModelMeta:
    sizes = [ins["x"].shape[-1], ins["state"].shape[-1], outs["y"].shape[-1]]
    if not all(isinstance(v, int) and v > 0 for v in sizes):
        raise ModelLoadError(f"{path}: no manifest.json and the graph's sizes are not static")
    return ModelMeta(input_size=sizes[0], output_size=sizes[2], state_size=sizes[1], kind="?",
                     uses_dt=has_dt, source=str(path), bounds_note="no manifest: LTC bounds unknown")


def _check_dims(path, tensors: dict) -> None:
    """Every graph tensor's last dimension must be what the manifest says (a manifest off by
    one would otherwise feed the graph a wrong-sized buffer)."""
    for role, (t, n) in tensors.items():
        shape = list(t.shape)
        if len(shape) != 2 or _dim(shape[1]) != n:
            raise ModelLoadError(f"{path}: graph tensor {role} has shape {shape}, the manifest implies [B, {n}]")


class OnnxBackend(Backend):
    name = "onnxruntime"

    def __init__(self, path, batch: int = 1, *, threads: int = 1, model_file=None, **kw):
        check_options("onnxruntime", kw)
        try:
            import onnxruntime  # noqa: F401  (its absence is reported in one line)
        except ImportError:
            raise BackendUnavailableError("the onnxruntime backend needs onnxruntime: "
                                          "pip install 'ltc-edge[onnx]'") from None
        manifest, path, data = open_artifact(path, "onnx", role=None)  # a folder: model.onnx; or model.ort
        if data is None:  # a bare .onnx: sizes come from the graph
            data = _read_model(path)
        self.path, self._data, self._threads = path, data, check_threads(threads)
        self.sess, self._sess_batch = self._session(None), None
        ins = {i.name: i for i in self.sess.get_inputs()}
        outs = {o.name: o for o in self.sess.get_outputs()}
        if "x" not in ins or "state" not in ins or not {"y", "new_state"} <= set(outs):
            raise ModelLoadError(f"{path}: expected inputs x, state (and dt) and outputs y, new_state; found "
                                 f"{', '.join(ins)} -> {', '.join(outs)}")
        self.has_dt = "dt" in ins
        self.out_names = ["y", "new_state"]
        self.meta = meta_from_manifest(manifest, path) if manifest else _meta_from_graph(path, ins, outs, self.has_dt)
        if model_file is not None:
            attach_bounds(self.meta, model_file)
        m = self.meta
        _check_dims(path, {"x": (ins["x"], m.input_size), "state": (ins["state"], m.state_size),
                           "y": (outs["y"], m.output_size), "new_state": (outs["new_state"], m.state_size)})
        if self.has_dt != (m.uses_dt and m.fixed_dt is None) and manifest is not None:
            raise ModelLoadError(f"{path}: the graph {'has' if self.has_dt else 'lacks'} a dt input, "
                                 "its manifest says otherwise")
        if not self.has_dt and m.fixed_dt is None and m.uses_dt:
            m.fixed_dt = m.default_dt  # a bare graph with a baked dt it does not state
        self.fixed_batch = _dim(ins["x"].shape[0])
        self.bind(batch)

    def _session(self, batch):
        """An onnxruntime session of the verified bytes; with `batch`, the graph's symbolic "batch"
        dimension fixed to it (static shapes: a step about 0.95x the time, benchmarks/results/ort_speed.json)."""
        import onnxruntime as ort

        so = ort.SessionOptions()
        so.intra_op_num_threads, so.inter_op_num_threads, so.log_severity_level = self._threads, 1, 3
        if batch is not None:
            so.add_free_dimension_override_by_name("batch", batch)
        try:
            return ort.InferenceSession(self._data, so, providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own exception types
            raise ModelLoadError(f"{self.path}: not a loadable ONNX model ({str(e).splitlines()[0][:200]})") from None

    def bind(self, batch: int) -> None:
        if self.fixed_batch is not None and self.fixed_batch != batch:
            raise ModelLoadError(f"{self.path}: the ONNX graph has a fixed batch of {self.fixed_batch}; "
                                 f"re-export with a dynamic batch to step {batch} rows")
        super().bind(batch)
        if self._sess_batch != self.batch:  # a session with this batch size fixed (a reset to another: a new one)
            self.sess, self._sess_batch = self._session(self.batch), self.batch
        self.io = self._bound_io()

    def _bound_io(self):
        """An IOBinding of OrtValues over this backend's own buffers: onnxruntime reads x, state
        (and dt) where the Controller wrote them and writes y and new_state in place, so a step
        builds no feed dict and allocates no output arrays (about 0.72x the time of sess.run's step
        for the LTC-19 NCP: benchmarks/results/ort_speed.json)."""
        from onnxruntime import OrtValue

        io = self.sess.io_binding()
        buffers = {"x": self.x, "state": self.h, **({"dt": self.dt} if self.has_dt else {})}
        self._values = {name: OrtValue.ortvalue_from_numpy(a) for name, a in  # no copy: views of the arrays
                        {**buffers, "y": self.y, "new_state": self.h_new}.items()}
        for name in buffers:
            io.bind_ortvalue_input(name, self._values[name])
        for name in self.out_names:
            io.bind_ortvalue_output(name, self._values[name])
        return io

    def run(self) -> None:
        self.sess.run_with_iobinding(self.io)

    def describe(self) -> dict:
        return {"file": str(self.path), "has_dt_input": self.has_dt}
