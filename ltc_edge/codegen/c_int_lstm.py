"""Integer-only C for an LSTM and a GRU (precision "int8"), beside the LTC's
(ltc_edge/codegen/c_int.py, whose table, formats and facts it shares). Numpy only.

Scheme: the gate weights of [x, h] in int8 with one scale per gate row (the input
normalisation folded in; a dt input column, fixed at export, folded into the bias); inputs raw,
int16 in per-input formats calibrated like the LTC's; h in Q15; the LSTM's c in int16 Q<cf>, cf
from the range c takes on the calibration data (run through the numpy model; x1.5 headroom,
saturating beyond); int32 sums; each gate's sum requantised as CMSIS-NN does (the high word of
sum x a per-row Q31 multiplier, one shift for all rows, saturated) to an index of the Q15 sigmoid
table (tanh(z) = 2 sigmoid(2z) - 1 from the same table); the readout and de-normalisation one
int16 affine map of h with per-output formats. Each unit's four rows are one block (LSTM: i, f,
g, o; GRU: r, z, and n's input and hidden parts, which share one scale) that the template's
multi-row kernel runs in one pass (the template: templates/int/rnn_int.c.in).
"""

from __future__ import annotations

from string import Template

import numpy as np

from ltc_edge.codegen import c_int
from ltc_edge.codegen.cliterals import CodegenError, c_identifier, flit
from ltc_edge.nn import functional as F


def _gates(W, bias, rows_tanh, lookup, tied=None):
    """int8 rows (one scale s per row; the rows `tied` = (a, b) share theirs), the int32 biases,
    the Q31 multipliers M and the shift SH (one for all rows): a `lookup` row's table index is
    floor(M sum / 2^(32 + SH)), z in table steps (its bias carries half a step: the floor rounds).
    |bias| <= 2^28 and |weight x column| <= 2^22 keep a GRU's n_x + r n_h within int32."""
    s = np.maximum(np.maximum(np.abs(W).max(1) / 127.0, np.abs(bias) / 2.0 ** 28), 1e-30)
    if tied is not None:
        s[tied[0]] = s[tied[1]] = np.maximum(s[tied[0]], s[tied[1]])
    Wq = np.clip(np.round(W / s[:, None]), -127, 127)
    k = np.where(rows_tanh, 64.0, 32.0) * s  # table steps per unit of the sum (tanh rows look up 2z)
    sh = min(31, int(np.floor(np.log2((2.0 ** 31 - 1) / 2.0 ** 32 / k[lookup].max()))))
    if sh < 0:
        raise CodegenError("int8 C: a gate row too large for the fixed-point format")
    mul = np.where(lookup, np.round(k * 2.0 ** (32 + sh)), 0)
    b = np.clip(np.round(bias / s + np.where(lookup, 0.5 / k, 0.0)), -2 ** 28, 2 ** 28)
    return Wq.astype(np.int64), b.astype(np.int64), mul.astype(np.int64), sh


def _fold_inputs(config, Pm, wih, bias, fixed_dt):
    """The input side's weights and bias with a dt column (a constant at a fixed dt) and the input
    normalisation folded in."""
    bias = bias.copy()
    if config.get("dt_input"):
        bias += wih[:, -1] * fixed_dt / float(config["dt_input"]["scale"])
        wih = wih[:, :-1]
    if Pm["input_mean"] is not None:
        std, mean = np.asarray(Pm["input_std"], np.float64), np.asarray(Pm["input_mean"], np.float64)
        bias, wih = bias - wih @ (mean / std), wih / std[None, :]
    return wih, bias


def _rows(config, Pm, fixed_dt):
    """The cell's four blocks of n rows over [x, h], their biases, which rows take tanh, which
    index the table, and the tied pair (GRU: n's hidden part is scaled by r before the table)."""
    g = {k: np.asarray(v, np.float64) for k, v in Pm["cell"].items()}
    n = int(config["cell"]["units"])
    rows_tanh, lookup, tied = np.zeros(4 * n, bool), np.ones(4 * n, bool), None
    if config["cell"]["kind"] == "lstm":  # i, f, g, o
        wih, bias = _fold_inputs(config, Pm, g["weight_ih"], g["bias"], fixed_dt)
        rows_tanh[2 * n:3 * n] = True
        return np.concatenate([wih, g["weight_hh"]], 1), bias, rows_tanh, lookup, tied
    wih, bih = _fold_inputs(config, Pm, g["weight_ih"], g["bias_ih"], fixed_dt)  # r, z, n_x, n_h
    whh, bhh = g["weight_hh"], g["bias_hh"]
    zx, zh = np.zeros_like(wih[2 * n:]), np.zeros((n, n))
    W = np.block([[wih[:2 * n], whh[:2 * n]], [wih[2 * n:], zh], [zx, whh[2 * n:]]])
    rows_tanh[2 * n:], lookup[3 * n:] = True, False
    tied = (np.arange(2 * n, 3 * n), np.arange(3 * n, 4 * n))
    return W, np.concatenate([bih[:2 * n] + bhh[:2 * n], bih[2 * n:], bhh[2 * n:]]), rows_tanh, lookup, tied


