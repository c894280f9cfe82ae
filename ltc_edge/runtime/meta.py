"""What a backend knows about its model: sizes, dt handling and the state bounds the guards
check. Built from a model config (+ raw parameters) or from an exporter's manifest.json."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ModelLoadError

MANIFEST = "manifest.json"


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
    from ltc_edge.nn import functional as F

    cell = config["cell"]
    kind = cell["kind"]
    meta = ModelMeta(input_size=int(config["input_size"]), output_size=int(config["output_size"]),
                     state_size=int(F.state_size(config)), kind=kind,
                     uses_dt=F.cell_spec(kind).uses_dt, fixed_dt=fixed_dt,
                     default_dt=1.0 if fixed_dt is None else float(fixed_dt),
                     precision=precision, config=config, source=source)
    if kind == "ltc" and raw is not None:
        meta.bounds, meta.bounds_note = ltc_state_bounds(config, raw)
    elif kind == "ltc":
        meta.bounds_note = "no parameters to derive LTC bounds from"
    else:
        meta.bounds_note = f"{kind}: no proven state bound (only NaN/inf are checked)"
    return meta


def ltc_state_bounds(config: dict, raw: dict):
    """(lo, hi) from F.ltc_bounds when the LTC theorem applies, else (None, reason)."""
    from ltc_edge.nn import functional as F

    cell = config["cell"]
    craw = {k[5:]: np.asarray(v) for k, v in raw.items() if k.startswith("cell.")}
    if cell.get("solver", "semi_implicit") != "semi_implicit":
        return None, f"solver {cell.get('solver')!r}: the bound holds for the semi-implicit solver only"
    if not cell.get("implicit_param_constraints", False):
        adj = np.abs(np.asarray(cell["wiring"]["adjacency"])) > 0
        sadj = np.abs(np.asarray(cell["wiring"]["sensory_adjacency"])) > 0
        negative = [name for name, v, m in (("w", craw["w"], adj), ("sensory_w", craw["sensory_w"], sadj),
                                            ("cm", craw["cm"], True), ("gleak", craw["gleak"], True))
                    if np.any(np.where(m, v, 0) < 0)]
        if negative:
            return None, (f"negative {', '.join(negative)} (model not clipped with apply_constraints): "
                          "the LTC bound does not apply")
    lo, hi = F.ltc_bounds(craw, cell)
    return (np.asarray(lo, dtype=np.float64), np.asarray(hi, dtype=np.float64)), ""


def read_manifest(path: Path) -> dict:
    """The manifest.json beside `path` (or inside it, for a folder)."""
    path = Path(path)
    mpath = path / MANIFEST if path.is_dir() else path.parent / MANIFEST
    if not mpath.exists():
        raise ModelLoadError(f"{path}: no {MANIFEST} beside it (export writes one; it names the "
                             "inputs, outputs and sizes)")
    try:
        manifest = json.loads(mpath.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ModelLoadError(f"{mpath}: not valid JSON ({e.msg if hasattr(e, 'msg') else e})") from None
    if not isinstance(manifest, dict):
        raise ModelLoadError(f"{mpath}: expected a JSON object")
    return manifest


def meta_from_manifest(manifest: dict, path: Path) -> ModelMeta:
    """Sizes, dt handling and bounds from an exporter's manifest.json.

    Reads, when present: `config` (the model config), sizes at the top level or under
    `model` ({kind, input_size, output_size, state_size}), `fixed_dt` (top level or under
    `graph`), `precision`, `state_bounds` {lo, hi}; else the source model file named by
    `source` for the LTC bounds."""
    config = manifest.get("config")
    graph = manifest.get("graph") if isinstance(manifest.get("graph"), dict) else {}
    if graph.get("kind", "step") != "step":
        raise ModelLoadError(f"{path}: a {graph.get('kind')!r} graph; the runtime steps one-step graphs "
                             "(export without --sequence-length)")
    fixed_dt = manifest.get("fixed_dt", graph.get("fixed_dt"))
    precision = str(manifest.get("precision", "fp32"))
    if isinstance(config, dict) and "cell" in config:
        meta = meta_from_config(config, None, str(path), fixed_dt=fixed_dt, precision=precision)
    else:
        sizes = manifest.get("model") if isinstance(manifest.get("model"), dict) else manifest
        names = [i.get("name") for i in manifest.get("inputs", []) if isinstance(i, dict)]
        kind = str(sizes.get("kind", manifest.get("kind", "?")))
        uses_dt = manifest.get("uses_dt", ("dt" in names) if names else kind not in ("lstm", "gru"))
        try:
            meta = ModelMeta(input_size=int(sizes["input_size"]), output_size=int(sizes["output_size"]),
                             state_size=int(sizes["state_size"]), kind=kind, uses_dt=bool(uses_dt),
                             fixed_dt=fixed_dt, default_dt=1.0 if fixed_dt is None else float(fixed_dt),
                             precision=precision, source=str(path))
        except (KeyError, TypeError, ValueError):
            raise ModelLoadError(f"{path}: manifest has neither a model config nor "
                                 "input_size/output_size/state_size") from None
        meta.bounds_note = f"{kind}: no proven state bound (only NaN/inf are checked)"
    sb = manifest.get("state_bounds")
    if isinstance(sb, dict) and sb.get("lo") is not None:
        lo, hi = np.asarray(sb["lo"], dtype=np.float64), np.asarray(sb["hi"], dtype=np.float64)
        if lo.shape != (meta.state_size,) or hi.shape != (meta.state_size,):
            raise ModelLoadError(f"{path}: manifest state_bounds do not match state size {meta.state_size}")
        meta.bounds, meta.bounds_note = (lo, hi), ""
    elif meta.kind == "ltc":
        src = manifest.get("source")
        srcp = Path(path).parent / src if isinstance(src, str) else None
        if srcp is not None and srcp.exists() and srcp.suffix == ".safetensors":
            from ltc_edge.nn.modelfile import read

            cfg, raw = read(srcp)
            meta.bounds, meta.bounds_note = ltc_state_bounds(cfg, raw)
        elif manifest.get("state_bounds_note"):
            meta.bounds_note = str(manifest["state_bounds_note"])
        else:
            meta.bounds_note = "manifest has no state_bounds: the LTC bound is not checked (NaN/inf are)"
    meta.extra = manifest
    return meta


def attach_bounds(meta: ModelMeta, model_file) -> None:
    """Take the LTC bounds from the .safetensors model an export was made from."""
    from ltc_edge.nn.modelfile import read

    cfg, raw = read(model_file)
    if cfg["cell"]["kind"] == "ltc":
        if F_state_size(cfg) != meta.state_size:
            raise ModelLoadError(f"{model_file}: state size differs from the exported model's")
        meta.bounds, meta.bounds_note = ltc_state_bounds(cfg, raw)


def F_state_size(cfg) -> int:
    from ltc_edge.nn import functional as F

    return F.state_size(cfg)
