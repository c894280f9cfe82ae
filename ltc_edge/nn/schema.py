"""The one validation layer for model configs (the JSON in a model file's metadata).

`validate_config(config)` accepts exactly the configs every consumer (torch Model, numpy
runtime, ONNX / TFLite / C export, `ltc info`) handles, and raises ModelFileError with one
line naming the key path otherwise, e.g.
`cell.ode_unfolds must be an integer in [1, 256], got 100000`.

Rules: exact JSON types (a bool is not an int, 8.0 is not an int), every string a member of
an enumeration taken from the registries that run it (cell kinds from F.CELLS, solvers from
F.SOLVERS (solvers_for each kind), CfC modes and activations from functional, wiring kinds from
WIRINGS), every size under a documented maximum (so nothing allocates or loops without
bound), matrices of the right shape, numbers finite. Unknown keys are rejected: a typo or a
crafted key never runs as a silent default. Needs numpy only (through functional).
"""

from __future__ import annotations

import math
import re

from ..errors import ModelLoadError
from . import functional as F
from .wirings import WIRINGS, Wiring

FORMAT = "ltc-edge-model"
SUPPORTED_VERSIONS = (1,)

# Maxima. The largest shipped or tested models: 48 LTC units, 128 CfC backbone units, 64
# unfolds, 28 inputs (Fashion-MNIST rows), 17 outputs (cheetah). Generous margins on top, but
# low enough that a crafted file cannot make load, eval or export allocate or loop for long.
MAX_UNITS = 2048            # neurons / hidden units of a cell (also ode_hidden)
MAX_INPUTS = 4096           # input_size
MAX_OUTPUTS = 4096          # output_size and a wiring's output_dim
MAX_BACKBONE_UNITS = 4096   # CfC backbone width
MAX_BACKBONE_LAYERS = 16    # CfC backbone depth
MAX_UNFOLDS = 256           # ODE solver steps per time step (each one is unrolled in exports)
MAX_PARAMETERS = 1 << 25    # all tensors together (128 MiB of float32)
MAX_NORM_ABS = 1e12         # |mean| and std of the normalisation
MIN_STD = 1e-12             # smallest normalisation std (the input is divided by it)
MAX_EPSILON = 1.0           # the LTC's denominator guard
MAX_ARGS = 32               # entries of a wiring's args or a task's options
# |every tensor value|. A finite float32 parameter is not enough: the backends fold products
# of two parameters into constants (w*erev, gleak*vleak, sigma*(input_b - mu), the C step's
# gate records a = -sigma*log2(e), b = -a*mu, cm*unfolds) and sum them over every synapse, so
# sigma = 3e38 is finite but its C constant is not. Within 1e6, the products stay below 1e13
# and their sums over a wiring's synapses far below float32's 3.4e38: every backend takes
# every model file the schema admits (trained weights are a few units; ncps initialises in [-1, 8]).
MAX_PARAM_ABS = 1e6
MAX_TEXT = 4096             # length of a free-form string (a task option such as a data path)

NEURON_TYPES = ("motor", "command", "inter")  # what Wiring.get_type_of_neuron returns
WIRING_KINDS = tuple(cls.kind for cls in WIRINGS.values()) + (Wiring.kind,)  # + "custom" (stored/ncps)
NORMALIZATION_KEYS = ("input_mean", "input_std", "output_mean", "output_std")
TASK_KEYS = ("name", "options", "type", "metric", "dt", "data")
DT_KEYS = ("median", "min", "max", "mean", "std")
_PLAIN = re.compile(r"[A-Za-z0-9_.\-]{1,64}")  # names that may appear in generated code and reports


class ModelFileError(ModelLoadError):
    """A model file that is missing, truncated, foreign or inconsistent (also importable as
    ltc_edge.nn.modelfile.ModelFileError)."""


# --------------------------------------------------------------------------------------
# primitive checks: each raises ModelFileError("<path> must be ..., got <value>")


def _show(value) -> str:
    """A short, one-line rendering of a bad value (no huge ints, lists or multi-line strings)."""
    if type(value) is int and value.bit_length() > 64:
        return f"an integer of {value.bit_length()} bits"
    if isinstance(value, (dict, list)):
        return f"a JSON {'object' if isinstance(value, dict) else 'array'} of {len(value)} entries"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def fail(path: str, message: str, value=None, show: bool = True):
    raise ModelFileError(f"{path} {message}" + (f", got {_show(value)}" if show else ""))


