"""The export artifact contract: what an export folder holds and how it is checked.

An export folder is `manifest.json` plus the files it names. Every exporter writes the
manifest through `Manifest.write` (from export's one finish step); the runtime reads it only
through `read_verified`, which checks the schema (types, enums, sizes within limits) and the
size and sha256 of every file it names *before* anything else reads, parses or dlopens them.

Torch-free (numpy through ltc_edge.nn only): runtime, codegen and export all stand on it.

Trust model: the manifest is not signed. The sha256 check catches corrupted, truncated or
swapped files and a manifest that does not belong to its files; it cannot make a folder
trustworthy that someone else wrote whole. A C export folder holds native code: load one
with backend "c" only if you trust whoever wrote it (or rebuild it from the model file).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from dataclasses import asdict, dataclass, field
from pathlib import Path

from . import precision as precisions
from .errors import ModelLoadError, UnsafeFileError
from .fileio import LIMITS, atomic_write_bytes, open_regular, read_bytes

SCHEMA_VERSION = 2
MANIFEST = "manifest.json"
FORMATS = {"onnx": ("model",), "tflite": ("model",), "executorch": ("model",), "c": ("header", "source")}  # required file roles
OPTIONAL_ROLES = {"c": ("library",                                   # built for the host (flat layout)
                        "cmake", "cmake_toolchain", "golden_data", "golden_main", "golden_harness",
                        "golden_platform_host", "cmake_toolchain_m0", "cmake_toolchain_m3", "golden_linker_m0",
                        "golden_platform_m4", "golden_startup_m4", "golden_linker_m4",  # --layout cmake
                        "arduino_properties", "arduino_example"),                     # --layout arduino
                 "onnx": ("ort", "model_b1")}  # --ort: ONNX Runtime Mobile's .ort, the batch-1 graph for NNAPI/CoreML
COMMON_OPTIONAL_ROLES = ("card",)  # MODEL_CARD.md (every export since schema v2 exports add it; older ones lack it)
PRECISIONS = precisions.names()  # the one registry: ltc_edge/precision.py
GRAPH_KINDS = ("step", "sequence")
MAX_SIZE = 1 << 20            # inputs, outputs, state: far above any model the schema admits
_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.\-]{0,127}")
_C_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
_HEX64 = re.compile(r"[0-9a-f]{64}")


def sha256_file(path) -> str:
    h = hashlib.sha256()
    fd = open_regular(path, "export file", LIMITS["artifact"])
    with os.fdopen(fd, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@dataclass
class FileEntry:
    name: str            # a plain file name inside the folder (no '/', no '..')
    sha256: str
    size_bytes: int

    @classmethod
    def of(cls, path) -> "FileEntry":
        path = Path(path)
        return cls(path.name, sha256_file(path), path.stat().st_size)


@dataclass
class Manifest:
    format: str
    precision: str
    files: dict                       # role -> FileEntry ("model"; C: "header", "source", "library"; all: "card")
    kind: str                         # cell kind
    input_size: int
    output_size: int
    state_size: int
    uses_dt: bool
    default_dt: float = 1.0           # the dt a step without one uses
    fixed_dt: float | None = None     # baked into the graph: step(dt=...) must match it
    graph_kind: str = "step"
    inputs: list = field(default_factory=list)    # [{name, shape, dtype}]
    outputs: list = field(default_factory=list)
    state_bounds: dict | None = None  # {"lo": [S], "hi": [S]} (LTC) or None
    state_bounds_note: str = ""
    prefix: str | None = None         # C: the symbol prefix (functions are derived from it)
    model_sha256: str | None = None   # model_sha256(config, tensors): which model this was exported from
    drift: dict | None = None
    quantization: dict | None = None
    config: dict | None = None        # the model config the export was made from
    versions: dict = field(default_factory=dict)
    details: dict = field(default_factory=dict)  # format-specific facts for people (opset, nodes, flags)
    schema_version: int = SCHEMA_VERSION

    # -- writing -----------------------------------------------------------------------
    def to_dict(self) -> dict:
        d = {k: v for k, v in asdict(self).items() if k not in ("details", "files")}
        d["files"] = {role: asdict(e) if isinstance(e, FileEntry) else dict(e) for role, e in self.files.items()}
        main = self.main_file()
        # convenience copies for people and older tools; read() recomputes them from files
        d.update({"file": main.name, "size_bytes": main.size_bytes, "sha256": main.sha256})
        for key, value in self.details.items():
            d.setdefault(key, value)
        return d

    def write(self, folder) -> dict:
        d = self.to_dict()
        atomic_write_bytes(Path(folder) / MANIFEST, json.dumps(d, indent=1, default=_json_default).encode())
        return d

    def main_file(self) -> FileEntry:
        for role in ("model", "library", "source"):
            if self.files.get(role) is not None:
                return _entry(self.files[role])
        raise ModelLoadError("manifest names no model file")

    # -- reading -----------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: dict, where: str = MANIFEST) -> "Manifest":
        if not isinstance(d, dict):
            raise ModelLoadError(f"{where}: expected a JSON object")
        if "schema_version" not in d:
            raise ModelLoadError(f"{where}: written by an older ltc-edge (no schema_version); "
                                 "re-export the model with `ltc export`")
        missing = [k for k in ("format", "precision", "files", "kind", "input_size", "output_size",
                               "state_size", "uses_dt") if k not in d]
        if missing:
            raise ModelLoadError(f"{where}: manifest lacks {', '.join(missing)}")
        known = {f for f in cls.__dataclass_fields__ if f != "details"}
        derived = {"file", "size_bytes", "sha256"}
        m = cls(**{k: d[k] for k in known if k in d},
                details={k: v for k, v in d.items() if k not in known | derived})
        _validate(m, where)
        return m


def _entry(e) -> FileEntry:
    return e if isinstance(e, FileEntry) else FileEntry(**e)


def _json_default(o):
    if hasattr(o, "item"):      # numpy scalars
        return o.item()
    if hasattr(o, "tolist"):    # numpy arrays
        return o.tolist()
    return str(o)


def _fail(where, msg):
    raise ModelLoadError(f"{where}: {msg}")


def _member(v, choices) -> bool:
    return isinstance(v, str) and v in choices


def _is_int(v, lo, hi) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and lo <= v <= hi


def _is_pos_float(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and 0 < v < 3.4e38


def _validate(m: Manifest, where: str) -> None:
    if m.schema_version != SCHEMA_VERSION:
        _fail(where, f"schema_version {m.schema_version!r} is not {SCHEMA_VERSION}; re-export with this ltc-edge")
    if not _member(m.format, FORMATS):
        _fail(where, f"unknown format {m.format!r} (expected one of {', '.join(FORMATS)})")
    if not _member(m.precision, PRECISIONS):
        _fail(where, f"unknown precision {m.precision!r}")
    if not isinstance(m.kind, str) or not _C_IDENT.fullmatch(m.kind):
        _fail(where, f"kind must be a cell kind name, got {m.kind!r}")
    for key in ("input_size", "output_size", "state_size"):
        if not _is_int(getattr(m, key), 1, MAX_SIZE):
            _fail(where, f"{key} must be an integer in [1, {MAX_SIZE}], got {getattr(m, key)!r}")
    if not isinstance(m.uses_dt, bool):
        _fail(where, f"uses_dt must be true or false, got {m.uses_dt!r}")
    if not _is_pos_float(m.default_dt):
        _fail(where, f"default_dt must be a finite number > 0, got {m.default_dt!r}")
    if m.fixed_dt is not None and not _is_pos_float(m.fixed_dt):
        _fail(where, f"fixed_dt must be null or a finite number > 0, got {m.fixed_dt!r}")
    if not _member(m.graph_kind, GRAPH_KINDS):
        _fail(where, f"graph_kind must be one of {', '.join(GRAPH_KINDS)}, got {m.graph_kind!r}")
    if m.prefix is not None and not (isinstance(m.prefix, str) and _C_IDENT.fullmatch(m.prefix)):
        _fail(where, f"prefix must be a C identifier, got {str(m.prefix)[:40]!r}")
    if m.model_sha256 is not None and not (isinstance(m.model_sha256, str) and _HEX64.fullmatch(m.model_sha256)):
        _fail(where, "model_sha256 must be null or a sha256 hex digest")
    if m.format == "c" and m.prefix is None:
        _fail(where, "a C export needs its prefix")
    for key, types in (("config", (dict, type(None))), ("drift", (dict, type(None))),
                       ("quantization", (dict, type(None))), ("versions", dict), ("state_bounds_note", str)):
        if not isinstance(getattr(m, key), types):
            _fail(where, f"{key} has the wrong type ({type(getattr(m, key)).__name__})")
    _validate_files(m, where)
    _validate_bounds(m, where)
    _validate_io(m, where)
    _validate_config(m, where)
    _validate_details(m, where)


def _validate_files(m: Manifest, where: str) -> None:
    if not isinstance(m.files, dict):
        _fail(where, "files must be an object {role: {name, sha256, size_bytes}}")
    allowed = FORMATS[m.format] + OPTIONAL_ROLES.get(m.format, ()) + COMMON_OPTIONAL_ROLES
    for role in FORMATS[m.format]:
        if m.files.get(role) is None:
            _fail(where, f"a {m.format} export needs a {role!r} file")
    names = set()
    for role, e in list(m.files.items()):
        if role not in allowed:
            _fail(where, f"unknown file role {role!r} for a {m.format} export")
        if e is None:
            del m.files[role]
            continue
        if not (isinstance(e, dict) and set(e) == {"name", "sha256", "size_bytes"}):
            _fail(where, f"files.{role} must be {{name, sha256, size_bytes}}")
        if not _plain_path(e["name"]):
            _fail(where, f"files.{role}.name must be a plain file name in the folder (or up to {MAX_DEPTH} "
                         f"sub-folders deep), got {str(e['name'])[:60]!r}")
        if not (isinstance(e["sha256"], str) and _HEX64.fullmatch(e["sha256"])):
            _fail(where, f"files.{role}.sha256 is not a sha256 hex digest")
        if not _is_int(e["size_bytes"], 1, LIMITS["artifact"]):
            _fail(where, f"files.{role}.size_bytes must be an integer in [1, {LIMITS['artifact']}]")
        if e["name"] in names:
            _fail(where, f"files.{role} names {e['name']} twice")
        names.add(e["name"])
        m.files[role] = FileEntry(**e)


MAX_DEPTH = 3  # sub-folders a file may sit in (layouts such as examples/<name>/<name>.ino)


def _plain_path(name) -> bool:
    """'file' or 'dir/file' (at most MAX_DEPTH folders): plain names only, no '..', no '/' first."""
    if not isinstance(name, str) or name == MANIFEST or len(name) > 255:
        return False
    parts = name.split("/")
    return len(parts) <= MAX_DEPTH + 1 and all(_NAME.fullmatch(p) and p not in (".", "..") for p in parts)


def _validate_bounds(m: Manifest, where: str) -> None:
    sb = m.state_bounds
    if sb is None:
        return
    if not (isinstance(sb, dict) and isinstance(sb.get("lo"), list) and isinstance(sb.get("hi"), list)):
        _fail(where, "state_bounds must be {lo: [...], hi: [...]}")
    for key in ("lo", "hi"):
        v = sb[key]
        if len(v) != m.state_size or not all(isinstance(a, (int, float)) and not isinstance(a, bool)
                                               and math.isfinite(a) for a in v):
            _fail(where, f"state_bounds.{key} must be {m.state_size} finite numbers")
    if any(lo > hi for lo, hi in zip(sb["lo"], sb["hi"])):
        _fail(where, "state_bounds: some lo > hi")


def _validate_io(m: Manifest, where: str) -> None:
    for key in ("inputs", "outputs"):
        specs = getattr(m, key)
        if not isinstance(specs, list) or not all(isinstance(s, dict) and isinstance(s.get("name"), str)
                                                  for s in specs):
            _fail(where, f"{key} must be a list of {{name, shape, dtype}}")
    names = {s["name"] for s in m.inputs}
    if m.inputs and m.graph_kind == "step" and ("dt" in names) != (m.uses_dt and m.fixed_dt is None):
        _fail(where, "inputs disagree with uses_dt / fixed_dt (a dt input exactly when dt is used and not fixed)")


def _validate_config(m: Manifest, where: str) -> None:
    """The model config every export stores: the model schema's, and agreeing with the
    manifest's kind and sizes (commands re-load the task and the I/O names from it)."""
    from ltc_edge.nn import functional as F
    from ltc_edge.nn.schema import validate_config

    if m.config is None:
        _fail(where, "config is missing (every export stores the model config it was made from)")
    try:
        validate_config(m.config)
    except ModelLoadError as e:
        _fail(where, f"config: {e}")
    c = m.config
    facts = {"kind": c["cell"]["kind"], "input_size": c["input_size"], "output_size": c["output_size"],
             "state_size": F.state_size(c), "uses_dt": F.model_uses_dt(c)}
    for key, value in facts.items():
        if getattr(m, key) != value:
            _fail(where, f"{key} {getattr(m, key)!r} disagrees with the config's {value!r}")


