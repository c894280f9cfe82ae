"""C99 code generation: a header + source per model, `static const` weights, no malloc,
no global mutable state (the caller owns a state struct), loops only over existing
synapses (CSR lists of prepared constants for the LTC and for masked CfC layers).

Numpy-only (no torch), below both export and runtime: `generate(config, raw)` works from a
model file's contents. The pieces live beside it: cliterals.py (C literals and constant
tables), cells.py (the fp32 cells), toolchain.py (CFLAGS, `compile_library`, the golden
harness); their public names are importable from here too. The exporter (format
"c", drift-checked like every format) is ltc_edge/export/c.py; the runtime's C backend uses
this module to build a .safetensors model on the fly. The templates live in
ltc_edge/codegen/templates/; the cell math they implement mirrors ltc_edge/nn/functional.py
and is pinned against it by golden tests (tests/test_c_codegen.py).

Nothing from a model file reaches the generated code as text except numbers we format and
names that pass `plain_name` (letters, digits, '_', '-', '.').
"""

from __future__ import annotations

import numpy as np

from ltc_edge.codegen.cells import CELL_GENERATORS, FPV4_TEST, UNROLL_MAX_SYNAPSES, UNROLL_MODES  # noqa: F401
from ltc_edge.codegen.cliterals import (  # noqa: F401  (the C generator's public names, one import away)
    CodegenError, Consts, as_int, c_identifier, c_text, flit, plain_name, resolve_ifs, str_array,
    template, word_text)
from ltc_edge.codegen.toolchain import CFLAGS, FIRMWARE, compile_library, find_cc, golden_header  # noqa: F401
from ltc_edge import precision as precisions
from ltc_edge.nn import functional as F

def math_source() -> str:
    """The generated code's own math (exp2_, expf_, sigmoid_, tanh_; no libm) as a C99 fragment
    with its include: every generated model carries this text (tests/test_c_math.py pins its
    error bounds)."""
    return "#include <stdint.h>\n" + template("math.c.in").template


def generate(config: dict, raw: dict, *, prefix: str = "ltc_model", fixed_dt: float | None = None,
             sparse: bool = True, unroll: str = "auto") -> dict:
    """C sources for a model: {"files": {name: text}, "info": {...}} (numpy only).

    `unroll` (LTC, semi-implicit solver): "on" emits the unrolled step (gathers and per-neuron
    sums straight-line, flat vectorisable gate loops), "off" the loop form over CSR synapse
    lists, "auto" unrolls when the recurrent and the sensory synapse lists each have at most
    UNROLL_MAX_SYNAPSES (512) entries (code and stack grow with the synapse count). Other cell
    kinds and the explicit LTC solvers have one form."""
    from ltc_edge import __version__
    prefix = c_identifier(prefix)
    kind = config["cell"]["kind"]
    if kind not in CELL_GENERATORS:
        raise CodegenError(f"no C generator for cell kind {kind!r}")
    if unroll not in UNROLL_MODES:
        raise CodegenError(f"unroll must be one of {', '.join(UNROLL_MODES)}, got {unroll!r}")
    if fixed_dt is not None and not (float(fixed_dt) > 0 and np.isfinite(float(fixed_dt))):
        raise CodegenError(f"fixed_dt must be finite and > 0, got {fixed_dt}")
    raw = {k: np.asarray(v, dtype=np.float32) for k, v in raw.items()}
    P = F.model_prepare(F.NumpyOps, raw, config)
    C = Consts()
    ltc_bounds = F.ltc_state_bounds(config, raw)[0] if kind == "ltc" else None
    cell_code, info = CELL_GENERATORS[kind](C, P["cell"], config["cell"],
                                            {"sparse": sparse, "unroll": unroll, "bounds": ltc_bounds})
    input_code, output_code = _model_io(C, P, config)
    bounds = _bounds_code(C, config, raw)
    common = dict(PREFIX=prefix, UPPER=prefix.upper(), VERSION=plain_name(__version__), KIND=plain_name(kind),
                  SUMMARY=_summary(config, info, sparse))
    facts_h, facts_c = header_facts(config, raw, prefix, fixed_dt)
    header = _header(config, common, fixed_dt, bounds, facts_h)
    code = cell_code + input_code + output_code
    helpers = "".join(template(f).template for key, f in (("dense(", "helpers.c.in"), ("sparse(", "helpers_sparse.c.in"))
                      if key in code)
    uses_dt = F.model_uses_dt(config) and fixed_dt is None
    source = template("model.c.in").substitute(
        common, HEADER=f"{prefix}.h", MATH=template("math.c.in").template, HELPERS=helpers,
        IDX_TYPEDEF=f"typedef {C.idx_type} idx_t; /* synapse / connection indices */\n" if C.n_ints else "",
        CONSTANTS=C.text(), CELL=cell_code,
        FIXED_DT_CODE=(f"    dt = {common['UPPER']}_FIXED_DT;\n" if fixed_dt is not None else "") + "    (void)i;\n",
        INPUT_CODE=input_code, OUTPUT_CODE=output_code, DT_CHECK_ARG="job->dt" if uses_dt else "0",
        DT_CHECK_ONE="&dt" if uses_dt else "0", CELL_IN=as_int(config["cell"]["input_size"], "input_size"),
        **bounds["source"]) + facts_c
    info.update({"weights_bytes": C.total_bytes, "index_type": C.idx_type, "sparse": bool(sparse),
                 "state_bounds_in_c": bounds["has"]})
    return {"files": {f"{prefix}.h": header, f"{prefix}.c": resolve_ifs(source)}, "info": info}