def _unit_blocks(Wq, b, mul, n, n_in):
    """Unit j's four gate rows (rows j, n + j, 2n + j, 3n + j) together, the columns of x and of h each padded to an
    even count: WQ [n, pairs, 4, 2] flattened; BQ, MQ [n, 4]."""
    xp, hp = (n_in + 1) // 2, (n + 1) // 2
    cols = np.zeros((4 * n, 2 * (xp + hp)), np.int64)
    cols[:, :n_in], cols[:, 2 * xp:2 * xp + n] = Wq[:, :n_in], Wq[:, n_in:]
    order = (np.arange(4)[None, :] * n + np.arange(n)[:, None]).ravel()  # rows j, n+j, 2n+j, 3n+j
    w = cols[order].reshape(n, 4, xp + hp, 2).transpose(0, 2, 1, 3)
    return w.ravel(), b[order], mul[order]


def _c_range(config, raw, x, dt):
    """Largest |c| over the calibration inputs (numpy model, zero state)."""
    P = F.model_prepare(F.NumpyOps, {k: np.asarray(v, np.float32) for k, v in raw.items()}, config)
    n = int(config["cell"]["units"])
    h, cmax = np.zeros((1, 2 * n), np.float32), 1.0
    for t in range(min(len(x), 2000)):
        _, h = F.model_step(F.NumpyOps, P, np.asarray(x[t:t + 1], np.float32), h, dt, config)
        cmax = max(cmax, float(np.abs(h[0, n:]).max()))
    return cmax


def quantize(config: dict, raw: dict, fixed_dt: float, calib_x) -> dict:
    n, n_in = int(config["cell"]["units"]), int(config["input_size"])
    if n_in + n > 255:
        raise CodegenError(f"int8 C export of an LSTM or a GRU supports inputs + units <= 255, got {n_in} + {n}")
    Pm = F.model_prepare(F.NumpyOps, {k: np.asarray(v, np.float32) for k, v in raw.items()}, config)
    x = np.zeros((1, n_in)) if calib_x is None else np.asarray(calib_x, np.float64).reshape(-1, n_in)
    xf = np.array([c_int.frac_bits(32767, float(b)) for b in np.abs(x).max(0) * 1.25])
    W, bias, rows_tanh, lookup, tied = _rows(config, Pm, fixed_dt)
    W = W * 2.0 ** -np.concatenate([xf, np.full(n, 15)])[None, :]  # per unit of the integer columns
    Wq, b, mul, sh = _gates(W, bias, rows_tanh, lookup, tied)
    cf = 15  # the GRU has no c
    if config["cell"]["kind"] == "lstm":
        cf = c_int.frac_bits(32767, 1.5 * _c_range(config, raw, x, fixed_dt), hi=15)
        if cf < 6:
            raise CodegenError(f"int8 C: the LSTM cell state is too large for int16 (|c| up to {2.0 ** (15 - cf):.3g})")
    WQ, BQ, MQ = _unit_blocks(Wq, b, mul, n, n_in)
    q = {"n": n, "xf": xf, "cf": cf, "WQ": WQ, "BQ": BQ, "MQ": MQ, "SH": sh}
    q.update(_outputs(Pm, n))
    return q


def _outputs(Pm, n):
    M, c0 = np.eye(n), np.zeros(n)
    if Pm["readout_w"] is not None:
        M, c0 = np.asarray(Pm["readout_w"], np.float64), np.asarray(Pm["readout_b"], np.float64)
    if Pm["output_mean"] is not None:
        std = np.asarray(Pm["output_std"], np.float64)
        M, c0 = M * std[:, None], c0 * std + np.asarray(Pm["output_mean"], np.float64)
    bound = np.abs(c0) + np.abs(M).sum(1) + 1e-9  # |h| <= 1
    yf = np.array([c_int.frac_bits(32767, b, hi=24) for b in bound])
    fy = np.array([min(c_int.frac_bits(2.0 ** 29, b, hi=40),
                       15 + c_int.frac_bits(32767, float(np.abs(r).max()) + 1e-12, hi=40)) for b, r in zip(bound, M)])
    if (fy - yf).min() < 1:
        raise CodegenError("int8 C: an output map too large for the fixed-point format")
    om = np.stack([c_int.qround(r, f - 15) for r, f in zip(M, fy)])
    pad = np.zeros((len(om), n + n % 2), np.int64)  # rows of whole pairs of h (the template's HP)
    pad[:, :n] = om
    return {"OM": pad, "OC": np.array([c_int.qround(v, f) for v, f in zip(c0, fy)], np.int64), "osh": fy - yf, "yf": yf}


