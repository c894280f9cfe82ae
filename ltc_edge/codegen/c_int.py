"""Integer-only C for an LTC (precision "int8"): the semi-implicit LTC step in int8/int16/int32
fixed point, numpy-only like ltc_edge/codegen/c.py (whose public helpers it reuses). The
constants are int8 the way CMSIS-NN lays out a layer: int8 values, a scale per output channel
(here per postsynaptic neuron) as a power-of-two shift, int16 only where a value needs it.

Scheme (stated in the generated header and source):
  * dt is fixed at export (cm_t = cm * unfolds / dt becomes a constant);
  * states: int16, one power-of-two format Q<sv> for all neurons, from the LTC state bounds
    (ltc_state_bounds: every potential, leak and reversal potential fits, so nothing
    overflows; the update is a convex mix and stays within the bounds by construction);
  * a synapse is five bytes: pre, sigma, mu, w, w*erev (int8; w uint8). Its gate is
    sigmoid(sigma * (v_pre - mu)): sigma int8 with one power-of-two scale per list (recurrent,
    sensory), mu int8 on an affine grid per list (mu = MZ + q * MS state units; MZ one ARM
    immediate; the unfolds run on w = v - MZ so that the grid's centre costs nothing per synapse);
    a mu beyond where its gate saturates over the whole (calibrated) range is pulled in;
  * inputs: raw units, int16 with a per-input power-of-two format, from the calibration range
    (x1.25) and coarsened where the input map's weight is small, so that every input's mapped
    value slope * x has about the same resolution (within a factor 2); the input map and the
    input normalisation are then folded into the sensory sigma and mu (no per-input constants).
    Gates are exact over the calibrated range (x1.25); beyond it an input with the plain format
    saturates, one with a coarsened format runs on and only gates whose mu lay beyond the
    calibrated range (pulled in) can differ;
  * the sigmoid: a table of 32 words (T[k] - k D[k]) << 16 | D[k], T the Q15 sigmoid over
    [-8, 8] in steps of 1/2, D[k] = T[k+1] - T[k] (0 in the two end intervals), k the interval
    from the centre; linearly interpolated with a 16-bit fraction: T[k] + (D[k] f16 >> 16). The
    table's T[k] - k D[k] lets the Cortex-M4 loop interpolate from t itself, shifted so that its
    low 16 bits are the fraction (k 2^16 + f16: one SMLAWB, no masking); elsewhere the same
    integer as (T[k] - k D[k]) + k D[k] + (D[k] f16 >> 16). Max error 3e-3 like the 512-entry
    table it replaced, flat (within 3.4e-4 of 0 or 1) beyond +-7.5;
  * conductances: per postsynaptic neuron j a scale c_j (free: v' = num / den does not change
    under it) with cm_t + gleak = 2^(k_j - 1) units (k_j >= 1: every denominator is at least one
    unit) and the largest possible denominator <= 30000 units (<= 32767 after rounding:
    checked); w (uint8) and w*erev (int8) per synapse with a per-neuron shift each (mw_j,
    me_j), rounded together so that the reversal potential stays consistent with the rounded w,
    and clipped so that it stays within the neuron's LTC bounds;
  * per neuron one word (cm_t in units, k_j, mw_j, me_j, the recurrent synapse count), the
    sensory synapse count (byte) and vleak (int16 Q<sv>);
  * v' = num / den: one rounding unsigned division (of num + 2^16 den) per neuron and unfold,
    saturated to int16;
  * outputs: raw units, int16 with a per-output format from the output bound the state bounds
    imply; the output map (output affine, readout, de-normalisation) int8 per row with a shift
    per row, its bias int16 in the output's format.
"""

from __future__ import annotations

import math
from pathlib import Path
from string import Template

import numpy as np

from ltc_edge.codegen.c import header_facts
from ltc_edge.codegen.cliterals import CodegenError, c_identifier, flit
from ltc_edge import precision as precisions
from ltc_edge.nn import functional as F

