"""The model file: ONE .safetensors file, tensors plus a JSON config in its metadata.

No pickle, ever. Reading needs numpy and safetensors only (the runtime uses `read`);
`load` builds a torch Model on top of it. Writes are atomic: temp file, then rename.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np

from ..errors import ModelLoadError, UnsafeFileError
from ..fileio import LIMITS, atomic_write_bytes, read_bytes
from . import functional as F

METADATA_KEY = "ltc_edge"
FORMAT = "ltc-edge-model"
SUPPORTED_VERSIONS = (1,)


class ModelFileError(ModelLoadError):
    """A model file that is missing, truncated, foreign or inconsistent."""


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
        raise ModelFileError(str(e)) from None
    config = _read_config(path, raw)
    from safetensors.numpy import load

    try:
        tensors = load(raw)
    except Exception as e:  # safetensors raises its own error types for bad headers/data
        raise ModelFileError(f"{path}: corrupt or truncated safetensors data ({e})") from None
    validate(config, tensors, where=str(path))
    return config, {k: np.asarray(v, dtype=np.float32) for k, v in tensors.items()}


def _read_config(path, raw: bytes) -> dict:
    if len(raw) < 8:
        raise ModelFileError(f"{path}: not a safetensors file (only {len(raw)} bytes)")
    (n,) = struct.unpack("<Q", raw[:8])
    if n > len(raw) - 8:
        raise ModelFileError(f"{path}: truncated or not a safetensors file "
                             f"(header claims {n} bytes, file has {len(raw) - 8})")
    try:
        header = json.loads(raw[8:8 + n])
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise ModelFileError(f"{path}: not a safetensors file (header is not JSON)") from None
    meta = header.get("__metadata__") or {} if isinstance(header, dict) else {}
    if METADATA_KEY not in meta:
        raise ModelFileError(f"{path}: a safetensors file, but not an ltc-edge model "
                             f"(no '{METADATA_KEY}' config in its metadata)")
    try:
        config = json.loads(meta[METADATA_KEY])
    except json.JSONDecodeError:
        raise ModelFileError(f"{path}: the ltc-edge config in the metadata is not valid JSON") from None
    return config


def validate(config: dict, tensors: dict, where: str = "model") -> None:
    """Check the config is ours and every tensor the config implies is there with its shape."""
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise ModelFileError(f"{where}: not an ltc-edge model config (format is "
                             f"{config.get('format') if isinstance(config, dict) else None!r})")
    if config.get("format_version") not in SUPPORTED_VERSIONS:
        raise ModelFileError(f"{where}: model format version {config.get('format_version')!r} is not "
                             f"supported by this ltc-edge (supports {SUPPORTED_VERSIONS})")
    try:
        shapes = F.model_shapes(config)
    except (KeyError, TypeError, ValueError) as e:
        raise ModelFileError(f"{where}: inconsistent model config ({type(e).__name__}: {e})") from None
    missing = sorted(set(shapes) - set(tensors))
    extra = sorted(set(tensors) - set(shapes))
    if missing:
        raise ModelFileError(f"{where}: tensor(s) missing for a {config['cell']['kind']} model: {', '.join(missing)}")
    if extra:
        raise ModelFileError(f"{where}: unexpected tensor(s) for a {config['cell']['kind']} model: {', '.join(extra)}")
    for name, shape in shapes.items():
        got = tuple(tensors[name].shape)
        if got != tuple(shape):
            raise ModelFileError(f"{where}: tensor {name} has shape {got}, the config implies {tuple(shape)}")


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
    }