def _int(value, path, lo, hi) -> int:
    if type(value) is not int or not lo <= value <= hi:
        fail(path, f"must be an integer in [{lo}, {hi}]", value)
    return value


def _number(value, path, lo, hi):
    # ints compare exactly (math.isfinite(10**400) would raise OverflowError)
    if type(value) not in (int, float) or not ((type(value) is int or math.isfinite(value)) and lo <= value <= hi):
        fail(path, f"must be a finite number in [{lo:g}, {hi:g}]", value)
    return value


def _bool(value, path) -> bool:
    if type(value) is not bool:
        fail(path, "must be true or false", value)
    return value


def _enum(value, path, choices) -> str:
    if not (value is None or isinstance(value, str)) or value not in choices:
        fail(path, f"must be one of {', '.join(map(str, choices))}", value)
    return value


def _plain(value, path) -> str:
    if not isinstance(value, str) or not _PLAIN.fullmatch(value):
        fail(path, "must be a plain name (letters, digits, '_', '-', '.'; at most 64)", value)
    return value


def _object(value, path, required=(), optional=()) -> dict:
    """A JSON object with all `required` keys and no key outside required + optional."""
    if not isinstance(value, dict):
        fail(path, "must be a JSON object", value)
    for key in value:
        if key not in required and key not in optional:
            fail(f"{path}.{_show(key)}" if path else _show(key), "is not a known key", show=False)
    for key in required:
        if key not in value:
            fail(f"{path}.{key}" if path else key, "is missing", show=False)
    return value


def _list(value, path, length=None, max_length=None) -> list:
    if not isinstance(value, list):
        fail(path, "must be a list", value)
    if length is not None and len(value) != length:
        fail(path, f"must be a list of {length} entries", value)
    if max_length is not None and len(value) > max_length:
        fail(path, f"must be a list of at most {max_length} entries", value)
    return value


def _named(value, path) -> dict:
    """A JSON object of at most MAX_ARGS entries whose keys are plain names."""
    if not isinstance(value, dict):
        fail(path, "must be a JSON object", value)
    if len(value) > MAX_ARGS:
        fail(path, f"must have at most {MAX_ARGS} entries", value)
    for key in value:
        _plain(key, f"{path} key")
    return value


def _matrix(value, path, rows, cols) -> None:
    """rows x cols entries in {-1, 0, 1} (synapse polarities), exact ints."""
    for r, row in enumerate(_list(value, path, rows)):
        _list(row, f"{path}[{r}]", cols)
        if not set(map(type, row)) <= {int} or not set(row) <= {-1, 0, 1}:
            fail(f"{path}[{r}]", "entries must be -1, 0 or 1 (integers)", show=False)


# --------------------------------------------------------------------------------------
# the wiring (ltc, optionally cfc)

_WIRING_REQUIRED = ("kind", "units", "input_dim", "output_dim", "adjacency", "sensory_adjacency")
_WIRING_OPTIONAL = ("args", "layers", "neuron_types")  # StoredWiring has defaults for these


def _wiring(value, path, cell) -> None:
    w = _object(value, path, _WIRING_REQUIRED, _WIRING_OPTIONAL)
    _enum(w["kind"], f"{path}.kind", WIRING_KINDS)
    n = _int(w["units"], f"{path}.units", 1, MAX_UNITS)
    if n != cell["units"]:
        fail(f"{path}.units", f"must equal cell.units ({cell['units']})", n)
    n_in = _int(w["input_dim"], f"{path}.input_dim", 1, MAX_INPUTS)
    if n_in != cell["input_size"]:
        fail(f"{path}.input_dim", f"must equal cell.input_size ({cell['input_size']})", n_in)
    _int(w["output_dim"], f"{path}.output_dim", 1, n)
    _matrix(w["adjacency"], f"{path}.adjacency", n, n)
    _matrix(w["sensory_adjacency"], f"{path}.sensory_adjacency", n_in, n)
    if "args" in w:
        _args(w["args"], f"{path}.args")
    if "neuron_types" in w:
        for i, t in enumerate(_list(w["neuron_types"], f"{path}.neuron_types", n)):
            _enum(t, f"{path}.neuron_types[{i}]", NEURON_TYPES)
    if "layers" in w:
        _layers(w["layers"], f"{path}.layers", n)
    elif cell["kind"] == "cfc":  # a wired CfC runs one block per layer
        fail(f"{path}.layers", "is missing (a wired CfC runs one block per layer)", show=False)