COUNT_KEYS = ("neurons", "synapses", "sensory_synapses", "parameters", "state_size")  # details.model
# C functions by name -> required? Every value must be "<prefix>_<name>" (the runtime derives
# the names from the prefix; a manifest naming another symbol is not one this ltc-edge wrote)
C_FUNCTIONS = {"reset": True, "step": True, "step_batch": True, "sizes": True,
               "step_checked": False, "step_batch_checked": False, "step_q": False}
# detail fields something reads after loading (ltc info, the model card, the C backend), with
# their checks; other detail keys are facts for people that no code reads
DETAIL_TYPES = {"weights_bytes": int, "sparse": bool, "unrolled": bool}


def _validate_details(m: Manifest, where: str) -> None:
    counts = m.details.get("model")
    if not isinstance(counts, dict):
        _fail(where, f"model must be an object of the model's counts ({', '.join(COUNT_KEYS)}), "
                     f"got {'nothing' if counts is None else type(counts).__name__}")
    for key, v in counts.items():
        if key not in COUNT_KEYS:
            _fail(where, f"model.{str(key)[:40]} is not a known count ({', '.join(COUNT_KEYS)})")
        if not _is_int(v, 0, 1 << 40):
            _fail(where, f"model.{key} must be an integer >= 0, got {repr(v)[:40]}")
    if counts.get("state_size", m.state_size) != m.state_size:
        _fail(where, f"model.state_size disagrees with state_size ({m.state_size})")
    for key, kind in DETAIL_TYPES.items():
        v = m.details.get(key)
        if v is not None and not (isinstance(v, kind) and (kind is bool or not isinstance(v, bool))):
            _fail(where, f"{key} must be {'true or false' if kind is bool else 'an integer'}, got {repr(v)[:40]}")
    if m.format == "c":
        _validate_functions(m.details.get("functions"), m.prefix, where)