TEMPLATES = Path(__file__).with_name("templates") / "int"
LUT_FRAC = 5          # the LSTM's sigmoid table (c_int_lstm.py): step 1/32 over [-8, 8), 512 Q15 entries
LUT_N = 16 << LUT_FRAC
T_STEP = 1            # the LTC's sigmoid table: step 2^-T_STEP over [-8, 8], linearly interpolated
T_N = 16 << T_STEP    # intervals: T_N table words (an interval's start and rise)
T_BITS = 5            # log2(T_N): the interval index from the centre clamps to T_BITS signed bits (one SSAT)
DEN_UNITS = 30000     # a neuron's largest possible denominator, in its own conductance units (<= 32767
                      # after rounding the w bytes: checked)


def frac_bits(limit: float, bound: float, lo: int = -24, hi: int = 30) -> int:
    """Largest k with bound * 2^k <= limit (clipped to [lo, hi])."""
    if not bound > 0:
        return hi
    return int(max(lo, min(hi, math.floor(math.log2(limit / bound)))))


def qround(a, k, dtype=np.int64):
    return np.round(np.asarray(a, np.float64) * 2.0 ** k).astype(dtype)


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
    if n > 256 or n_in > 256:
        raise CodegenError("int8 C export of an LTC supports up to 256 units and 256 inputs (one-byte indices)")
    vmax = float(max(np.abs(bounds[0]).max(), np.abs(bounds[1]).max(), 1e-6))
    sv = frac_bits(32767, vmax, hi=15)
    adj = np.abs(np.asarray(cell["wiring"]["adjacency"])) > 0
    sadj = np.abs(np.asarray(cell["wiring"]["sensory_adjacency"])) > 0
    q = {"sv": sv, "n": n, "motor": m, "bounds": bounds, "unfolds": int(cell.get("ode_unfolds", 6))}
    q.update(_inputs(Pm, P, calib_x, n_in, sadj.any(1)))
    q.update(_neurons(P, q, adj, sadj, fixed_dt))
    vq = (np.floor(bounds[0].min() * 2.0 ** sv), np.ceil(bounds[1].max() * 2.0 ** sv))
    for tag, mask, pre_, slope, offset, vf, vlim in (
            ("R", adj, "", np.ones(n), np.zeros(n), np.full(n, sv), (np.full(n, vq[0]), np.full(n, vq[1]))),
            ("S", sadj, "sensory_", q["in_slope"], q["in_offset"], q["xf"], (-q["xq_max"], q["xq_max"]))):
        q[tag] = _synapse_list(P, q, mask, pre_, slope, offset, vf, vlim)
    den = q["cmtgl"] + sum(np.bincount(np.repeat(np.arange(n), np.diff(q[t]["row"])), q[t]["W"], n) for t in "RS") \
        * 2.0 ** q["mw"]
    if den.max(initial=0) > 32767:  # the step's unsigned division and its Q15 sums need this
        raise CodegenError("int8 C: a neuron's denominator out of range after rounding (bug in the quantiser)")
    q.update(_outputs(config, Pm, P, q))
    return q


def _inputs(Pm, P, calib_x, n_in, used):
    """Per-input formats from the calibration range, coarsened so that slope * 2^-xf (the mapped
    input's step) is within a factor 2 of the coarsest input's: one sigma scale then fits all."""
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
    dead = used & (np.abs(slope) * 2.0 ** 24 < 1e-30)
    if dead.any():
        raise CodegenError(f"int8 C: input {int(np.argmax(dead))} has input weight 0 but sensory synapses")
    step = np.abs(slope) * 2.0 ** -xf.astype(np.float64)
    if used.any():
        top = float(step[used].max())
        k = np.floor(np.log2(top / np.where(used, step, top)) + 1e-9).astype(int)
        xf = np.where(used, np.maximum(xf - k, -24), xf)
    xq_max = np.minimum(np.round(xmax * 2.0 ** xf.astype(np.float64)), 32767.0)
    return {"xf": xf.astype(int), "in_slope": slope, "in_offset": offset, "calib_xmax": xmax, "xq_max": xq_max}


