"""Shared export plumbing: loading the model argument, the manifest, the atomic finish
(write into a temp folder, check drift, then move into place; nothing when over budget), and
keeping converters' chatter off the terminal."""

from __future__ import annotations

import contextlib
import os
import platform
import shutil
import sys
import tempfile
import warnings
from pathlib import Path

from .. import artifact
from .. import precision as precisions
from ..artifact import Manifest
from ..errors import LtcEdgeError, UnsafeFileError
from ..fileio import clean_leftovers, foreign_entries, replace_dir
from ..nn.schema import default_dt


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


class DriftError(LtcEdgeError):
    """The exported file drifts from the torch model by more than its budget."""


def as_model(model):
    """A Model instance, or a path to a model file (loaded); a Model is checked as its file
    would be (so an in-memory model with, say, a huge parameter fails here for every format)."""
    from ..nn.modelfile import load, validate

    if isinstance(model, (str, os.PathLike)):
        return load(model)
    validate(model.config, {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}, where="model")
    return model


def check_precision(precision: str, fmt: str | None = None) -> str:
    """`precision` if the registry (ltc_edge/precision.py) has it for `fmt` (any format when None)."""
    allowed = precisions.names(fmt)
    if precision not in allowed:
        raise ValueError(f"unknown precision {precision!r}; choose one of {', '.join(allowed)}")
    return precision


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


def io_specs(shapes: dict) -> list:
    return [{"name": k, "shape": v, "dtype": "float32"} for k, v in shapes.items()]


def base_manifest(fmt, precision, model, graph, files: dict, **details) -> Manifest:
    """The manifest of a graph export (ONNX, TFLite): model facts, I/O, LTC state bounds
    (the runtime guards an exported LTC's state with them), each file's sha256."""
    raw = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    drift, quantization = details.pop("drift", None), details.pop("quantization", None)
    counts = {k: v for k, v in model.counts().items() if v is not None}
    return Manifest(
        format=fmt, precision=precision, **artifact.model_fields(model.config, raw),
        files={role: artifact.FileEntry.of(p) for role, p in files.items()},
        fixed_dt=graph.fixed_dt, default_dt=default_dt(model.config, graph.fixed_dt), graph_kind=graph.kind,
        inputs=io_specs(graph.input_shapes()), outputs=io_specs(graph.output_shapes()),
        drift=drift, quantization=quantization, versions=details.pop("versions", versions()),
        details={"model": counts, "graph": {"form": graph.form, "ode_unfolds": model.config["cell"].get("ode_unfolds")},
                 **details})


def finish(tmp_dir: Path, out_dir: Path, manifest: Manifest, force: bool) -> dict:
    """The one finish step of every exporter. Over its drift budget without force: DriftError,
    nothing written. Otherwise MODEL_CARD.md (export/card.py) and manifest.json join the files in
    the temp folder, and the temp folder replaces out_dir whole (a reader sees the old export or
    the new one, never a mix). Entries an earlier export did not write (a user's cmake build/,
    notes) are carried into the new folder, never deleted."""
    from .card import write_card

    drift = manifest.drift or {}
    if drift and not drift.get("within_budget", True):
        manifest.details["forced"] = bool(force)
        if not force:
            raise DriftError(f"{manifest.format} {manifest.precision} export over its drift budget: "
                             f"{'; '.join(drift['over_budget'])} (no file written; --force writes it anyway)")
    write_card(tmp_dir, manifest)
    out = manifest.write(tmp_dir)
    check_out_dir(out_dir)
    carry = foreign_entries(out_dir, artifact.listed_names(out_dir)) if out_dir.is_dir() else []
    replace_dir(tmp_dir, out_dir, carry)  # the user's files (a cmake build/, notes) move into the new export
    if carry:
        out["kept"] = carry
    return out


def check_out_dir(out_dir, *inputs) -> None:
    """Refuse a file, a folder holding anything but an earlier export (what a re-export would
    carry over is decided in finish()), and a folder that holds one of the inputs."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise UnsafeFileError(f"--out {out_dir} exists and is not a folder")
    for src in inputs:
        if src is not None and Path(src).exists() and out_dir.resolve() in Path(src).resolve().parents:
            raise UnsafeFileError(f"--out {out_dir} holds the input {src}: "
                                  "choose another folder")
    if out_dir.is_dir() and not (out_dir / artifact.MANIFEST).exists():
        names = sorted(p.name for p in out_dir.iterdir())
        if names:
            raise UnsafeFileError(f"--out {out_dir} is not an ltc-edge export and holds {', '.join(names[:5])}"
                                  f"{' ...' if len(names) > 5 else ''}: choose a new or empty folder")


class TempDir:
    """A temp folder beside out_dir (same file system, so the final rename is atomic), named
    with our pid so a later export can remove what a killed one left."""

    def __init__(self, out_dir):
        self.parent = Path(out_dir).resolve().parent
        self.path = None

    def __enter__(self) -> Path:
        self.parent.mkdir(parents=True, exist_ok=True)
        clean_leftovers(self.parent)
        self.path = Path(tempfile.mkdtemp(prefix=f".ltc-export-{os.getpid()}-", dir=self.parent))
        return self.path

    def __exit__(self, *exc):
        shutil.rmtree(self.path, ignore_errors=True)
        return False
