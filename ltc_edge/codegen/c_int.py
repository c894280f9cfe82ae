"""Integer-only C for an LTC (precision "int8"): the semi-implicit LTC step in int16/int32
fixed point, numpy-only like ltc_edge/codegen/c.py (whose public helpers it reuses).

Scheme (stated in the generated header and source):
  * dt is fixed at export (cm_t = cm * unfolds / dt becomes a constant);
  * states: int16, one power-of-two format Q<sv> for all neurons, from the LTC state bounds
    (ltc_state_bounds: every potential, leak and reversal potential fits, so nothing
    overflows; the update is a convex mix and stays within the bounds by construction);
  * synapses: sigmoid(sigma*(v - mu)) as sigmoid(a*v + b) with int16 a, int32 b (per-tensor
    power-of-two scales; the input normalisation and input map folded into the sensory a, b),
    the sigmoid from a 512-entry Q15 lookup table over [-8, 8) (b carries the table's centre
    and the rounding; one USAT clamps the index on v7-M); each synapse is one packed record of
    three words (a << 16 | pre, b, w*erev << 16 | w) walked by one pointer;
  * conductances w and w*erev: int16 per synapse, scaled per postsynaptic neuron by c_j chosen
    so that the neuron's largest possible denominator is 32000 units (the ratio v' = num/den
    does not change under a per-neuron scale, so the scale costs nothing);
  * v' = num / den: one rounding int32 division per neuron and unfold, saturated to int16;
  * inputs: raw units, int16 with a per-input power-of-two format from the calibration data's
    range (values outside saturate); outputs: raw units, int16 with a per-output format from
    the output bound the state bounds imply (no output can saturate).
"""

from __future__ import annotations

import math
from pathlib import Path
from string import Template

import numpy as np

from ltc_edge.codegen.c import CodegenError, c_identifier, flit, header_facts
from ltc_edge.nn import functional as F

TEMPLATES = Path(__file__).with_name("templates") / "int"
LUT_FRAC = 5          # sigmoid table step 1/32 over [-8, 8): 512 Q15 entries
LUT_N = 16 << LUT_FRAC
DEN_UNITS = 32000     # a neuron's largest possible denominator, in its own conductance units
A_MAX = 1 << 14       # |a| limit: |a * v| <= 2^29


def frac_bits(limit: float, bound: float, lo: int = -24, hi: int = 30) -> int:
    """Largest k with bound * 2^k <= limit (clipped to [lo, hi])."""
    if not bound > 0:
        return hi
    return int(max(lo, min(hi, math.floor(math.log2(limit / bound)))))


def qround(a, k, dtype=np.int64):
    return np.round(np.asarray(a, np.float64) * 2.0 ** k).astype(dtype)


