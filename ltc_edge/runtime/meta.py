"""What a backend knows about its model: sizes, dt handling and the state bounds the guards
check. Built from a model config (+ raw parameters) or from an export folder's verified
manifest (ltc_edge.artifact: schema and sha256 checked before any file is read)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ltc_edge import artifact
from ltc_edge.nn import functional as F
from ltc_edge.nn.schema import default_dt

from .errors import ModelLoadError


@dataclass
class ModelMeta:
    input_size: int
    output_size: int
    state_size: int
    kind: str = "?"
    uses_dt: bool = True
    fixed_dt: float | None = None     # exported with a baked-in dt: step(dt=...) must match it
    default_dt: float = 1.0
    bounds: tuple | None = None       # (lo[S], hi[S]) float64, or None
    bounds_note: str = ""             # why there are no bounds, when there are none
    precision: str = "fp32"
    config: dict | None = None
    source: str = ""
    extra: dict = field(default_factory=dict)


def meta_from_config(config: dict, raw: dict | None, source: str = "", fixed_dt=None,
                     precision: str = "fp32") -> ModelMeta:
    kind = config["cell"]["kind"]
    meta = ModelMeta(input_size=int(config["input_size"]), output_size=int(config["output_size"]),
                     state_size=int(F.state_size(config)), kind=kind,
                     uses_dt=F.model_uses_dt(config), fixed_dt=fixed_dt,
                     default_dt=default_dt(config, fixed_dt),  # the training data's median dt
                     precision=precision, config=config, source=source)
    if kind == "ltc" and raw is not None:
        meta.bounds, meta.bounds_note = F.ltc_state_bounds(config, raw)
    elif kind == "ltc":
        meta.bounds_note = "no parameters to derive LTC bounds from"
    else:
        meta.bounds_note = f"{kind}: no proven state bound (only NaN/inf are checked)"
    return meta


def meta_from_manifest(m: artifact.Manifest, source) -> ModelMeta:
    """Sizes, dt handling and bounds from a schema-checked manifest."""
    if m.graph_kind != "step":
        raise ModelLoadError(f"{source}: a {m.graph_kind!r} graph; the runtime steps one-step graphs "
                             "(export it without sequence_length)")
    meta = ModelMeta(input_size=m.input_size, output_size=m.output_size, state_size=m.state_size,
                     kind=m.kind, uses_dt=m.uses_dt, fixed_dt=m.fixed_dt,
                     default_dt=m.fixed_dt if m.fixed_dt is not None else m.default_dt,
                     precision=m.precision, config=m.config, source=str(source), extra=m.to_dict())
    if m.state_bounds is not None:
        meta.bounds = (np.asarray(m.state_bounds["lo"], np.float64), np.asarray(m.state_bounds["hi"], np.float64))
    else:
        meta.bounds_note = m.state_bounds_note or f"{m.kind}: no proven state bound (only NaN/inf are checked)"
    return meta


def open_artifact(path, fmt: str, role: str | None = "model"):
    """(manifest or None, the file to load, its verified bytes or None) for a model file or an
    export folder (role None: the file `path` names, the "model" file for a folder). Where a manifest.json is there, it is schema-checked and every file it
    names is size- and sha256-checked before anything reads it; the returned bytes are the
    ones that were hashed (load those, not the path: nothing can swap them in between)."""
    path = Path(path)
    folder = artifact.folder_of(path)
    if not (folder / artifact.MANIFEST).exists():
        if path.is_dir():
            raise ModelLoadError(f"{path}: no {artifact.MANIFEST} in this folder (not an export folder)")
        return None, path, None
    m, paths = artifact.read_verified(folder)
    if m.format != fmt:
        raise ModelLoadError(f"{folder}: an export to {m.format}, not {fmt} (without a backend named, its own runtime runs it)")
    if not path.is_dir() and path.name not in {p.name for p in paths.values()}:
        raise ModelLoadError(f"{path}: not one of the files its folder's {artifact.MANIFEST} names")
    if role is None:  # the role of the file named (an --ort export's model.ort), or the main model
        role = next((r for r, p in paths.items() if not path.is_dir() and p.name == path.name), "model")
    if role not in paths:
        raise ModelLoadError(f"{folder}: the manifest names no {role} file")
    return m, paths[role], artifact.read_checked(m, folder, role)


def attach_bounds(meta: ModelMeta, model_file) -> None:
    """Take the LTC bounds from the .safetensors model an export was made from."""
    from ltc_edge.nn.modelfile import read

    cfg, raw = read(model_file)
    if cfg["cell"]["kind"] == "ltc":
        if F.state_size(cfg) != meta.state_size:
            raise ModelLoadError(f"{model_file}: state size differs from the exported model's")
        meta.bounds, meta.bounds_note = F.ltc_state_bounds(cfg, raw)
