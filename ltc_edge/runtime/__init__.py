"""The ltc-edge runtime: run a model in a control loop with numpy alone (+ the backend's
own package). No torch.

    from ltc_edge.runtime import load
    ctrl = load("model.safetensors")          # or .onnx / .tflite / a compiled C .so / a folder
    ctrl.reset()
    y = ctrl.step(x, dt=0.05)                 # x[in] or x[B, in]; y is a view, overwritten next step
    ctrl.state                                # [B, state]

Backends (BACKENDS, name -> "module:Class", imported lazily): numpy (traced F.model_step,
allocation-free), onnxruntime, tflite (ai-edge-litert or tflite-runtime), c (ctypes over the
generated C library), tflm (TensorFlow Lite for Microcontrollers' interpreter, for
`--precision int8-tflm` TFLite exports), executorch (ExecuTorch's runtime, for `--format executorch`
exports: torch, not numpy alone). Every backend shares the Controller's guards (see controller.py).
"""

from __future__ import annotations

from pathlib import Path

from ltc_edge import artifact

from .backend import check_batch, short_repr
from .controller import Controller
from .errors import (BackendUnavailableError, InputDtypeError, InputShapeError, ModelLoadError,
                     NonFiniteInputError, RuntimeInputError, StateBoundError)

BACKENDS = {
    "numpy": "ltc_edge.runtime.numpy_backend:NumpyBackend",
    "onnxruntime": "ltc_edge.runtime.onnx_backend:OnnxBackend",
    "tflite": "ltc_edge.runtime.tflite_backend:TFLiteBackend",
    "c": "ltc_edge.runtime.c_backend:CBackend",
    "tflm": "ltc_edge.runtime.tflm_backend:TFLMBackend",
    "executorch": "ltc_edge.runtime.executorch_backend:ExecuTorchBackend",  # a --format executorch export (.pte)
    "mcu": "ltc_edge.runtime.serial_backend:SerialBackend",  # --backend mcu:CORE, a board on a serial port
}

# file suffix -> the backend "auto" picks
_BY_SUFFIX = {".safetensors": "numpy", ".onnx": "onnxruntime", ".ort": "onnxruntime", ".tflite": "tflite",
              ".pte": "executorch",
              ".so": "c", ".dylib": "c", ".dll": "c", ".c": "c", ".h": "c"}
_BY_FORMAT = {"onnx": "onnxruntime", "tflite": "tflite", "c": "c", "executorch": "executorch"}
# The one set of backend names: every command with a --backend option (control, eval
# --streaming, bench, analyze robustness) takes these names and aliases, through backend_name.
BACKEND_ALIASES = {"onnx": "onnxruntime", "ort": "onnxruntime", "litert": "tflite", "np": "numpy",
                   "tflite-micro": "tflm", "et": "executorch", "pte": "executorch"}
# the export format each backend runs; numpy and c also run a .safetensors model itself
BACKEND_FORMATS = {"onnxruntime": "onnx", "tflite": "tflite", "tflm": "tflite", "c": "c", "executorch": "executorch"}
RUNS_MODEL_FILE = ("numpy", "c", "mcu")

__all__ = ["load", "Controller", "BACKENDS", "BACKEND_ALIASES", "backend_name", "backend_list", "get_backend",
           "RuntimeInputError", "ModelLoadError", "InputShapeError", "InputDtypeError", "NonFiniteInputError",
           "StateBoundError", "BackendUnavailableError"]


def backend_choices(choices=None) -> str:
    """'numpy (np), onnxruntime (onnx, ort), ...': the names `choices` (default: every backend)
    accept, each with its aliases."""
    names = list(BACKENDS) if choices is None else list(choices)
    return ", ".join(n + "".join(f" ({', '.join(a)})" for a in [[k for k, v in BACKEND_ALIASES.items() if v == n]]
                                 if a) for n in names)


def backend_name(name, choices=None) -> str:
    """The canonical name of a backend name or alias; one that is not among `choices` (default:
    every backend; a command may add its own, e.g. bench's torch) is refused in one line that
    lists the valid names."""
    choices = tuple(BACKENDS) if choices is None else tuple(choices)
    canonical = BACKEND_ALIASES.get(name, name) if isinstance(name, str) else name
    if not isinstance(canonical, str) or canonical not in choices:
        raise RuntimeInputError(f"unknown backend {short_repr(name)}; choose from {backend_choices(choices)}")
    return canonical


def backend_list(text: str, choices=None) -> list[str]:
    """A --backend comma list as canonical names (each checked by backend_name)."""
    names = [t.strip() for t in str(text).split(",") if t.strip()]
    if not names:
        raise RuntimeInputError(f"--backend is empty; choose from {backend_choices(choices)}")
    return list(dict.fromkeys(backend_name(n, choices) for n in names))


def get_backend(name: str):
    name = backend_name(name)
    module, cls = BACKENDS[name].split(":")
    return getattr(__import__(module, fromlist=[cls]), cls)


def resolve(path, backend: str = "auto") -> tuple[str, Path]:
    """(backend name, path to hand it) for a model file or an export folder. A folder's
    manifest is schema-checked here; the backend verifies every file's sha256 before use."""
    path = Path(path)
    if not path.exists():
        raise ModelLoadError(f"{path}: no such file or folder")
    if path.is_dir():
        auto = _BY_FORMAT.get(artifact.read(path).format)
    else:
        auto = _BY_SUFFIX.get(path.suffix)
    if backend == "auto":
        if auto is None:
            raise ModelLoadError(f"{path}: unknown model file type {path.suffix!r} (expected "
                                 ".safetensors, .onnx, .ort, .tflite, .pte, a compiled C library .so, or an export folder)")
        return auto, path
    name = backend_name(backend, ("auto", *BACKENDS))
    if path.suffix == ".safetensors" and name not in RUNS_MODEL_FILE:
        raise ModelLoadError(f"{path}: the {name} backend runs an export of the model (ltc export {path.name} "
                             f"--format {BACKEND_FORMATS[name]}); a .safetensors model runs on "
                             f"{' or '.join(RUNS_MODEL_FILE)}")
    return name, path


def load(path, backend: str = "auto", *, batch: int = 1, nonfinite: str = "raise",
         state_check: str = "raise", state_tol: float | None = None, **backend_options) -> Controller:
    """Load a model for stepping. `backend`: auto (by file type), numpy, onnxruntime, tflite, c,
    tflm (an int8-tflm or fp32 TFLite export folder in TFLite-Micro's interpreter), executorch,
    mcu:CORE (the step on a board over a serial port). onnxruntime, tflite and executorch take
    threads= (default 1).

    A .safetensors model also runs on backend="c": its C code is generated and compiled
    on the fly (needs the host C compiler). nonfinite: raise | hold | zero (NaN/inf in x).
    state_check: raise | clip | off (state outside its bounds or NaN).
    """
    if isinstance(backend, str) and backend.startswith("mcu:"):  # mcu:cortex-m4: the board's core
        backend, backend_options["core"] = "mcu", backend[4:]
    name, file = resolve(path, backend)
    cls = get_backend(name)
    batch = check_batch(batch)  # before any backend allocates
    be = cls(file, batch=batch, **backend_options)
    return Controller(be, batch=batch, nonfinite=nonfinite, state_check=state_check, state_tol=state_tol)