def _affine(sig, mu, slope, offset, v_frac):
    """Synapse pre-activations z = sig*(slope*q + offset - mu) for an integer q with v_frac
    fractional bits, as z*2^zf = A*q + B: (A int16, B int32, zf)."""
    a = sig * slope * 2.0 ** -v_frac  # per unit of q
    b = sig * (offset - mu)
    zf = frac_bits(A_MAX, float(np.abs(a).max()) if a.size else 0.0, hi=24)
    if zf < LUT_FRAC + 1:
        raise CodegenError(f"int8 C: a synapse's sigmoid is too steep for the fixed-point format "
                           f"(|sigma * scale| up to {float(np.abs(a).max()):.3g})")
    lim = 2 ** 29 + 2 ** (zf + 4)  # beyond: saturated whatever a*q is
    A = qround(a, zf)
    shift = zf - LUT_FRAC  # z >> shift: table steps; b carries the table's centre and the rounding
    B = np.clip(qround(b, zf), -lim, lim) + ((LUT_N // 2) << shift) + (1 << (shift - 1))
    return A.astype(np.int16), B.astype(np.int64), zf


def _csr(mask):
    post, pre = np.nonzero(mask.T)  # rows: postsynaptic neuron
    row = np.concatenate([[0], np.cumsum(np.bincount(post, minlength=mask.shape[1]))])
    return row, pre, post


def quantize(config: dict, raw: dict, fixed_dt: float, calib_x) -> dict:
    """Integer constants of an LTC model for the int8 C step (see the module doc)."""
    cell = config["cell"]
    if cell["kind"] != "ltc":
        raise CodegenError(f"int8 C export supports LTC models, not {cell['kind']!r}")
    if config.get("dt_input"):
        raise CodegenError("int8 C export does not support a dt input column")
    bounds, why = F.ltc_state_bounds(config, raw)
    if bounds is None:
        raise CodegenError(f"int8 C export needs the LTC state bounds: {why}")
    raw = {k: np.asarray(v, np.float32) for k, v in raw.items()}
    Pm = F.model_prepare(F.NumpyOps, raw, config)
    P = {k: (None if v is None else np.asarray(v, np.float64)) for k, v in Pm["cell"].items()}
    n, m, n_in = int(cell["units"]), int(cell["motor_size"]), int(config["input_size"])
    vmax = float(max(np.abs(bounds[0]).max(), np.abs(bounds[1]).max(), 1e-6))
    sv = frac_bits(32767, vmax, hi=15)
    q = {"sv": sv, "n": n, "motor": m, "bounds": bounds}
    q.update(_inputs(config, Pm, P, calib_x, n_in))
    q.update(_synapses(config, P, q, fixed_dt))
    q.update(_outputs(config, Pm, P, q))
    return q


def _inputs(config, Pm, P, calib_x, n_in):
    """Per-input formats from the calibration range, and the raw -> cell-input affine map."""
    x = np.asarray(calib_x, np.float64).reshape(-1, n_in) if calib_x is not None else np.zeros((1, n_in))
    xmax = np.abs(x).max(0) * 1.25 if x.size else np.ones(n_in)
    xf = np.array([frac_bits(32767, float(b), hi=15) for b in xmax])
    slope, offset = np.ones(n_in), np.zeros(n_in)
    if Pm["input_mean"] is not None:
        slope = 1.0 / np.asarray(Pm["input_std"], np.float64)
        offset = -np.asarray(Pm["input_mean"], np.float64) * slope
    if P.get("input_w") is not None:
        slope, offset = slope * P["input_w"], offset * P["input_w"]
    if P.get("input_b") is not None:
        offset = offset + P["input_b"]
    return {"xf": xf, "in_slope": slope, "in_offset": offset, "calib_xmax": xmax}


def _synapses(config, P, q, fixed_dt):
    cell, n, sv = config["cell"], q["n"], q["sv"]
    adj = np.abs(np.asarray(cell["wiring"]["adjacency"])) > 0
    sadj = np.abs(np.asarray(cell["wiring"]["sensory_adjacency"])) > 0
    unfolds = int(cell.get("ode_unfolds", 6))
    cm_t = P["cm"] * unfolds / float(fixed_dt)
    total = cm_t + P["gleak"] + (P["w"] * adj).sum(0) + (P["sensory_w"] * sadj).sum(0)
    c = DEN_UNITS / np.where(total > 0, total, 1.0)  # per-neuron conductance scale
    out = {"unfolds": unfolds, "cmt": qround(cm_t * c, 0), "glvl": qround(P["gleak_vleak"] * c, sv),
           "cmtgl": qround((cm_t + P["gleak"]) * c, 15)}
    for tag, mask, pre_, slope, offset, vf in (
            ("R", adj, "", np.ones(n), np.zeros(n), sv),
            ("S", sadj, "sensory_", q["in_slope"], q["in_offset"], q["xf"])):
        row, pre, post = _csr(mask)
        vfk = np.broadcast_to(vf, slope.shape)[pre]
        A, B, zf = _affine(P[pre_ + "sigma"][pre, post], P[pre_ + "mu"][pre, post], slope[pre], offset[pre],
                           vfk)
        out[tag] = {"row": row, "pre": pre, "A": A, "B": B, "shift": zf - LUT_FRAC,
                    "W": qround(P[pre_ + "w"][pre, post] * c[post], 0).astype(np.int16),
                    "WE": qround(P[pre_ + "w_erev"][pre, post] * c[post], sv - 15).astype(np.int16)}
    return out


def _outputs(config, Pm, P, q):
    """y = M v[:motor] + c in raw output units, as acc = OM v_q + OC (Q fy), yq = acc >> osh."""
    m = q["motor"]
    M, c0 = np.eye(m), np.zeros(m)
    if P.get("output_w") is not None:
        M = M * P["output_w"][:, None]
    if P.get("output_b") is not None:
        c0 = c0 + P["output_b"]
    if Pm["readout_w"] is not None:
        R = np.asarray(Pm["readout_w"], np.float64)
        M, c0 = R @ M, R @ c0 + np.asarray(Pm["readout_b"], np.float64)
    if Pm["output_mean"] is not None:
        std = np.asarray(Pm["output_std"], np.float64)
        M, c0 = M * std[:, None], c0 * std + np.asarray(Pm["output_mean"], np.float64)
    lo, hi = q["bounds"][0][:m], q["bounds"][1][:m]
    bound = np.abs(c0) + np.maximum(np.abs(M * lo), np.abs(M * hi)).sum(1) + 1e-9
    yf = np.array([frac_bits(32767, b, hi=24) for b in bound])
    fy = np.array([min(frac_bits(2.0 ** 29, b, hi=40),
                       q["sv"] + frac_bits(32767, float(np.abs(r).max()) + 1e-12, hi=40)) for b, r in zip(bound, M)])
    osh = fy - yf
    if osh.min() < 1:
        raise CodegenError("int8 C: an output map too large for the fixed-point format")
    return {"OM": np.stack([qround(r, f - q["sv"]) for r, f in zip(M, fy)]).astype(np.int16),
            "OC": np.array([qround(v, f) for v, f in zip(c0, fy)], np.int64), "osh": osh, "yf": yf,
            "out_bound": bound}


# --------------------------------------------------------------------------------------
# C source


_CTYPES = {"int8_t": 1, "uint8_t": 1, "uint16_t": 2, "int16_t": 2, "int32_t": 4, "uint32_t": 4, "idx_t": None}


class IntArrays:
    def __init__(self, idx_bytes: int):
        self.lines, self.bytes, self.idx_bytes = [], 0, idx_bytes

    def add(self, ctype: str, name: str, values) -> None:
        a = np.asarray(values).astype(np.int64).ravel()
        lo, hi = {"int8_t": (-127, 127), "uint8_t": (0, 255), "uint16_t": (0, 65535), "int16_t": (-32768, 32767),
                  "int32_t": (-2 ** 31 + 1, 2 ** 31 - 1), "uint32_t": (0, 2 ** 32 - 1), "idx_t": (0, 65535)}[ctype]
        if a.size and (a.min() < lo or a.max() > hi):
            raise CodegenError(f"int8 C: constant {name} out of {ctype} range (bug in the quantiser)")
        items = [str(int(v)) + ("u" if ctype == "uint32_t" else "") for v in a] or ["0"]
        self.bytes += (_CTYPES[ctype] or self.idx_bytes) * len(items)
        rows = [",".join(items[i:i + 16]) for i in range(0, len(items), 16)]
        self.lines.append(f"static const {ctype} {name}[{len(items)}] = {{\n    " + ",\n    ".join(rows) + "};")


def _pack(hi, lo) -> np.ndarray:
    """(hi << 16) | (lo & 0xffff) as uint32 words (hi, lo int16 / index)."""
    return ((np.asarray(hi, np.int64) & 0xFFFF) << 16) | (np.asarray(lo, np.int64) & 0xFFFF)


def sigmoid_lut() -> np.ndarray:
    k = (np.arange(LUT_N) - LUT_N // 2) / float(1 << LUT_FRAC)
    return np.round(32768.0 / (1.0 + np.exp(-k))).astype(np.int64)


def _constants(q: dict) -> tuple[str, int, str]:
    idx_max = max(int(np.diff(q["R"]["row"]).max()), int(np.diff(q["S"]["row"]).max()))
    idx = "uint8_t" if idx_max < 256 else "uint16_t"
    C = IntArrays(1 if idx == "uint8_t" else 2)
    C.add("int16_t", "SIG_LUT", sigmoid_lut())
    for tag in ("R", "S"):
        s = q[tag]
        C.add("idx_t", f"{tag}_COUNT", np.diff(s["row"]))
        words = np.stack([_pack(s["A"], s["pre"]), np.asarray(s["B"], np.int64) & 0xFFFFFFFF,
                          _pack(s["WE"], s["W"])], 1)
        C.add("uint32_t", f"{tag}_SYN", words)
    for name in ("cmt", "glvl", "cmtgl"):
        C.add("int32_t", name.upper(), q[name])
    C.add("int16_t", "OM", q["OM"])
    C.add("int32_t", "OC", q["OC"])
    C.add("uint8_t", "OSH", q["osh"])
    return "\n".join(C.lines) + "\n", C.bytes, idx


def c_init(values) -> str:
    return "{" + ", ".join(str(int(v)) for v in values) + "}"


def int_facts(config, raw, prefix, fixed_dt) -> tuple[str, str]:
    """c.header_facts, restated for the integer step (precision line and macro)."""
    import re

    h, src = header_facts(config, raw, prefix, fixed_dt)
    up = prefix.upper()
    h2 = re.sub(r"precision fp32( \([^)\n]*\))?", "precision int8 (integer-only step: int16 states, int8/int16 "
                "constants, int32 sums)", h)
    h2 = re.sub(rf'#define {up}_PRECISION "fp32"', f'#define {up}_PRECISION "int8"', h2)
    if f'{up}_PRECISION "int8"' not in h2 or "precision fp32" in h2:
        raise CodegenError("int8 C: the header facts changed shape (update ltc_edge/codegen/c_int.py)")
    # the float facts (state bounds) are left out of an integer-only build, like the float API
    h2 = "\n".join(f"#ifndef {up}_INTEGER_ONLY\n{line}\n#endif" if "float" in line and line.startswith("extern")
                    else line for line in h2.split("\n"))
    return h2, src


def generate(config: dict, raw: dict, *, prefix: str = "ltc_model", fixed_dt: float | None = None,
             calib_x=None) -> dict:
    """Integer-only C sources for an LTC: {"files": {name: text}, "info": {...}} (numpy only).
    fixed_dt None: the model's default dt (training median dt)."""
    from ltc_edge import __version__
    from ltc_edge.nn.schema import default_dt

    prefix = c_identifier(prefix)
    dt = float(default_dt(config, fixed_dt))
    if not (dt > 0 and np.isfinite(dt)):
        raise CodegenError(f"fixed_dt must be finite and > 0, got {dt}")
    q = quantize(config, raw, dt, calib_x)
    consts, nbytes, idx = _constants(q)
    up = prefix.upper()
    facts_h, facts_c = int_facts(config, raw, prefix, dt)
    summary = (f"{q['n']} units, {config['input_size']} inputs, {config['output_size']} outputs, "
               f"{len(q['R']['pre'])} + {len(q['S']['pre'])} sensory synapses")
    common = dict(PREFIX=prefix, UPPER=up, VERSION=__version__, SUMMARY=summary, SV=q["sv"])
    header = Template((TEMPLATES / "ltc_int.h.in").read_text()).substitute(
        common, INPUTS=config["input_size"], OUTPUTS=config["output_size"], STATE_SIZE=q["n"],
        DEFAULT_DT=flit(dt), IN_BITS=c_init(q["xf"]), OUT_BITS=c_init(q["yf"]), FACTS=facts_h, KIND="ltc",
        STATE_FORMAT=f"#define {up}_STATE_FRAC_BITS {q['sv']} /* state h[i] = v_i * 2^{q['sv']} */",
        STATE_NOTE=f"Q{q['sv']} neuron potentials")
    source = Template((TEMPLATES / "ltc_int.c.in").read_text()).substitute(
        common, HEADER=f"{prefix}.h", N=q["n"], MOTOR=q["motor"],
        LUT_SCALE=1 << LUT_FRAC, IDX=idx, CONSTANTS=consts, FIXED_DT=f"dt = {flit(dt)}",
        S_SHIFT=int(q["S"]["shift"]), R_SHIFT=int(q["R"]["shift"]), UNFOLDS=q["unfolds"], LUT_N=LUT_N,
        IN_SCALE="{" + ", ".join(flit(2.0 ** int(k)) for k in q["xf"]) + "}",
        OUT_UNIT="{" + ", ".join(flit(2.0 ** -int(k)) for k in q["yf"]) + "}",
        V_SCALE=flit(2.0 ** q["sv"]), V_UNIT=flit(2.0 ** -q["sv"]), FACTS_C=facts_c)
    info = {"synapses": int(len(q["R"]["pre"])), "sensory_synapses": int(len(q["S"]["pre"])),
            "weights_bytes": nbytes, "index_type": idx, "sparse": True, "fixed_dt": dt,
            "quantization": {"state_frac_bits": q["sv"], "input_frac_bits": [int(v) for v in q["xf"]],
                             "output_frac_bits": [int(v) for v in q["yf"]], "sigmoid_lut_entries": LUT_N,
                             "weights": "int16 per synapse, per-neuron conductance scale",
                             "integer_only_macro": f"{up}_INTEGER_ONLY",
                             "integer_step": f"{prefix}_step_q"}}
    return {"files": {f"{prefix}.h": header, f"{prefix}.c": source}, "info": info}