def _neurons(P, q, adj, sadj, fixed_dt):
    """Per-neuron scale c_j (cm_t + gleak = 2^(k-1) units, largest denominator <= DEN_UNITS),
    cm_t in units, vleak in Q<sv>, and the shifts of the w and w*erev bytes."""
    sv, n = q["sv"], q["n"]
    cm_t = P["cm"] * q["unfolds"] / float(fixed_dt)
    base = cm_t + P["gleak"]
    w_all = np.concatenate([P["w"] * adj, P["sensory_w"] * sadj], 0)
    we_all = np.concatenate([P["w_erev"] * adj, P["sensory_w_erev"] * sadj], 0)
    total = base + w_all.sum(0)
    c = DEN_UNITS / np.where(total > 0, total, 1.0)
    # k >= 1: a cm_t + gleak under one unit (1/DEN_UNITS of the largest denominator) is one unit,
    # so that every denominator is at least one unit
    k = (np.floor(np.log2(np.maximum(base * c, 1.0))) + 1).astype(int)
    c = np.where(base * c >= 1.0, 2.0 ** (k - 1) / np.where(base > 0, base, 1.0), c)
    cmtgl = 2 ** (k - 1)
    cmt = np.clip(np.round(cm_t * c), 0, cmtgl).astype(np.int64)
    gl = np.where(P["gleak"] > 0, P["gleak"], 1.0)
    vleak = np.where(P["gleak"] > 0, P["gleak_vleak"] / gl, 0.0)
    lo, hi = q["bounds"]
    vl = np.clip(np.round(vleak * 2.0 ** sv), np.ceil(lo * 2.0 ** sv), np.floor(hi * 2.0 ** sv))
    top_w = (w_all * c[None, :]).max(0)
    top_we = (np.abs(we_all) * c[None, :]).max(0) * 2.0 ** (sv - 15)
    mw = np.array([max(0, math.ceil(math.log2(t / 255.0))) if t > 255 else 0 for t in top_w])
    me = np.array([max(0, math.ceil(math.log2(t / 127.0))) if t > 127 else 0 for t in top_we])
    if mw.max(initial=0) > 15 or me.max(initial=0) > 15:
        raise CodegenError("int8 C: a conductance too large for the fixed-point format (bug in the quantiser)")
    return {"c": c, "K": k, "cmtgl": cmtgl, "CMT": cmt, "VL": vl.astype(np.int64), "mw": mw, "me": me}


def _synapse_list(P, q, mask, pre_, slope, offset, vf, vlim):
    """One list (recurrent or sensory) in CSR order by postsynaptic neuron: the five bytes of each
    synapse and the list's gate formats. z = sigma * (slope * v * 2^-vf + offset - mu) is
    a * (v - m) per unit of the integer v; z * 2^af = A * (v - MZ - Q * MS)."""
    row, pre, post = _csr(mask)
    if len(row) > 1 and np.diff(row).max() > 255:
        raise CodegenError("int8 C: a neuron with more than 255 synapses in one list")
    sig, mu = P[pre_ + "sigma"][pre, post], P[pre_ + "mu"][pre, post]
    sl = slope[pre] * 2.0 ** -np.asarray(vf, np.float64)[pre]
    a = sig * sl
    m = (mu - offset[pre]) / np.where(sl != 0, sl, 1.0)
    A, Q, af, ms, mz = _gate_grid(a, m, np.asarray(vlim[0], np.float64)[pre], np.asarray(vlim[1], np.float64)[pre])
    W, WE = _conductance_bytes(P[pre_ + "w"][pre, post], P[pre_ + "w_erev"][pre, post], q, post)
    ish = af - T_STEP  # z * 2^af >> ish: table intervals; the next 16 bits below: the fraction
    frac = (f"(((uint32_t)(t) >> {ish - 16}) & 0xffffu)" if ish >= 16
            else f"(((uint32_t)(t) << {16 - ish}) & 0xffffu)")
    # the Cortex-M4 loop: x0 = t shifted to k 2^16 + the fraction (one instruction, none at ish 16)
    frac_asm = ('""' if ish == 16 else f'"asr    %[x0], %[x0], #{ish - 16}\\n\\t"' if ish > 16
                else f'"lsl    %[x0], %[x0], #{16 - ish}\\n\\t"')
    dmax = 32768 + abs(mz) + 127 * ms + float(np.abs(np.concatenate([vlim[0], vlim[1]])).max(initial=0))
    if 127 * dmax >= 2 ** 31:
        raise CodegenError("int8 C: a synapse's mu too far from the states for the fixed-point format")
    rec = np.stack([pre, A, Q, W, WE], 1).astype(np.int64) & 0xFF
    return {"row": row, "pre": pre, "bytes": rec.ravel(), "af": af, "ms": ms, "mz": mz, "ish": ish, "frac": frac, "frac_asm": frac_asm, "A": A, "Q": Q, "W": W.astype(np.int64), "WE": WE.astype(np.int64)}