def _layers(value, path, n) -> None:
    """Non-empty layers that together hold every neuron exactly once."""
    seen = set()
    for li, layer in enumerate(_list(value, path, max_length=n)):
        if not _list(layer, f"{path}[{li}]"):
            fail(f"{path}[{li}]", "must not be empty", show=False)
        for i, neuron in enumerate(layer):
            _int(neuron, f"{path}[{li}][{i}]", 0, n - 1)
            if neuron in seen:
                fail(f"{path}[{li}][{i}]", "repeats a neuron of an earlier entry", neuron)
            seen.add(neuron)
    if len(seen) != n:
        fail(path, f"must hold each of the {n} neurons once (holds {len(seen)})", show=False)


def _args(value, path) -> None:
    """Informational constructor arguments (seeds, sparsity): names to numbers."""
    for key, v in _named(value, path).items():
        if v is not None and type(v) is not bool:
            _number(v, f"{path}.{key}", -(2 ** 63), 2 ** 63)


# --------------------------------------------------------------------------------------
# cells: the options each kind takes, with their checks (value, path, cell)


def _int_in(lo, hi):
    return lambda v, p, cell: _int(v, p, lo, hi)


def _one_of(choices):
    return lambda v, p, cell: _enum(v, p, choices)


def _motor_size(value, path, cell) -> None:
    _int(value, path, 1, cell["units"])
    if value != cell["wiring"]["output_dim"]:
        fail(path, f"must equal cell.wiring.output_dim ({cell['wiring']['output_dim']})", value)


_UNFOLDS = _int_in(1, MAX_UNFOLDS)
_MAPPING = _one_of(F.LTC_MAPPINGS + (None,))  # null: ncps's "no mapping", as "none"

# kind -> ({option: check}, required options). Every cell kind in F.CELLS has an entry (a
# new kind without one fails at import, not silently at load). Options a kind leaves out
# take functional's defaults.
CELL_OPTIONS = {
    "ltc": ({"wiring": _wiring, "motor_size": _motor_size, "ode_unfolds": _UNFOLDS,
             "epsilon": lambda v, p, cell: _number(v, p, 0.0, MAX_EPSILON),
             "implicit_param_constraints": lambda v, p, cell: _bool(v, p),
             "input_mapping": _MAPPING, "output_mapping": _MAPPING,
             "solver": _one_of(F.solvers_for("ltc"))}, ("wiring", "motor_size")),
    "cfc": ({"wiring": _wiring, "mode": _one_of(F.CFC_MODES), "activation": _one_of(tuple(F.ACTIVATIONS)),
             "backbone_units": _int_in(0, MAX_BACKBONE_UNITS),
             "backbone_layers": _int_in(0, MAX_BACKBONE_LAYERS)}, ()),
    "ctrnn": ({"ode_unfolds": _UNFOLDS, "solver": _one_of(F.solvers_for("ctrnn"))}, ()),
    "node": ({"ode_unfolds": _UNFOLDS, "solver": _one_of(F.solvers_for("node")),
              "ode_hidden": _int_in(1, MAX_UNITS)}, ()),
    "lstm": ({}, ()),
    "gru": ({}, ()),
}
if set(CELL_OPTIONS) != set(F.CELLS):
    raise ImportError(f"nn.schema has no options table for cell kind(s) "
                      f"{sorted(set(F.CELLS) ^ set(CELL_OPTIONS))}")
_CELL_COMMON = ("kind", "input_size", "units")


def _cell(value, path, input_size) -> None:
    if not isinstance(value, dict):
        fail(path, "must be a JSON object", value)
    if "kind" not in value:
        fail(f"{path}.kind", "is missing", show=False)
    kind = _enum(value["kind"], f"{path}.kind", tuple(F.CELLS))
    checks, required = CELL_OPTIONS[kind]
    cell = _object(value, path, _CELL_COMMON + required, tuple(checks))
    if _int(cell["input_size"], f"{path}.input_size", 1, MAX_INPUTS) != input_size:
        fail(f"{path}.input_size", f"must equal input_size ({input_size})", cell["input_size"])
    _int(cell["units"], f"{path}.units", 1, MAX_UNITS)
    for key in ("wiring",) + tuple(k for k in checks if k != "wiring"):  # the wiring first: motor_size uses it
        if key in cell and not (key == "wiring" and cell[key] is None and kind == "cfc"):
            checks[key](cell[key], f"{path}.{key}", cell)
    if kind == "cfc":
        _cfc_consistent(cell, path)