def _validate_functions(functions, prefix: str, where: str) -> None:
    if not isinstance(functions, dict):
        _fail(where, "functions must be an object {name: symbol} (a C export names its functions)")
    for name, symbol in functions.items():
        if name not in C_FUNCTIONS:
            _fail(where, f"functions.{str(name)[:40]} is not a function of an ltc-edge C export "
                         f"({', '.join(C_FUNCTIONS)})")
        if symbol != f"{prefix}_{name}":
            _fail(where, f"functions.{name} must be {prefix}_{name} (the prefix's), got {str(symbol)[:40]!r}")
    missing = [name for name, required in C_FUNCTIONS.items() if required and name not in functions]
    if missing:
        _fail(where, f"functions lacks {', '.join(missing)}")


def read(folder) -> Manifest:
    """The manifest of an export folder, schema-checked (files not yet verified)."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.exists():
        raise ModelLoadError(f"{folder}: no {MANIFEST} (an export folder has one: it names the files, "
                             "sizes and checksums)")
    try:
        data = json.loads(read_bytes(path, "manifest", LIMITS["manifest"]))
    except UnsafeFileError as e:
        raise ModelLoadError(str(e)) from None
    except (UnicodeDecodeError, ValueError, RecursionError) as e:
        raise ModelLoadError(f"{path}: not valid JSON ({type(e).__name__})") from None
    return Manifest.from_dict(data, str(path))


def listed_names(folder) -> set:
    """The paths an export folder's manifest names (with manifest.json itself), read leniently:
    what an earlier export wrote there, so that a re-export replaces those and nothing else.
    An unreadable manifest names only itself."""
    try:
        files = json.loads(read_bytes(Path(folder) / MANIFEST, "manifest", LIMITS["manifest"])).get("files")
        names = {e.get("name") for e in files.values()} if isinstance(files, dict) else set()
    except (OSError, UnsafeFileError, ValueError, RecursionError, AttributeError):
        names = set()
    return {n for n in names if _plain_path(n)} | {MANIFEST}


def verify(m: Manifest, folder, roles=None) -> dict:
    """{role: path} after checking each named file is a regular file of the stated size and
    sha256. Run before anything reads, parses or loads the files."""
    folder = Path(folder)
    out = {}
    for role, e in m.files.items():
        if roles is None or role in roles:
            read_checked(m, folder, role)
            out[role] = folder / e.name
    return out


def read_checked(m: Manifest, folder, role: str) -> bytes:
    """The bytes of one named file, checked against its size and sha256 as read."""
    e = m.files[role]
    path = Path(folder) / e.name
    parts = e.name.split("/")[:-1]
    if any((Path(folder).joinpath(*parts[:i + 1])).is_symlink() for i in range(len(parts))):
        raise ModelLoadError(f"{path}: a sub-folder on its path is a symbolic link; refusing to follow it")
    if not path.exists():
        raise ModelLoadError(f"{folder}: the manifest names {e.name}, which is missing")
    try:
        data = read_bytes(path, "export file", LIMITS["artifact"])
    except (FileNotFoundError, UnsafeFileError) as err:
        raise ModelLoadError(str(err)) from None
    if len(data) != e.size_bytes or hashlib.sha256(data).hexdigest() != e.sha256:
        raise ModelLoadError(f"{path}: does not match its manifest's size/sha256: modified or corrupt; re-export it")
    return data


def read_verified(folder, roles=None) -> tuple[Manifest, dict]:
    m = read(folder)
    return m, verify(m, folder, roles)


def model_sha256(config: dict, raw: dict) -> str:
    """A model's identity: sha256 over its config (canonical JSON) and its tensors (sorted by
    name; name, shape and float32 little-endian bytes each), as a model file holds them. Equal
    for the same model however it was saved or loaded; any weight or config change alters it."""
    import numpy as np

    h = hashlib.sha256(b"ltc-edge model v1\0")
    h.update(json.dumps(config, sort_keys=True, separators=(",", ":"), default=_json_default).encode())
    for name in sorted(raw):
        a = np.ascontiguousarray(np.asarray(raw[name], dtype="<f4"))
        h.update(f"\0{name}\0{list(a.shape)}\0".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def model_fields(config: dict, raw: dict) -> dict:
    """The manifest fields that follow from the model itself: kind, sizes, dt use, the LTC
    state bounds (or why there are none), the config and the model's sha256."""
    from ltc_edge.nn import functional as F

    kind = config["cell"]["kind"]
    fields = {"model_sha256": model_sha256(config, raw), "kind": kind, "input_size": int(config["input_size"]),
              "output_size": int(config["output_size"]), "state_size": int(F.state_size(config)), "uses_dt": bool(F.model_uses_dt(config)),
              "config": config, "state_bounds": None, "state_bounds_note": ""}
    if kind == "ltc":
        bounds, note = F.ltc_state_bounds(config, raw)
        fields["state_bounds"] = None if bounds is None else {"lo": [float(v) for v in bounds[0]],
                                                              "hi": [float(v) for v in bounds[1]]}
        fields["state_bounds_note"] = note
    return fields


