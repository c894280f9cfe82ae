"""Shared export plumbing: loading the model argument, the manifest, the atomic finish
(write into a temp folder, check drift, then move into place; nothing when over budget), and
keeping converters' chatter off the terminal."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import platform
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np

PRECISIONS = ("fp32", "fp16", "int8")


@contextlib.contextmanager
def quiet():
    """litert-torch, absl, torchao and onnxruntime's calibrators print progress and notices to
    stdout / stderr, some from C++ (below Python's sys.stdout): silence both file descriptors
    and warnings to keep the CLI's one-line output. Exceptions still propagate."""
    for stream in (sys.stdout, sys.stderr):
        stream.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with warnings.catch_warnings(), open(os.devnull, "w") as null, \
                contextlib.redirect_stdout(null), contextlib.redirect_stderr(null):
            warnings.simplefilter("ignore")
            os.dup2(null.fileno(), 1)
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        for fd in saved:
            os.close(fd)


class DriftError(ValueError):
    """The exported file drifts from the torch model by more than its budget."""


def as_model(model):
    """A Model instance, or a path to a model file (loaded)."""
    if isinstance(model, (str, os.PathLike)):
        from ..nn.modelfile import load

        return load(model)
    return model


def check_precision(precision: str, allowed=PRECISIONS) -> str:
    if precision not in allowed:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(allowed)}")
    return precision


def sha256(path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def versions(*names) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for n in ("ltc-edge", "torch", "numpy") + names:
        try:
            out[n] = version(n)
        except PackageNotFoundError:
            pass
    out["python"] = platform.python_version()
    return out


def base_manifest(fmt, precision, model, graph, file_path, **extra) -> dict:
    file_path = Path(file_path)
    m = {"format": fmt, "precision": precision, "file": file_path.name,
         "size_bytes": file_path.stat().st_size, "sha256": sha256(file_path),
         "model": {"kind": model.kind, "input_size": model.input_size, "output_size": model.output_size,
                   "state_size": model.state_size, **{k: v for k, v in model.counts().items() if v is not None}},
         "graph": {"kind": graph.kind, "form": graph.form, "fixed_dt": graph.fixed_dt,
                   "ode_unfolds": model.config["cell"].get("ode_unfolds")},
         "inputs": [{"name": k, "shape": v, "dtype": "float32"} for k, v in graph.input_shapes().items()],
         "outputs": [{"name": k, "shape": v, "dtype": "float32"} for k, v in graph.output_shapes().items()]}
    # the runtime guards an exported LTC's state with the paper's bounds: carry them along
    from ..runtime.meta import ltc_state_bounds

    bounds, note = (ltc_state_bounds(model.config, {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()})
                    if model.kind == "ltc" else (None, ""))
    m["state_bounds"] = None if bounds is None else {"lo": np.asarray(bounds[0]).tolist(),
                                                     "hi": np.asarray(bounds[1]).tolist()}
    if note:
        m["state_bounds_note"] = note
    m.update(extra)
    return m


def finish(tmp_dir: Path, out_dir: Path, files: list[str], manifest: dict, force: bool) -> dict:
    """Over budget without force: DriftError, nothing written. Otherwise move the files into
    out_dir (os.replace: atomic per file), manifest.json last."""
    drift = manifest.get("drift") or {}
    if drift and not drift.get("within_budget", True):
        manifest["forced"] = bool(force)
        if not force:
            raise DriftError(f"{manifest['format']} {manifest['precision']} export over its drift budget: "
                             f"{'; '.join(drift['over_budget'])} (no file written; --force writes it anyway)")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name in files:
        os.replace(tmp_dir / name, out_dir / name)
    data = json.dumps(manifest, indent=2, default=_json_default).encode()
    from ..nn.modelfile import atomic_write_bytes

    atomic_write_bytes(out_dir / "manifest.json", data)
    return manifest


def _json_default(o):
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)


class TempDir:
    """A temp folder beside out_dir (same file system, so os.replace is atomic)."""

    def __init__(self, out_dir):
        self.parent = Path(out_dir).resolve().parent
        self.path = None

    def __enter__(self) -> Path:
        self.parent.mkdir(parents=True, exist_ok=True)
        self.path = Path(tempfile.mkdtemp(prefix=".ltc-export-", dir=self.parent))
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)
        return False
