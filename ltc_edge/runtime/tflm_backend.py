"""TFLite-Micro backend: steps a .tflite export in the interpreter of TensorFlow Lite for
Microcontrollers (the `tflite-micro` Python package: the same kernels a Cortex-M runs), state
fed back. Made for `--precision int8-tflm` exports (int8 weights, int8 synapse products and
sigmoids, the LTC's update in float); fp32 exports run too. Other precisions are refused:
TFLM rejects dynamic-range int8 and dequantises only per-tensor, so a per-channel weight
would run silently wrong.

TFLM's graphs have a static batch of 1: a batch is stepped row by row. Inputs and outputs
are matched by the names in the flatbuffer, as the tflite backend does."""

from __future__ import annotations

import numpy as np

from .. import precision as precisions
from .backend import Backend, check_options, short_repr
from .errors import BackendUnavailableError, ModelLoadError, RuntimeInputError
from .meta import attach_bounds, meta_from_manifest, open_artifact
from .tflite_backend import _assign

PRECISIONS = precisions.names("tflite", tflm=True)  # what TFLite-Micro runs (fp32, int8-tflm)
MIN_ARENA = 64 * 1024   # bytes of tensor arena at least (the interpreter's default is 10x the model)
MAX_ARENA = 64 << 20


def _runtime():
    try:
        from tflite_micro.python.tflite_micro import runtime
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    except ImportError:
        raise BackendUnavailableError("the tflm backend needs the tflite-micro package "
                                      "(pip install 'ltc-edge[tflm]')") from None
    return runtime, schema


def io_names(content: bytes, schema) -> tuple[list, list]:
    """(input names, output names) of the main subgraph, in TFLM's index order."""
    sg = schema.Model.GetRootAsModel(content, 0).Subgraphs(0)

    def name(i):
        raw = sg.Tensors(i).Name()
        return raw.decode("utf-8", "replace") if raw else ""

    return ([name(sg.Inputs(k)) for k in range(sg.InputsLength())],
            [name(sg.Outputs(k)) for k in range(sg.OutputsLength())])


def _details(it, getter, names):
    out = []
    for k, n in enumerate(names):
        d = getter(k)
        q = d["quantization_parameters"]
        out.append({"name": n, "index": k, "shape": np.asarray(d["shape"]), "dtype": d["dtype"],
                    "scale": float(q["scales"][0]) if len(q["scales"]) else None,
                    "zero_point": int(q["zero_points"][0]) if len(q["zero_points"]) else 0})
    return out


def _to_input(d, v):
    """float32 -> the input tensor's type (quantised with its scale when integer)."""
    if d["dtype"] == np.float32:
        return np.ascontiguousarray(v, np.float32)
    info = np.iinfo(d["dtype"])
    return np.clip(np.round(v / d["scale"]) + d["zero_point"], info.min, info.max).astype(d["dtype"])


def _from_output(d, v):
    if d["dtype"] == np.float32:
        return v
    return ((v.astype(np.float32) - d["zero_point"]) * d["scale"]).astype(np.float32)