def describe(path) -> dict:
    """Facts of an export folder (or its manifest.json / a file in it), for `ltc info`:
    the manifest's, files listed with size and sha256 (not verified here)."""
    from ltc_edge.nn.modelfile import task_facts

    folder = folder_of(path)
    m = read(folder)
    drift = m.drift or {}
    return {"file": str(folder), "format": m.format, "precision": m.precision, "cell": m.kind,
            "inputs": m.input_size, "outputs": m.output_size, "state_size": m.state_size,
            "step_dt": dt_fact(m), "default_dt": m.default_dt, "fixed_dt": m.fixed_dt, "graph_kind": m.graph_kind,
            "prefix": m.prefix, "files": {role: asdict(_entry(e)) for role, e in m.files.items()},
            "size_bytes": sum(_entry(e).size_bytes for e in m.files.values()),
            "drift_within_budget": drift.get("within_budget"), "drift_max_abs": drift.get("max_abs"),
            "ort_mobile": ort_mobile_fact(m.details.get("ort_mobile")),
            "ltc_edge_version": m.versions.get("ltc-edge"), **task_facts(m.config or {})}


def ort_mobile_fact(mobile) -> str | None:
    """An --ort export's ONNX Runtime Mobile facts in one phrase (`ltc info`): onnxruntime's mobile
    usability verdict and each provider's, and how closely model.ort / model_b1.onnx follow model.onnx."""
    if not isinstance(mobile, dict):
        return None
    use, check = mobile.get("usability") or {}, mobile.get("check") or {}
    eps = ", ".join(f"{ep} {v.get('verdict')}" for ep, v in (use.get("providers") or {}).items()
                    if isinstance(v, dict))
    worst = max((v for v in (check.get("max_abs") or {}).values() if isinstance(v, (int, float))), default=None)
    return (f"usability check {'passes' if use.get('passes') else 'FAILS'} on {use.get('checked')} ({eps}); "
            f"model.ort, model_b1.onnx within max-abs {worst if worst is None else f'{worst:.2g}'} of model.onnx "
            f"over {check.get('steps')} chained steps")


def dt_fact(m: Manifest) -> str:
    """What the exported step does with dt, in one phrase (`ltc info`): fixed at export, an input,
    or unused. (The manifest's uses_dt says whether the model's cell uses dt at all: true for an
    LTC exported with a fixed dt, whose step then takes no dt.)"""
    if not m.uses_dt:
        return f"unused (a {m.kind} step ignores dt)"
    if m.fixed_dt is not None:
        ignored = "a dt passed to the C step is ignored" if m.format == "c" else "the graph has no dt input"
        return f"fixed at export: {m.fixed_dt:g} ({ignored}; the runtime refuses another)"
    return f"an input of every step (default {m.default_dt:g})"


def folder_of(path) -> Path:
    """The export folder for a path: the folder itself, or the folder holding a file."""
    path = Path(path)
    return path if path.is_dir() else path.parent