def _cfc_consistent(cell, path) -> None:
    wiring = cell.get("wiring")
    if wiring:  # the wired CfC's output is its last layer (ncps semantics)
        last = len(wiring["layers"][-1])
        if last != wiring["output_dim"]:
            fail(f"{path}.wiring.output_dim", f"must equal the size of the last layer ({last}), "
                 "which is what a wired CfC outputs", wiring["output_dim"])
    elif cell.get("backbone_layers", 1) > 0 and cell.get("backbone_units", 128) < 1:
        fail(f"{path}.backbone_units", "must be >= 1 when backbone_layers > 0", cell.get("backbone_units"))


# --------------------------------------------------------------------------------------
# normalisation, the stored task, the whole config


def _normalization(value, path, sizes) -> None:
    """null, or mean/std pairs of finite lists of the input / output size (std > 0)."""
    if value is None:
        return
    norm = _object(value, path, optional=NORMALIZATION_KEYS)
    for side in ("input", "output"):
        mean, std = norm.get(f"{side}_mean"), norm.get(f"{side}_std")
        if (mean is None) != (std is None):  # the step applies both or neither
            fail(f"{path}.{side}_{'std' if std is None else 'mean'}",
                 f"is missing (needed with {path}.{side}_{'mean' if std is None else 'std'})", show=False)
        if mean is None:
            continue
        for key, lo in ((f"{side}_mean", -MAX_NORM_ABS), (f"{side}_std", MIN_STD)):
            for i, v in enumerate(_list(norm[key], f"{path}.{key}", sizes[side])):
                _number(v, f"{path}.{key}[{i}]", lo, MAX_NORM_ABS)


def _task(value, path) -> None:
    """What `ltc eval` re-loads the task from: plain names and simple option values."""
    if value is None or value == {}:
        return
    # only a training dt (from_ncps(module, dt=...)): no task to re-load, so no name
    only_dt = isinstance(value, dict) and set(value) == {"dt"}
    task = _object(value, path, () if only_dt else ("name",), TASK_KEYS)
    if not only_dt:
        _plain(task["name"], f"{path}.name")
    for key in ("type", "metric"):
        if key in task:
            _plain(task[key], f"{path}.{key}")
    for key, v in _named(task.get("options") or {}, f"{path}.options").items():
        if isinstance(v, list):
            for i, item in enumerate(_list(v, f"{path}.options.{key}", max_length=MAX_ARGS)):
                _option_value(item, f"{path}.options.{key}[{i}]")
        else:
            _option_value(v, f"{path}.options.{key}")
    if task.get("dt") is not None:  # the training data's dt distribution
        dts = _object(task["dt"], f"{path}.dt", ("median",), DT_KEYS)
        for key, v in dts.items():
            _number(v, f"{path}.dt.{key}", 0.0 if key == "std" else 1e-30, 1e12)
    if task.get("data") is not None:  # the training data file: absolute path and content hash
        data = _object(task["data"], f"{path}.data", ("path", "sha256"), ("path", "sha256", "size_bytes"))
        _option_value(data["path"], f"{path}.data.path")
        if not isinstance(data["sha256"], str) or not re.fullmatch(r"[0-9a-f]{64}", data["sha256"]):
            fail(f"{path}.data.sha256", "must be 64 lowercase hex digits", data["sha256"])
        if "size_bytes" in data:
            _int(data["size_bytes"], f"{path}.data.size_bytes", 0, 2 ** 63)


def _option_value(v, path) -> None:
    if isinstance(v, str):
        if len(v) > MAX_TEXT or "\x00" in v:
            fail(path, f"must be a string of at most {MAX_TEXT} characters without NUL", v)
    elif v is not None and type(v) is not bool:
        _number(v, path, -(2 ** 63), 2 ** 63)


_TOP_REQUIRED = ("format", "format_version", "input_size", "output_size", "readout", "cell")
_TOP_OPTIONAL = ("normalization", "task", "dt_input", "isolation")
ISOLATE_BY = ("magnitude", "gradient", "fisher")  # train/isolate.py's statistics