def _conductance_bytes(w, we, q, post):
    """w (uint8, W * 2^mw = w * c) and w*erev (int8, WE * 2^(me + 15 - sv) = w*erev * c) of each
    synapse, rounded together: of the four floor/ceil pairs the one with the least squared error
    of W * erev (the numerator WE / unit against the denominator's W; a neuron's steady state is
    a w-weighted mean of its erevs) plus that of W; the reversal potential WE / (W * unit)
    clipped to the neuron's LTC bounds (states stay within them)."""
    c, mw, me = q["c"][post], q["mw"][post], q["me"][post]
    wx = w * c * 2.0 ** -mw
    unit = 2.0 ** (mw + q["sv"] - 15 - me)  # WE per volt per unit of W
    erev = np.where(w > 0, we / np.where(w > 0, w, 1.0), 0.0)
    lo, hi = q["bounds"][0][post], q["bounds"][1][post]
    best, score = None, None
    for W in (np.clip(np.floor(wx), 0, 255), np.clip(np.ceil(wx), 0, 255)):
        wex = np.clip(erev, lo, hi) * W * unit
        for WE in (np.floor(wex), np.ceil(wex)):
            WE = np.clip(np.clip(WE, np.ceil(lo * W * unit - 1e-9), np.floor(hi * W * unit + 1e-9)), -127, 127)
            sc = (WE / unit - erev * W) ** 2 + 1.0 * (W - wx) ** 2
            take = np.ones(W.shape, bool) if score is None else sc < score
            best = (W, WE) if best is None else (np.where(take, W, best[0]), np.where(take, WE, best[1]))
            score = sc if score is None else np.where(take, sc, score)
    return best[0].astype(np.int64), best[1].astype(np.int64)


def _gate_grid(a, m, vlo, vhi):
    """int8 sigma (one power-of-two scale af) and mu (affine grid MZ + Q * MS) of a list. A centre
    beyond where the gate saturates for every v in [vlo, vhi] is pulled in (the gate is unchanged)."""
    amax = float(np.abs(a).max()) if a.size else 1.0
    af = frac_bits(128, amax, hi=24)  # a largest |sigma| at a power of two: 128 -> 127 (1/128)
    if af < T_STEP + 4:
        raise CodegenError(f"int8 C: a synapse's sigmoid is too steep for the fixed-point format "
                           f"(|sigma * scale| up to {amax:.3g})")
    A = np.clip(qround(a, af), -127, 127)
    reach = 8.0 * 2.0 ** af / np.maximum(np.abs(A), 1)
    m = np.where(A == 0, (vlo + vhi) / 2, np.clip(m, vlo - reach, vhi + reach))
    lo, hi = (float(m.min()), float(m.max())) if m.size else (0.0, 0.0)
    mz = _immediate(round((hi + lo) / 2))
    ms = max(1, int(math.ceil(max(hi - mz, mz - lo) / 127.0)))
    Q = np.clip(np.round((m - mz) / ms), -127, 127)
    return A.astype(np.int64), Q.astype(np.int64), af, ms, mz


def _immediate(v: int) -> int:
    """v rounded to 8 significant bits: one ARM/Thumb-2 immediate operand."""
    e = max(0, abs(int(v)).bit_length() - 8)
    return int(round(v / 2.0 ** e)) << e