class TFLMStepper:
    """One TFLM interpreter over verified .tflite bytes: step(x[1, in], h[1, S], dt[1, 1])
    -> (y[1, out], h_new[1, S]) float32. Raises ModelLoadError when TFLM cannot prepare the
    graph (an op or type its kernels lack)."""

    def __init__(self, content: bytes, sizes: tuple, arena_size: int | None = None, source: str = "model"):
        runtime, schema = _runtime()
        arena = max(MIN_ARENA, 10 * len(content)) if arena_size is None else arena_size
        try:
            self.interp = runtime.Interpreter.from_bytes(bytes(content), arena_size=int(arena))
            in_names, out_names = io_names(content, schema)
        except Exception as e:  # TFLM raises RuntimeError for an op or type its kernels lack
            reason = " ".join(str(e).split())[:200]
            raise ModelLoadError(f"{source}: TFLite-Micro cannot prepare this model ({reason})") from None
        n_in, n_state, n_out = sizes
        ins = _details(self.interp, self.interp.get_input_details, in_names)
        outs = _details(self.interp, self.interp.get_output_details, out_names)
        if len(ins) not in (2, 3) or len(outs) != 2:
            raise ModelLoadError(f"{source}: expected inputs (x, state[, dt]) and outputs (y, new_state), "
                                 f"found {len(ins)} inputs and {len(outs)} outputs")
        a = _assign(ins, ["x", "state", "dt"][:len(ins)], [n_in, n_state, 1], "input")
        self.order = [a[r] for r in ("x", "state", "dt") if r in a]
        b = _assign(outs, ["y", "new_state"], [n_out, n_state], "output")
        self.out_y, self.out_h = b["y"], b["new_state"]
        for d, n, role in ((a["x"], n_in, "x"), (a["state"], n_state, "state"),
                           (self.out_y, n_out, "y"), (self.out_h, n_state, "new_state")):
            if int(d["shape"][-1]) != n or int(np.prod(d["shape"][:-1])) != 1:
                raise ModelLoadError(f"{source}: tensor {role} has shape {list(d['shape'])}, expected [1, {n}]")
        self.has_dt = "dt" in a

    def step(self, x, h, dt=None):
        it = self.interp
        feeds = (x, h, dt if dt is not None else np.ones((1, 1), np.float32))
        for d, v in zip(self.order, feeds):
            it.set_input(_to_input(d, np.asarray(v, np.float32).reshape(d["shape"])), d["index"])
        it.invoke()
        return (_from_output(self.out_y, it.get_output(self.out_y["index"])),
                _from_output(self.out_h, it.get_output(self.out_h["index"])))

    def runner(self):
        """(x[B, in], state[B, S], dt[B, 1] or None) -> (y, new_state), row by row: the
        export's drift check steps the file through this."""
        def run(x, state, dt):
            ys, hs = [], []
            for b in range(x.shape[0]):
                y, h = self.step(x[b:b + 1], state[b:b + 1], None if dt is None else dt[b:b + 1])
                ys.append(np.array(y, np.float32).reshape(1, -1))
                hs.append(np.array(h, np.float32).reshape(1, -1))
            return np.concatenate(ys), np.concatenate(hs)

        return run


def _check_arena(arena_size):
    if arena_size is None:
        return None
    if isinstance(arena_size, bool) or not isinstance(arena_size, (int, np.integer)) \
            or not 1024 <= arena_size <= MAX_ARENA:
        raise RuntimeInputError(f"arena_size must be an integer number of bytes in [1024, {MAX_ARENA}], "
                                f"got {short_repr(arena_size)}")
    return int(arena_size)


class TFLMBackend(Backend):
    name = "tflm"

    def __init__(self, path, batch: int = 1, *, arena_size=None, model_file=None, **kw):
        check_options("tflm", kw)
        arena_size = _check_arena(arena_size)
        _runtime()  # the package first: a missing one is the clearest error
        manifest, path, data = open_artifact(path, "tflite")
        if manifest is None:
            raise ModelLoadError(f"{path}: the tflm backend runs export folders (manifest.json names the "
                                 "precision, sizes and checksums); export with --precision int8-tflm")
        if manifest.precision not in PRECISIONS:
            raise ModelLoadError(f"{path}: a tflite {manifest.precision} export; TFLite-Micro runs "
                                 f"{' and '.join(PRECISIONS)} exports (export with --precision int8-tflm)")
        self.meta = meta_from_manifest(manifest, path)
        if model_file is not None:
            attach_bounds(self.meta, model_file)
        m = self.meta
        self.stepper = TFLMStepper(data, (m.input_size, m.state_size, m.output_size), arena_size, str(path))
        if not self.stepper.has_dt and m.fixed_dt is None and m.uses_dt:
            m.fixed_dt = m.default_dt
        self.path = path
        self.bind(batch)

    def run(self) -> None:
        # one interpreter, not re-entrant: the Controller's lock serialises steps
        step = self.stepper.step
        dt = self.dt if self.stepper.has_dt else None
        for r in range(self.batch):
            y, h = step(self.x[r:r + 1], self.h[r:r + 1], None if dt is None else dt[r:r + 1])
            self.y[r] = np.reshape(y, -1)
            self.h_new[r] = np.reshape(h, -1)

    def describe(self) -> dict:
        return {"file": str(self.path), "has_dt_input": self.stepper.has_dt, "interpreter": "tflite-micro"}
