"""The model file: ONE .safetensors file, tensors plus a JSON config in its metadata.

No pickle, ever. Reading needs numpy and safetensors only (the runtime uses `read`);
`load` builds a torch Model on top of it. Writes are atomic: temp file, then rename.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from ..errors import UnsafeFileError
from ..fileio import LIMITS, atomic_write_bytes, read_bytes
from . import functional as F
from .schema import FORMAT, MAX_PARAM_ABS, SUPPORTED_VERSIONS, ModelFileError, validate_config  # noqa: F401 (re-exported)

METADATA_KEY = "ltc_edge"
MAX_HEADER_BYTES = 100_000_000  # safetensors' own header limit: larger is not a model file


def write(path, config: dict, tensors: dict[str, np.ndarray]) -> None:
    """Save numpy tensors and a config as one .safetensors file (atomically)."""
    from safetensors.numpy import save

    validate(config, tensors, where=str(path))
    data = save({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()},
                metadata={METADATA_KEY: json.dumps(config, separators=(",", ":"))})
    atomic_write_bytes(path, data)


def read(path) -> tuple[dict, dict[str, np.ndarray]]:
    """(config, {name: float32 array}) of a model file, validated; ModelFileError otherwise."""
    path = Path(path)
    try:
        raw = read_bytes(path, "model file", LIMITS["model"])
    except (FileNotFoundError, UnsafeFileError) as e:
        if (path / "manifest.json").is_file():  # an export folder where its model file was meant
            raise ModelFileError(f"{path}: an export folder, not a model file: give the .safetensors it was "
                                 f"exported from (ltc info {path} describes the folder)") from None
        raise ModelFileError(str(e)) from None
    config = _read_config(path, raw)
    from safetensors.numpy import load

    try:
        with np.errstate(over="ignore"):  # float64 beyond float32's range: inf, rejected by validate
            tensors = {k: np.asarray(v, dtype=np.float32) for k, v in load(raw).items()}
    except Exception as e:  # safetensors raises its own error types for bad headers/data
        reason = " ".join(str(e).split())[:200]
        raise ModelFileError(f"{path}: corrupt or truncated safetensors data ({reason})") from None
    validate(config, tensors, where=str(path))
    return config, tensors


def _read_config(path, raw: bytes) -> dict:
    if len(raw) < 8:
        raise ModelFileError(f"{path}: not a safetensors file (only {len(raw)} bytes)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ModelFileError(f"{path}: truncated or not a safetensors file "
                             f"(header claims {n} bytes, file has {len(raw) - 8})")
    if n > MAX_HEADER_BYTES:
        raise ModelFileError(f"{path}: not a model file (a {n}-byte header, more than {MAX_HEADER_BYTES})")
    header = _json(raw[8:8 + n], f"{path}: not a safetensors file (header is not JSON)")
    if not isinstance(header, dict):
        raise ModelFileError(f"{path}: not a safetensors file (header is not a JSON object)")
    meta = header.get("__metadata__")
    if meta is not None and not isinstance(meta, dict):
        raise ModelFileError(f"{path}: corrupt safetensors header (__metadata__ is not a JSON object)")
    if not meta or METADATA_KEY not in meta:
        raise ModelFileError(f"{path}: a safetensors file, but not an ltc-edge model "
                             f"(no '{METADATA_KEY}' config in its metadata)")
    if not isinstance(meta[METADATA_KEY], str):
        raise ModelFileError(f"{path}: the ltc-edge config in the metadata is not a JSON string")
    return _json(meta[METADATA_KEY], f"{path}: the ltc-edge config in the metadata is not valid JSON")


def _json(text, message):
    """json.loads, with every way it fails (bad syntax or UTF-8, a 5000-digit number, nesting
    deeper than the recursion limit) as one ModelFileError line."""
    try:
        return json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        raise ModelFileError(message) from None


def validate(config: dict, tensors: dict, where: str = "model") -> None:
    """Check the config against nn.schema, then that every tensor the config implies is
    there with its shape and only finite values."""
    try:
        validate_config(config)
        shapes = F.model_shapes(config)
    except ModelFileError as e:
        raise ModelFileError(f"{where}: invalid model config: {e}") from None
    except (KeyError, TypeError, ValueError, IndexError) as e:  # a gap in the schema: still one line
        raise ModelFileError(f"{where}: inconsistent model config ({type(e).__name__}: {e})") from None
    kind = config["cell"]["kind"]
    missing = sorted(set(shapes) - set(tensors))
    extra = sorted(set(tensors) - set(shapes))
    if missing:
        raise ModelFileError(f"{where}: tensor(s) missing for a {kind} model: {', '.join(missing)}")
    if extra:
        raise ModelFileError(f"{where}: unexpected tensor(s) for a {kind} model: "
                             f"{', '.join(map(repr, extra))[:200]}")
    for name, shape in shapes.items():
        got = tuple(np.shape(tensors[name]))
        if got != tuple(shape):
            raise ModelFileError(f"{where}: tensor {name} has shape {got}, the config implies {tuple(shape)}")
        _check_values(name, tensors[name], where)


def _check_values(name: str, tensor, where: str) -> None:
    """Finite, and within MAX_PARAM_ABS (what every backend's float32 math handles)."""
    with np.errstate(over="ignore"):  # float64 beyond float32's range becomes inf: reject it too
        a = np.asarray(tensor, dtype=np.float32)
    if not np.isfinite(a).all():
        raise ModelFileError(f"{where}: tensor {name} holds NaN or infinite values")
    peak = float(np.abs(a).max(initial=0.0))
    if peak > MAX_PARAM_ABS:
        shown = f"{peak:.3g}" if float(f"{peak:.3g}") > MAX_PARAM_ABS else repr(peak)  # not "1e+06, beyond 1e+06"
        raise ModelFileError(f"{where}: tensor {name} holds {shown}, beyond +-{MAX_PARAM_ABS:g} (MAX_PARAM_ABS: "
                             "larger parameters overflow the float32 constants the backends derive from them)")


def save(model, path) -> Path:
    """Save a torch Model (ltc_edge.nn.Model) as one .safetensors file, atomically."""
    tensors = {k: v.detach().cpu().float().numpy() for k, v in model.state_dict().items()}
    write(path, model.config, tensors)
    return Path(path)


def load(path):
    """Load a model file as a torch Model (needs torch). Raises ModelFileError on bad files."""
    from .model import Model

    config, tensors = read(path)
    return Model(config, tensors)


def describe(path) -> dict:
    """Facts about a model file, for `ltc info` (numpy only)."""
    from .schema import default_dt

    config, tensors = read(path)
    cell = config["cell"]
    wiring = cell.get("wiring")
    return {
        "file": str(path),
        "file_size_bytes": Path(path).stat().st_size,
        "cell": cell["kind"],
        "wiring": wiring["kind"] if wiring else None,
        "neurons": cell["units"],
        "synapses": int(np.abs(np.asarray(wiring["adjacency"])).sum()) if wiring else None,
        "sensory_synapses": int(np.abs(np.asarray(wiring["sensory_adjacency"])).sum()) if wiring else None,
        "parameters": int(sum(t.size for t in tensors.values())),
        "inputs": config["input_size"],
        "outputs": config["output_size"],
        "state_size": F.state_size(config),
        "readout": config["readout"],
        "normalized": bool(config.get("normalization")),
        "format_version": config["format_version"],
        "solver": cell.get("solver"),
        "ode_unfolds": cell.get("ode_unfolds"),
        "default_dt": default_dt(config),  # what a step without dt uses
        **task_facts(config),
    }


def task_facts(config: dict) -> dict:
    """What a model remembers of its training: task name and options, the csv/npz columns,
    the data file (path, sha256) and the training dt distribution (None where not stored)."""
    from .schema import dt_note

    task = config.get("task") or {}
    options = dict(task.get("options") or {})
    data = task.get("data") or {}
    return {"task": task.get("name"), "task_options": options or None, "metric": task.get("metric"),
            "input_columns": options.get("inputs"), "target_columns": options.get("targets"),
            "time_column": options.get("time"),
            "data_file": data.get("path") or options.get("data"), "data_sha256": data.get("sha256"),
            "dt": task.get("dt"), "dt_unit": dt_note(config)}