def _outputs(config, Pm, P, q):
    """y = M v[:motor] + c in raw output units, as yq = ((OM v_q) >> OSH) + OC: OM int8 per row
    (a power-of-two scale per row), OC int16 in the output's format."""
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
    fy = np.array([q["sv"] + frac_bits(127, float(np.abs(r).max()) + 1e-12, hi=40) for r in M])
    osh = fy - yf
    if osh.min() < 0 or osh.max() > 30:
        raise CodegenError("int8 C: an output map out of range for the fixed-point format")
    return {"OM": np.stack([np.clip(qround(r, f - q["sv"]), -127, 127) for r, f in zip(M, fy)]),
            "OC": np.clip(np.array([qround(v, f) for v, f in zip(c0, yf)], np.int64), -32768, 32767),
            "osh": osh, "yf": yf, "out_bound": bound}


# --------------------------------------------------------------------------------------
# C source


_CTYPES = {"int8_t": 1, "uint8_t": 1, "uint16_t": 2, "int16_t": 2, "int32_t": 4, "uint32_t": 4, "idx_t": None}


class IntArrays:
    def __init__(self, idx_bytes: int):
        self.lines, self.bytes, self.idx_bytes, self.groups = [], 0, idx_bytes, {}

    def add(self, ctype: str, name: str, values, group: str = "weights") -> None:
        a = np.asarray(values).astype(np.int64).ravel()
        lo, hi = {"int8_t": (-127, 127), "uint8_t": (0, 255), "uint16_t": (0, 65535), "int16_t": (-32768, 32767),
                  "int32_t": (-2 ** 31 + 1, 2 ** 31 - 1), "uint32_t": (0, 2 ** 32 - 1), "idx_t": (0, 65535)}[ctype]
        if a.size and (a.min() < lo or a.max() > hi):
            raise CodegenError(f"int8 C: constant {name} out of {ctype} range (bug in the quantiser)")
        items = [str(int(v)) + ("u" if ctype == "uint32_t" else "") for v in a] or ["0"]
        size = (_CTYPES[ctype] or self.idx_bytes) * len(items)
        self.bytes += size
        self.groups[group] = self.groups.get(group, 0) + size
        rows = [",".join(items[i:i + 16]) for i in range(0, len(items), 16)]
        self.lines.append(f"static const {ctype} {name}[{len(items)}] = {{\n    " + ",\n    ".join(rows) + "};")