def _summary(config, info, sparse) -> str:
    cell = config["cell"]
    wiring = cell.get("wiring")
    s = (f"{as_int(cell['units'], 'units')} units, {as_int(config['input_size'], 'input_size')} inputs, "
         f"{as_int(config['output_size'], 'output_size')} outputs"
         + (f", {plain_name(wiring['kind'])} wiring" if wiring else ""))
    if cell["kind"] == "ltc":
        s += f", {info['synapses']} + {info['sensory_synapses']} sensory synapses"
        s += "" if sparse else " (dense loops)"
        s += ", unrolled" if info["unrolled"] else ", loop form"
    return s


def _model_io(C: Consts, P: dict, config: dict) -> tuple[str, str]:
    """The normalisation before the cell and the readout / de-normalisation after it."""
    if P["input_mean"] is not None:
        C.floats("IN_MEAN", P["input_mean"])
        C.floats("IN_STD", P["input_std"])
        input_code = "    for (i = 0; i < IN_SIZE; ++i) x[i] = (x_in[i] - IN_MEAN[i]) / IN_STD[i];\n"
    else:
        input_code = "    for (i = 0; i < IN_SIZE; ++i) x[i] = x_in[i];\n"
    if config.get("dt_input"):  # the elapsed time as one more cell input (nn/functional.py model_step)
        input_code += f"    x[IN_SIZE] = dt * {flit(1.0 / config['dt_input']['scale'])};\n"
    if P["readout_w"] is not None:
        C.floats("RO_W", P["readout_w"])
        C.floats("RO_B", P["readout_b"])
        output_code = "    dense(OUT_SIZE, CELL_OUT, RO_W, RO_B, yc, y);\n"
    else:
        output_code = "    for (i = 0; i < OUT_SIZE; ++i) y[i] = yc[i];\n"
    if P["output_mean"] is not None:
        C.floats("OUT_MEAN", P["output_mean"])
        C.floats("OUT_STD", P["output_std"])
        output_code += "    for (i = 0; i < OUT_SIZE; ++i) y[i] = y[i] * OUT_STD[i] + OUT_MEAN[i];\n"
    return input_code, output_code.rstrip("\n")


BOUNDS_TOL = F.STATE_TOL  # the checked step's bounds: lo, hi -/+ F.bound_margin (the runtime's fp32 state_tol)


def _bounds_code(C: Consts, config: dict, raw: dict) -> dict:
    """STATE_LO / STATE_HI for the checked step (the LTC bounds, F.ltc_state_bounds, widened
    by BOUNDS_TOL like the runtime's guards), or finiteness only when there are none."""
    b, note = (F.ltc_state_bounds(config, raw) if config["cell"]["kind"] == "ltc"
               else (None, f"{config['cell']['kind']}: no proven state bound"))
    if b is None:
        src = dict(BOUNDS_DECL="", BOUNDS_CODE="", BOUNDS_ARGS="0, 0")
        return {"has": False, "source": src, "note": note.split(":")[0] + ": finiteness only"}
    lo, hi = (np.asarray(v, np.float64) for v in b)
    w = F.bound_margin(lo, hi, BOUNDS_TOL)
    C.floats("STATE_LO", lo - w)
    C.floats("STATE_HI", hi + w)
    src = dict(BOUNDS_DECL="    float lo[STATE_SIZE], hi[STATE_SIZE];",
               BOUNDS_CODE=("    for (i = 0; i < STATE_SIZE; ++i) { /* the bound covers the starting state too */\n"
                            "        lo[i] = h[i] < STATE_LO[i] ? h[i] : STATE_LO[i];\n"
                            "        hi[i] = h[i] > STATE_HI[i] ? h[i] : STATE_HI[i];\n    }"),
               BOUNDS_ARGS="lo, hi")
    return {"has": True, "source": src, "note": ""}


def _header(config, common, fixed_dt, bounds, facts) -> str:
    from ltc_edge.nn.schema import default_dt

    kind = config["cell"]["kind"]
    upper = common["UPPER"]
    uses_dt = F.model_uses_dt(config)
    return template("model.h.in").substitute(
        common, INPUTS=as_int(config["input_size"], "input_size"), OUTPUTS=as_int(config["output_size"], "output_size"),
        STATE_SIZE=F.state_size(config), DEFAULT_DT=flit(default_dt(config, fixed_dt)), FACTS=facts,
        FIXED_DT_DEFINE=f"#define {upper}_FIXED_DT {flit(fixed_dt)}\n" if fixed_dt is not None else "",
        DT_NOTE=(f" (ignored: exported with a fixed dt = {fixed_dt})" if fixed_dt is not None else
                 ("" if uses_dt else f" (unused by a {kind})")),
        DT_NOTE_CHECKED="" if uses_dt and fixed_dt is None else " (not checked: unused)",
        HAS_BOUNDS=int(bounds["has"]), BOUNDS_NOTE="" if bounds["has"] else f" /* {word_text(bounds['note'])} */",
        BOUNDS_CLAUSE=(f" and inside the LTC state bounds\n * ({common['PREFIX']}_state_lo / {common['PREFIX']}_state_hi "
                       "below, widened by a small margin and to include the state it starts from)"
                       if bounds["has"] else " (no state bounds: finiteness only)"))