def _isolation(rec, path) -> None:
    """`ltc train --isolate`'s record: the fraction, the statistic, the epoch, counts per tensor."""
    if rec is None:
        return
    _object(rec, path, ("fraction", "by", "at_epoch", "isolated"), ("left",))
    _number(rec["fraction"], f"{path}.fraction", 0.0, 1.0)
    _enum(rec["by"], f"{path}.by", ISOLATE_BY)
    _int(rec["at_epoch"], f"{path}.at_epoch", 0, 2 ** 31)
    for key in ("isolated", "left"):
        counts = rec.get(key)
        if counts is not None and not isinstance(counts, dict):
            fail(f"{path}.{key}", "must be a JSON object", counts)
        for name, n in (counts or {}).items():
            _plain(name, f"{path}.{key}")
            _int(n, f"{path}.{key}.{name}", 0, 2 ** 31)


def validate_config(config) -> None:
    """Raise ModelFileError (one line naming the key path) unless `config` is a model config
    every consumer accepts. Checks structure, types, enumerations and maxima; the tensors
    are checked against F.model_shapes(config) by nn.modelfile.validate."""
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        found = config.get("format") if isinstance(config, dict) else None
        raise ModelFileError(f"not an ltc-edge model config (format is {_show(found)})")
    if config.get("format_version") not in SUPPORTED_VERSIONS or type(config["format_version"]) is not int:
        raise ModelFileError(f"model format version {_show(config.get('format_version'))} is not "
                             f"supported by this ltc-edge (supports {SUPPORTED_VERSIONS})")
    _object(config, "", _TOP_REQUIRED, _TOP_OPTIONAL)
    n_in = _int(config["input_size"], "input_size", 1, MAX_INPUTS)
    n_out = _int(config["output_size"], "output_size", 1, MAX_OUTPUTS)
    readout = _bool(config["readout"], "readout")
    dt_input = config.get("dt_input")
    if dt_input is not None:  # the elapsed time as one more cell input, divided by scale
        _number(_object(dt_input, "dt_input", ("scale",))["scale"], "dt_input.scale", 1e-30, 1e12)
    _cell(config["cell"], "cell", n_in + (dt_input is not None))  # dt is the cell's last input
    cell = config["cell"]
    cell_out = F.cell_spec(cell["kind"]).output_size(cell)
    if not readout and n_out != cell_out:
        fail("output_size", f"must equal the cell's {cell_out} outputs when readout is false", n_out)
    _normalization(config.get("normalization"), "normalization", {"input": n_in, "output": n_out})
    _task(config.get("task"), "task")
    _isolation(config.get("isolation"), "isolation")
    n_params = parameter_count(config)
    if n_params > MAX_PARAMETERS:
        fail("cell", f"implies {n_params} parameters, more than MAX_PARAMETERS = {MAX_PARAMETERS}", show=False)


def default_dt(config, fixed_dt=None) -> float:
    """The dt a step without one uses: a fixed dt when exported with one, else the training
    data's median dt (config["task"]["dt"]["median"], stored by `ltc train`), else 1.0."""
    if fixed_dt is not None:
        return float(fixed_dt)
    dt = ((config.get("task") or {}).get("dt") or {}).get("median")
    return float(dt) if isinstance(dt, (int, float)) and not isinstance(dt, bool) and 0 < dt < math.inf else 1.0


def dt_note(config) -> str:
    """The dt a model was trained with and its unit, in one phrase: `ltc info`, the C header and
    the model card say the same. dt is in the training data's own time unit."""
    task = config.get("task") or {}
    dts, time_col = task.get("dt") or {}, (task.get("options") or {}).get("time")
    if not isinstance(dts.get("median"), (int, float)):
        return ("training dt not recorded; dt is in the unit the model was trained with "
                "(an ncps model: 1.0 per step, unless it was trained with timespans)")
    med = dts["median"]
    lo, hi = dts.get("min", med), dts.get("max", med)
    seen = f"{med:g}" + (f" (median; {lo:g} to {hi:g})" if lo != hi else "")
    if time_col:
        return f"{seen}, in the unit of the time column {time_col}"
    return f"{seen} " + ("per step" if med == lo == hi == 1 else "in the training data time unit")


def parameter_count(config) -> int:
    """Number of float parameters a (validated) config implies."""
    return sum(math.prod(shape) for shape in F.model_shapes(config).values())