def sigmoid_lut() -> np.ndarray:
    """The LSTM's table: 512 Q15 entries, step 1/32 over [-8, 8)."""
    k = (np.arange(LUT_N) - LUT_N // 2) / float(1 << LUT_FRAC)
    return np.round(32768.0 / (1.0 + np.exp(-k))).astype(np.int64)


def sigmoid_table() -> np.ndarray:
    """The LTC's table: T_N words, (T[k] - k D[k]) << 16 | D[k] with T[k] the Q15 sigmoid (at most
    32767) at k / 2^T_STEP (k = -T_N/2..T_N/2-1 from the centre), D[k] = T[k+1] - T[k], 0 in the
    end intervals (a clamped index then gives T[k] whatever the fraction): one load gives an
    interval's offset start and rise (see the module doc)."""
    k = np.arange(T_N + 1) / float(1 << T_STEP) - 8.0
    t = np.minimum(np.round(32768.0 / (1.0 + np.exp(-k))), 32767).astype(np.int64)
    d = np.diff(t)
    d[[0, -1]] = 0
    top = t[:-1] - (np.arange(T_N) - T_N // 2) * d
    if top.min() < 0 or top.max() > 32767:
        raise CodegenError("int8 C: sigmoid table out of range (bug)")
    return (top << 16) | d


def om_layout(om) -> np.ndarray:
    """The output map's rows padded with zeros to a multiple of 4 (OM_ROW), each group of four
    stored in the order 0, 2, 1, 3: SXTB16 of the group's word, and of the word >> 8, then
    gives the int16 pairs (0, 1) and (2, 3) for two SMLADs (the template's OM_AT)."""
    om = np.asarray(om, np.int64)
    row = -(-om.shape[1] // 4) * 4
    pad = np.zeros((om.shape[0], row), np.int64)
    pad[:, :om.shape[1]] = om
    return pad.reshape(om.shape[0], -1, 4)[:, :, [0, 2, 1, 3]].reshape(om.shape[0], row)


def _constants(q: dict) -> tuple[str, dict]:
    C = IntArrays(1)
    C.add("uint32_t", "SIG_T", sigmoid_table(), "tables")
    for tag in ("S", "R"):
        C.add("uint8_t", f"{tag}_SYN", q[tag]["bytes"], "synapses")
    sc, rc = np.diff(q["S"]["row"]), np.diff(q["R"]["row"])
    if q["mw"].max(initial=0) > 7 or q["CMT"].max(initial=0) > 32767:
        raise CodegenError("int8 C: a neuron's constants out of range (bug in the quantiser)")
    short = rc.max(initial=0) < 64  # the recurrent count fits the neuron word
    word = (q["CMT"] | (q["K"] << 15) | (q["mw"] << 19) | (q["me"] << 22) | ((rc if short else 0) << 26))
    C.add("uint32_t", "NRN", word, "neurons")
    C.add("uint8_t", "S_COUNT", sc, "neurons")
    counts = "#define R_COUNT(x, j) ((x) >> 26)"
    if not short:
        C.add("uint8_t", "R_COUNTS", rc, "neurons")
        counts = "#define R_COUNT(x, j) R_COUNTS[j]"
    C.add("int16_t", "VLEAK", q["VL"], "neurons")
    C.add("int8_t", "OM", om_layout(q["OM"]), "outputs")
    C.add("int16_t", "OC", q["OC"], "outputs")
    C.add("uint8_t", "OSH", q["osh"], "outputs")
    return "\n".join(C.lines) + "\n" + counts + "\n", {"total": C.bytes, **C.groups}


def c_init(values) -> str:
    return "{" + ", ".join(str(int(v)) for v in values) + "}"


DOCUMENTED_INTEGER_ONLY = "LTC_MODEL_INTEGER_ONLY"  # the documented switch (docs: quantisation, int8 C): selects the integer-only build whatever the prefix


def integer_only_alias(up: str) -> dict:
    """Header template fields: -DLTC_MODEL_INTEGER_ONLY also selects the integer-only build of a
    file with another prefix (whose own switch is <UPPER>_INTEGER_ONLY), so that the documented
    flag never silently builds the float code."""
    own = f"{up}_INTEGER_ONLY"
    if own == DOCUMENTED_INTEGER_ONLY:
        return {"ALIAS_NOTE": "", "INTEGER_ONLY_ALIAS": ""}
    return {"ALIAS_NOTE": f"; or -D{own}, this file's own",
            "INTEGER_ONLY_ALIAS": (f"\n/* the documented switch selects this file's integer-only build too */\n"
                                   f"#if defined({DOCUMENTED_INTEGER_ONLY}) && !defined({own})\n"
                                   f"#define {own} 1\n#endif\n")}


def float_api(prefix: str, q: dict, facts_c: str, *, to_q: str, from_q: str, state_scale: str = "") -> str:
    """The float API of an integer-only step (templates/int/float_api.c.in, one fragment for the LTC
    and the LSTM/GRU templates): inputs quantised by 2^input_frac_bits, outputs dequantised, the
    state h[i] quantised as `h * to_q`, dequantised as `(float)h_q from_q`; `state_scale`: the
    table to_q / from_q read (with its newline), if any."""
    return Template((TEMPLATES / "float_api.c.in").read_text()).substitute(
        PREFIX=prefix, UPPER=prefix.upper(), STATE_SCALE_DECL=state_scale, STATE_TO_Q=to_q, STATE_FROM_Q=from_q,
        IN_SCALE="{" + ", ".join(flit(2.0 ** int(k)) for k in q["xf"]) + "}",
        OUT_UNIT="{" + ", ".join(flit(2.0 ** -int(k)) for k in q["yf"]) + "}", FACTS_C=facts_c).removesuffix("\n")


def saturate(table: str, table_n: int) -> str:
    """sat16 and table_index for an integer step (templates/int/saturate.c.in, one fragment for the
    LTC and the LSTM/GRU templates): `table` the C macro of the table's entry count table_n. The
    index is one SSAT only where that is exactly the clamp to -table_n/2..table_n/2-1 (table_n a
    power of two, SSAT to log2(table_n) bits); otherwise the portable clamp_ on every core."""
    bits = table_n.bit_length() - 1
    clamp = f"clamp_((i), -{table} / 2, {table} / 2 - 1)"
    exact = table_n == 1 << bits and 1 <= bits <= 32
    return Template((TEMPLATES / "saturate.c.in").read_text()).substitute(
        TABLE_N=table, CLAMP_INDEX=clamp, SAT_INDEX=f"((int32_t)__ssat((i), {bits}))" if exact else clamp
    ).removesuffix("\n")


def int_facts(config, raw, prefix, fixed_dt) -> tuple[str, str]:
    """c.header_facts for the integer step (its precision line and macro)."""
    h2, src = header_facts(config, raw, prefix, fixed_dt, precision=precisions.INT8)
    up = prefix.upper()
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
    consts, nbytes = _constants(q)
    up = prefix.upper()
    facts_h, facts_c = int_facts(config, raw, prefix, dt)
    summary = (f"{q['n']} units, {config['input_size']} inputs, {config['output_size']} outputs, "
               f"{len(q['R']['pre'])} + {len(q['S']['pre'])} sensory synapses")
    common = dict(PREFIX=prefix, UPPER=up, VERSION=__version__, SUMMARY=summary, SV=q["sv"])
    header = Template((TEMPLATES / "ltc_int.h.in").read_text()).substitute(
        common, INPUTS=config["input_size"], OUTPUTS=config["output_size"], STATE_SIZE=q["n"],
        DEFAULT_DT=flit(dt), IN_BITS=c_init(q["xf"]), OUT_BITS=c_init(q["yf"]), FACTS=facts_h, KIND="ltc",
        **integer_only_alias(up),
        STATE_FORMAT=f"#define {up}_STATE_FRAC_BITS {q['sv']} /* state h[i] = v_i * 2^{q['sv']} */",
        STATE_NOTE=f"Q{q['sv']} neuron potentials")
    lists = {f"{t}_{k.upper()}": q[t][k] for t in ("R", "S") for k in ("ms", "mz", "ish", "frac", "frac_asm")}
    mz = q["R"]["mz"]  # wn[j] = ... - R_MZ in the Cortex-M4 unfold: an ARM immediate (see _immediate)
    lists["R_MZ_ASM"] = f'"{"sub" if mz >= 0 else "add"}    %[an], %[an], #{abs(mz)}\\n\\t"'
    r_last = int(np.flatnonzero(np.diff(q["R"]["row"])).max(initial=-1)) + 1
    lists.update(W_OFF=4 * q["n"], W_OFF4=4 * q["n"] - 4, C_BYTES=4 * (q["n"] - r_last), R_LAST=r_last)
    source = Template((TEMPLATES / "ltc_int.c.in").read_text()).substitute(
        {**common, **lists}, HEADER=f"{prefix}.h", N=q["n"], MOTOR=q["motor"], T_N=T_N, T_BITS=T_BITS,
        T_SCALE=1 << T_STEP, CONSTANTS=consts, SATURATE=saturate("T_N", T_N), FIXED_DT=f"dt = {flit(dt)}",
        UNFOLDS=q["unfolds"],
        FLOAT_API=float_api(prefix, q, facts_c, to_q=flit(2.0 ** q["sv"]), from_q=f"* {flit(2.0 ** -q['sv'])}"))
    info = {"synapses": int(len(q["R"]["pre"])), "sensory_synapses": int(len(q["S"]["pre"])),
            "weights_bytes": nbytes["total"], "weights_bytes_by_kind": {k: v for k, v in nbytes.items() if k != "total"},
            "index_type": "uint8_t", "sparse": True, "fixed_dt": dt,
            "quantization": {"state_frac_bits": q["sv"], "input_frac_bits": [int(v) for v in q["xf"]],
                             "output_frac_bits": [int(v) for v in q["yf"]], "sigmoid_lut_entries": T_N,
                             "weights": "int8 per synapse (sigma, mu, w, w*erev), per-neuron conductance scale "
                                        "and shifts",
                             "integer_only_macro": f"{up}_INTEGER_ONLY",
                             "integer_step": f"{prefix}_step_q"}}
    return {"files": {f"{prefix}.h": header, f"{prefix}.c": source}, "info": info}