# --------------------------------------------------------------------------------------
# header facts (firmware-facing): training dt, I/O names, normalisation, state bounds, identity


def io_names(config: dict) -> tuple[list[str], list[str]]:
    """Input and output names: the csv task's column names when the config records them (and
    they fit), else x0.. / y0..."""
    opts = ((config.get("task") or {}).get("options") or {})
    n_in, n_out = int(config["input_size"]), int(config["output_size"])
    out = []
    for key, n, stem in (("inputs", n_in, "x"), ("targets", n_out, "y")):
        v = opts.get(key)
        names = v.split(",") if isinstance(v, str) else list(v) if isinstance(v, list) else []
        names = [c_text(a) for a in names]
        if len(names) != n or any(a is None for a in names) or len(set(names)) != n:
            names = [f"{stem}{i}" for i in range(n)]
        out.append(names)
    return out[0], out[1]



def header_facts(config: dict, raw: dict, prefix: str, fixed_dt=None,
                 precision: str = precisions.REFERENCE) -> tuple[str, str]:
    """(header block, source definitions) stating what firmware needs to know about the model
    (`precision`: the registry's name of the step, ltc_edge/precision.py)."""
    from ltc_edge import __version__
    from ltc_edge.artifact import model_sha256
    from ltc_edge.nn.schema import default_dt, dt_note

    up, kind = prefix.upper(), config["cell"]["kind"]
    ins, outs = io_names(config)
    sha = model_sha256(config, raw)
    norm = config.get("normalization") or {}
    folded = [side for side in ("input", "output") if norm.get(f"{side}_mean") is not None]
    lines = [f"/* model sha256 {sha}", f" * (config + tensors, ltc_edge.artifact.model_sha256); ltc-edge {plain_name(__version__)}",
             f" * precision {precision} ({precisions.PRECISIONS[precision]['c_note']}); no malloc, no stdio",
             f" * inputs  x[{len(ins)}]: {', '.join(ins)}", f" * outputs y[{len(outs)}]: {', '.join(outs)}",
             " * units: " + (f"raw; the training normalisation ({' and '.join(folded)} mean/std) is folded into the step"
                             if folded else "as trained (the model has no normalisation)"),
             " * dt: " + (f"fixed at export ({flit(fixed_dt)})" if fixed_dt is not None else
                          f"an input, in the unit the model was trained with; {up}_DEFAULT_DT = {flit(default_dt(config))}"),
             " * training dt: " + (c_text(dt_note(config)) or "see the model card"), " */",
             f'#define {up}_MODEL_SHA256 "{sha}"', f'#define {up}_LTC_EDGE_VERSION "{plain_name(__version__)}"',
             f'#define {up}_PRECISION "{precision}"', f"#define {up}_NORMALISATION_FOLDED {int(bool(folded))}",
             f"#define {up}_NAME_SIZE {max(map(len, ins + outs)) + 1} /* longest name + its NUL */",
             f"extern const char {prefix}_input_names[{up}_INPUTS][{up}_NAME_SIZE];",
             f"extern const char {prefix}_output_names[{up}_OUTPUTS][{up}_NAME_SIZE];"]
    src = [f"const char {prefix}_input_names[{up}_INPUTS][{up}_NAME_SIZE] = {str_array(ins)};",
           f"const char {prefix}_output_names[{up}_OUTPUTS][{up}_NAME_SIZE] = {str_array(outs)};"]
    bounds, note = F.ltc_state_bounds(config, raw) if kind == "ltc" else (None, f"a {plain_name(kind)} has no state bounds")
    lines.append(f"#define {up}_HAS_STATE_BOUNDS {int(bounds is not None)}")
    if bounds is None:
        lines.append(f"/* no state bounds: {c_text(note) or 'see the manifest'} */")
    else:
        lines += ["/* LTC state bounds (a state outside them did not come from this model) */",
                  f"extern const float {prefix}_state_lo[{up}_STATE_SIZE];",
                  f"extern const float {prefix}_state_hi[{up}_STATE_SIZE];"]
        for name, v in (("state_lo", bounds[0]), ("state_hi", bounds[1])):
            src.append(f"const float {prefix}_{name}[{up}_STATE_SIZE] = {{{', '.join(flit(a) for a in v)}}};")
    return "\n".join(lines) + "\n", "\n/* ---- model facts (declared in the header) ---- */\n" + "\n".join(src) + "\n"