def _constants(q: dict) -> tuple[str, int, int]:
    """The constants' C, and their bytes in the portable build (int8 weights) and the DSP build
    (the weights as int16 pairs)."""
    C = c_int.IntArrays(1)
    C.add("int16_t", "SIG_LUT", c_int.sigmoid_lut())
    C.add("int32_t", "BQ", q["BQ"])
    C.add("int32_t", "MQ", q["MQ"])
    C.add("int16_t", "OM", q["OM"])
    C.add("int32_t", "OC", q["OC"])
    C.add("uint8_t", "OSH", q["osh"])
    W8, W16 = c_int.IntArrays(1), c_int.IntArrays(1)
    W8.add("int8_t", "WQ", q["WQ"])
    W16.add("int16_t", "WQ", q["WQ"])
    text = "\n".join(C.lines) + "\n#ifdef RNN_DSP\n" + W16.lines[0].replace("int16_t", "wq_t", 1) + \
        "\n#else\n" + W8.lines[0].replace("int8_t", "wq_t", 1) + "\n#endif\n"
    return text, C.bytes + W8.bytes, C.bytes + W16.bytes


def _header(config, q, prefix, dt, common, facts_h) -> str:
    up, n, lstm = prefix.upper(), q["n"], config["cell"]["kind"] == "lstm"
    state = (f"#define {up}_STATE_FRAC_BITS_H 15\n#define {up}_STATE_FRAC_BITS_C {q['cf']}" if lstm
             else f"#define {up}_STATE_FRAC_BITS_H 15")
    return Template((c_int.TEMPLATES / "ltc_int.h.in").read_text()).substitute(
        common, INPUTS=config["input_size"], OUTPUTS=config["output_size"], STATE_SIZE=(2 if lstm else 1) * n,
        DEFAULT_DT=flit(dt), IN_BITS=c_int.c_init(q["xf"]),
        OUT_BITS=c_int.c_init(q["yf"]), FACTS=facts_h, **c_int.integer_only_alias(up), STATE_FORMAT=state,
        STATE_NOTE=f"h (Q15), then c (Q{q['cf']})" if lstm else "h (Q15)")


def generate(config: dict, raw: dict, *, prefix: str = "ltc_model", fixed_dt: float | None = None,
             calib_x=None) -> dict:
    """Integer-only C sources for an LSTM or a GRU: {"files": {name: text}, "info": {...}}."""
    from ltc_edge import __version__
    from ltc_edge.nn.schema import default_dt

    kind = config["cell"]["kind"]
    if kind not in ("lstm", "gru"):
        raise CodegenError(f"the LSTM/GRU int8 generator got a {kind!r}")
    prefix, up = c_identifier(prefix), c_identifier(prefix).upper()
    dt = float(default_dt(config, fixed_dt))
    q = quantize(config, raw, dt, calib_x)
    consts, nbytes, nbytes_dsp = _constants(q)
    n, lstm = q["n"], kind == "lstm"
    facts_h, facts_c = c_int.int_facts(config, raw, prefix, dt)
    common = dict(PREFIX=prefix, UPPER=up, VERSION=__version__, N=n, KIND=kind,
                  SUMMARY=f"{n} units, {config['input_size']} inputs, {config['output_size']} outputs")
    source = Template((c_int.TEMPLATES / "rnn_int.c.in").read_text()).substitute(
        common, HEADER=f"{prefix}.h", LUT_N=c_int.LUT_N, LUT_SCALE=1 << c_int.LUT_FRAC, CF=q["cf"], SH=q["SH"],
        C_SHIFT=q["cf"] - (c_int.LUT_FRAC + 1), CONSTANTS=consts, SATURATE=c_int.saturate("LUT_N", c_int.LUT_N),
        FIXED_DT=f"dt = {flit(dt)}", GRU=int(not lstm),
        ROWS="i, f, g, o" if lstm else "r, z, n's input part n_x, n's hidden part n_h",
        CELL_NOTE=f", c in int16 Q{q['cf']} (from the calibration data's range, saturating), h in Q15" if lstm
        else ", h in Q15", FLOAT_API=c_int.float_api(
            prefix, q, facts_c, to_q="STATE_SCALE[i >= N]", from_q="/ STATE_SCALE[i >= N]",
            state_scale=f"static const float STATE_SCALE[2] = {{32768.0f, {flit(2.0 ** q['cf'])}}}; /* h, c */\n"))
    quant = {"state_frac_bits": 15, **({"cell_frac_bits": q["cf"]} if lstm else {}),
             "input_frac_bits": [int(v) for v in q["xf"]], "output_frac_bits": [int(v) for v in q["yf"]],
             "sigmoid_lut_entries": c_int.LUT_N,
             "weights": "int8 per gate row (one scale per row; int16 pairs in the DSP build)",
             "integer_only_macro": f"{up}_INTEGER_ONLY", "integer_step": f"{prefix}_step_q"}
    info = {"weights_bytes": nbytes, "weights_bytes_dsp": nbytes_dsp, "fixed_dt": dt, "quantization": quant}
    files = {f"{prefix}.h": _header(config, q, prefix, dt, common, facts_h), f"{prefix}.c": source}
    return {"files": files, "info": info}
