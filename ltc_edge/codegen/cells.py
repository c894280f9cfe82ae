"""The fp32 cells of the generated C (one generator per cell kind, CELL_GENERATORS): each fills
a Consts table and returns the cell's step code from ltc_edge/codegen/templates/, mirroring
ltc_edge/nn/functional.py (pinned by tests/test_c_codegen.py). The LTC, LSTM, GRU and unwired
CfC also get an FPv4 step (Thumb-2 assembly) behind `#if FPV4_TEST`, the portable step after
`#else`.
"""

from __future__ import annotations

import numpy as np

from ltc_edge.codegen.cliterals import CodegenError, Consts, as_int, csr, flit, plain_name, template
from ltc_edge.nn import functional as F


def _solver_code(method: str, unfolds: int, n: int) -> str:
    """The explicit solvers' C loop (solver.c.in); the semi-implicit update lives in the LTC cell."""
    unfolds, n = as_int(unfolds, "ode_unfolds"), as_int(n, "units")
    explicit = [k for k, s in F.SOLVERS.items() if s.step is not None and "c" in s.backends]
    if method not in explicit:
        raise CodegenError(f"C export runs the explicit solvers {', '.join(explicit)} here, not {method!r}")
    return template("solver.c.in").substitute(METHOD=method, UNFOLDS=unfolds, N=n, RK4=int(method == "rk4"))


# --------------------------------------------------------------------------------------
# cells


UNROLL_MODES = ("auto", "on", "off")
UNROLL_MAX_SYNAPSES = 512  # "auto" unrolls an LTC whose recurrent and sensory lists each have <= this many
_PAD = 8                   # synapse lists and neuron vectors are padded to a multiple of this (SIMD width)
_LOG2E = 1.4426950408889634


def _pad(n: int) -> int:
    return max(_PAD, -(-n // _PAD) * _PAD)


def _ltc_lists(C: Consts, P: dict, cfg: dict, sparse: bool, padded: bool) -> dict:
    """Synapse lists by postsynaptic neuron: the gate constants a = -sigma*log2(e) (folded at
    export time) and mu, w, w*erev (zero-padded when `padded`); the CSR rows and presynaptic
    indices. Returns {tag: (row_ptr, pre)}. The gate is 1/(1 + 2^(a*(v - mu))): a - mu first
    keeps the float32 error at numpy's (a folded a*v + b loses digits to cancellation)."""
    adj = np.abs(np.asarray(cfg["wiring"]["adjacency"])) > 0
    sadj = np.abs(np.asarray(cfg["wiring"]["sensory_adjacency"])) > 0
    if not sparse:  # the same model, every pair visited (masked weights are 0)
        adj, sadj = np.ones_like(adj), np.ones_like(sadj)
    lists, vals = {}, {}
    for tag, mask, pre in (("R", adj, ""), ("S", sadj, "sensory_")):
        row, col, post = csr(mask.T)  # rows = post, cols = pre
        sigma = np.asarray(P[pre + "sigma"], np.float64)[col, post]
        mu = np.asarray(P[pre + "mu"], np.float64)[col, post]
        values = {"A": -sigma * _LOG2E, "MU": mu,
                  "W": np.asarray(P[pre + "w"])[col, post], "WE": np.asarray(P[pre + "w_erev"])[col, post]}
        size = _pad(len(col)) if padded else len(col)
        for name, val in values.items():
            C.floats(f"{tag}_{name}", np.pad(np.asarray(val, np.float64), (0, size - len(col))))
        if not padded:
            C.ints(f"{tag}_ROW", row)
            C.ints(f"{tag}_PRE", col)
        lists[tag], vals[tag] = (row, col), values
    return lists, vals


def _io_maps(C: Consts, P: dict) -> tuple[str, str]:
    imap, omap = "x_in[i]", "v[i]"
    if P.get("input_w") is not None:
        imap += " * " + C.floats("IN_W", P["input_w"]) + "[i]"
    if P.get("input_b") is not None:
        imap += " + " + C.floats("IN_B", P["input_b"]) + "[i]"
    if P.get("output_w") is not None:
        omap += " * " + C.floats("OUT_W", P["output_w"]) + "[i]"
    if P.get("output_b") is not None:
        omap += " + " + C.floats("OUT_B", P["output_b"]) + "[i]"
    return imap, omap


def _ltc_unroll(cfg: dict, sparse: bool, unroll: str) -> bool:
    if unroll not in UNROLL_MODES:
        raise CodegenError(f"unroll must be one of {', '.join(UNROLL_MODES)}, got {unroll!r}")
    if cfg.get("solver", "semi_implicit") != "semi_implicit" or unroll == "off":
        return False  # the explicit solvers keep the loop form
    if unroll == "on":
        return True
    n, n_in = as_int(cfg["units"], "units"), as_int(cfg["input_size"], "input_size")
    if not sparse:
        return max(n * n, n_in * n) <= UNROLL_MAX_SYNAPSES
    adj, sadj = (int(np.count_nonzero(np.asarray(cfg["wiring"][k]))) for k in ("adjacency", "sensory_adjacency"))
    return max(adj, sadj) <= UNROLL_MAX_SYNAPSES


def _sums(out: str, base: str, row, g: str, n: int, indent: str) -> str:
    """Straight-line `out[j] = base[j] + (g[k0] + g[k1] + ...)` for each neuron j (its CSR row)."""
    lines = []
    for j in range(n):
        terms = " + ".join(f"{g}[{k}]" for k in range(row[j], row[j + 1]))
        lines.append(f"{indent}{out}[{j}] = {base}[{j}]" + (f" + ({terms});" if terms else ";"))
    return "\n".join(lines)


def _gather(dst: str, src: str, pre, size: int, indent: str) -> str:
    return "\n".join([f"{indent}{dst}[{k}] = {src}[{int(p)}];" for k, p in enumerate(pre)]
                     + [f"{indent}{dst}[{k}] = 0.0f;" for k in range(len(pre), size)])


SAFE_T = 120.0  # the bounded gates' |a*(v - mu)| limit: exp2_bounded_ is exact to |t| <= 126


def _safe_ranges(P: dict, cfg: dict, lists, bounds) -> tuple[np.ndarray, np.ndarray] | None:
    """Per neuron, the state range in which every recurrent gate it drives has |a*(v - mu)| <=
    SAFE_T, or None when some range does not hold the neuron's LTC bounds (`bounds`: lo, hi or
    None) and the reset state 0, with a margin of 1 (the gates then keep exp2_'s clamp). Clamping the gates' view of the state to it changes
    nothing for a state the model can reach, and keeps exp2_bounded_ defined for any other."""
    n = as_int(cfg["units"], "units")
    row, pre = lists["R"]
    post = np.repeat(np.arange(n), np.diff(row))
    sigma = np.asarray(P["sigma"], np.float64)[pre, post]
    mu = np.asarray(P["mu"], np.float64)[pre, post]
    reach = SAFE_T / (np.abs(sigma) * _LOG2E + 1e-30)
    lo, hi = np.full(n, -3.0e38), np.full(n, 3.0e38)
    np.maximum.at(lo, pre, mu - reach)
    np.minimum.at(hi, pre, mu + reach)
    if bounds is None:
        return None
    need_lo, need_hi = bounds[0] - 1.0, bounds[1] + 1.0  # F.ltc_state_bounds holds the reset state 0
    return (lo, hi) if bool(np.all(lo <= need_lo) and np.all(hi >= need_hi)) else None


def _ltc_unrolled_code(lists, subst: dict, safe=None) -> str:
    n = subst["N"]
    (rrow, rpre), (srow, spre) = lists["R"], lists["S"]
    nrp, nsp, npad = _pad(len(rpre)), _pad(len(spre)), _pad(n)
    sens = (_sums("bn", "GLEAK_VLEAK", srow, "gwe", n, "    ") + "\n"
            + _sums("bd", "GLEAK", srow, "gw", n, "    "))
    pads = [f"    bn[{j}] = bd[{j}] = vv[{j}] = num[{j}] = den[{j}] = 0.0f;" for j in range(n, npad)]
    pads += [f"    num[{j}] = den[{j}] = 0.0f;" for j in range(n) if rrow[j] == rrow[j + 1]]
    pads += [f"    s[{k}] = 0.0f;" for k in range(len(rpre), nrp)]
    busy = [j for j in range(n) if rrow[j] < rrow[j + 1]]
    sums = "\n".join(
        f"        num[{j}] = {' + '.join(f'gwe[{k}]' for k in range(rrow[j], rrow[j + 1]))};\n"
        f"        den[{j}] = {' + '.join(f'gw[{k}]' for k in range(rrow[j], rrow[j + 1]))};" for j in busy)
    return template("cell_ltc_unrolled.c.in").substitute(
        subst, NG=max(nrp, nsp), NP=npad, NRP=nrp, NSP=nsp, **_bounded_parts(safe, n, npad),
        SENSORY_GATHER=_gather("s", "x", spre, nsp, "    "), SENSORY_SUMS=sens, PAD_INIT="\n".join(pads),
        GATHER=_gather("s", "vv" if safe is None else "vc", rpre, len(rpre), "        "), SUMS=sums)


def _safe_loop(idx: str, src: str, count: int, indent: str) -> str:
    """`vc[idx] = safe_(src[idx], idx)` over count states: the gates' clamped view."""
    return f"{indent}for ({idx} = 0; {idx} < {count}; ++{idx})\n{indent}    vc[{idx}] = safe_({src}[{idx}], {idx});\n"


def _bounded_parts(safe, n: int, npad: int, loop: bool = False) -> dict:
    """The LTC step's pieces for bounded recurrent gates: the gates read vc, the states clamped
    by safe_, and skip exp2_'s clamp (no pieces when `safe` is None). `loop`: the loop form (the
    unrolled one clamps its padded vector: that loop vectorises)."""
    if safe is None:
        return dict(GATES_BOUNDED="", GATES_R="gates", SYNAPSES_BOUNDED="", SYN_R="synapses", V_GATES="v",
                    VC_DECL="", VC_INIT="", VC_UPDATE="")
    if loop:
        init, update = _safe_loop("j", "v", n, " " * 8), _safe_loop("j", "v", n, " " * 12)
    else:
        init, update = "\n" + _safe_loop("i", "vv", npad, " " * 4).rstrip("\n"), _safe_loop("i", "vv", npad, " " * 8)
    safe_code = template("safe_state.c.in").template
    return dict(GATES_BOUNDED=safe_code + template("gates_bounded.c.in").template, GATES_R="gates_bounded",
                SYNAPSES_BOUNDED=safe_code + template("synapses_bounded.c.in").template, SYN_R="synapses_bounded",
                V_GATES="vc", VC_DECL=f", vc[{n if loop else npad}]", VC_INIT=init, VC_UPDATE=update)


def _cell_ltc(C: Consts, P: dict, cfg: dict, opts: dict) -> tuple[str, dict]:
    n, m, n_in = (as_int(cfg[k], k) for k in ("units", "motor_size", "input_size"))
    sparse = opts["sparse"]
    unrolled = _ltc_unroll(cfg, sparse, opts["unroll"])
    solver = cfg.get("solver", "semi_implicit")
    fpv4 = solver == "semi_implicit" and max(n, n_in) <= 249  # its byte streams hold counts and indices + 6
    Cp = Consts() if fpv4 else C  # the portable form's own arrays (inside #else when there is an FPv4 form)
    lists, vals = _ltc_lists(Cp, P, cfg, sparse, padded=unrolled)
    C.floats("CM", np.pad(np.asarray(P["cm"], np.float64), (0, _pad(n) - n), constant_values=1.0))
    C.floats("GLEAK", P["gleak"])
    C.floats("GLEAK_VLEAK", P["gleak_vleak"])
    imap, omap = _io_maps(C, P)
    unfolds = as_int(cfg.get("ode_unfolds", 6), "ode_unfolds")
    counts = {tag: len(pre) for tag, (_, pre) in lists.items()}
    subst = dict(N=n, MOTOR=m, IN=n_in, NSYN=counts["R"], NSSYN=counts["S"], UNFOLDS=unfolds,
                 SOLVER=plain_name(solver), EPS=flit(cfg.get("epsilon", 1e-8)), INPUT_MAP=imap, OUTPUT_MAP=omap)
    safe = _safe_ranges(P, cfg, lists, opts.get("bounds")) if solver == "semi_implicit" else None
    if safe is not None:  # the unrolled form's padding neurons (state 0) get the widest range
        pad = (0, _pad(n) - n if unrolled else 0)
        Cp.floats("V_SAFE_LO", np.pad(safe[0], pad, constant_values=-3.0e38))
        Cp.floats("V_SAFE_HI", np.pad(safe[1], pad, constant_values=3.0e38))
    if unrolled:
        code = _ltc_unrolled_code(lists, subst, safe)
    elif solver == "semi_implicit":
        parts = _bounded_parts(safe, n, n, loop=True)
        update = template("ltc_semi_implicit.c.in").substitute(subst, **parts).rstrip("\n")
        code = template("cell_ltc.c.in").substitute(subst, ODE_CODE="", UPDATE_CODE=update,
                                                 SYNAPSES_BOUNDED=parts["SYNAPSES_BOUNDED"])
    else:
        ode = template("ltc_ode.c.in").substitute(subst, SOLVER_CODE=_solver_code(solver, unfolds, n))
        code = template("cell_ltc.c.in").substitute(subst, ODE_CODE=ode, SYNAPSES_BOUNDED="",
                                                 UPDATE_CODE="    ode_solve(v, dt, num_s, den_s);")
    if fpv4:
        code = _fpv4_or_portable(C, _fpv4_code(lists, vals, subst), Cp, code)
    return code, {"synapses": counts["R"], "sensory_synapses": counts["S"], "unrolled": unrolled, "fpv4": fpv4}


# the builds that run the LTC's FPv4 form (cell_ltc_fpv4.c.in): Thumb-2 cores with an FPv4-or-later
# FPU, GCC or clang, optimised (-O0 keeps a frame pointer: too few registers for the assembly);
# -DLTC_EDGE_PORTABLE_C opts out
FPV4_TEST = ("defined(__GNUC__) && defined(__thumb2__) && defined(__ARM_FP) && (__ARM_FP & 4) \\\n"
             "    && defined(__ARM_FEATURE_FMA) && defined(__OPTIMIZE__) && !defined(LTC_EDGE_PORTABLE_C)")


def _fpv4_or_portable(C: Consts, fpv4_code: str, Cp: Consts, portable_code: str) -> str:
    """A cell's two steps behind the one #if: the FPv4 step, else the portable one with its own
    arrays (Cp, counted in C's sizes too)."""
    C.merge_counts(Cp)
    return ("/* optimised GCC/clang builds for Cortex-M4F/M7/M33 compile the FPv4 step; the rest, or any\n"
            " * build with -DLTC_EDGE_PORTABLE_C, the portable step after #else */\n"
            f"#if {FPV4_TEST}\n{fpv4_code}#else\n/* the portable step */\n{Cp.text()}{portable_code}#endif\n")


def _fpv4_code(lists, vals, subst: dict) -> str:
    """The LTC step for FPv4 cores: per list one record {a, b, w, w*erev} per synapse (t = a v + b,
    b = -a mu folded here: one fused multiply-add there) and one byte stream (per neuron: its
    synapse count, then its presynaptic indices)."""
    F4 = Consts()
    for tag in ("S", "R"):
        (row, pre), v = lists[tag], vals[tag]
        a = np.asarray(v["A"], np.float64)
        F4.floats(f"FV_{tag}", np.stack([a, -a * np.asarray(v["MU"], np.float64), v["W"], v["WE"]], axis=1))
        F4.u8(f"FV_{tag}P", [b for j in range(len(row) - 1)
                             for b in (row[j + 1] - row[j], *(pre[row[j]:row[j + 1]] + 6))])
    return template("cell_ltc_fpv4.c.in").substitute(subst, FV_CONSTANTS=F4.text().rstrip("\n"))


def _linear_call(C: Consts, name: str, W, b, x: str, y: str, sparse: bool) -> str:
    W = np.asarray(W, dtype=np.float32)
    n_out, n_in = W.shape
    bname = C.floats(f"{name}_B", b) if b is not None else "0"
    nz = W != 0
    if sparse and nz.mean() < 0.6:
        row, col, rows = csr(nz)
        C.ints(f"{name}_ROW", row)
        C.ints(f"{name}_COL", col)
        C.floats(f"{name}_VAL", W[rows, col])
        return f"sparse({n_out}, {name}_ROW, {name}_COL, {name}_VAL, {bname}, {x}, {y});"
    C.floats(f"{name}_W", W)
    return f"dense({n_out}, {n_in}, {name}_W, {bname}, {x}, {y});"


_ERF = """static inline float erf_(float x) /* Abramowitz & Stegun 7.1.26: absolute error 1.5e-7 */
{
    const float a = abs_(x), t = 1.0f / (1.0f + 0.3275911f * a);
    const float p = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f
                    + t * 1.061405429f))));
    const float r = 1.0f - p * expf_(-a * a);
    return x < 0.0f ? -r : r;
}
"""
ACTIVATIONS_C = {  # the CfC backbone activation (F.ACTIVATIONS), over the math of math.c.in
    "lecun_tanh": "static inline float act_lecun_tanh(float x) { return 1.7159f * tanh_(0.666f * x); }\n",
    "tanh": "static inline float act_tanh(float x) { return tanh_(x); }\n",
    "relu": "static inline float act_relu(float x) { return x > 0.0f ? x : 0.0f; }\n",
    "silu": "static inline float act_silu(float x) { return x * sigmoid_(x); }\n",
    "gelu": _ERF + "static inline float act_gelu(float x) { return 0.5f * x * (1.0f + erf_(x * 0.70710678f)); }\n",
}


def _cell_cfc(C: Consts, P: dict, cfg: dict, opts: dict) -> tuple[str, dict]:
    sparse = opts["sparse"]
    mode = plain_name(cfg.get("mode", "default"))
    act = plain_name(cfg.get("activation", "lecun_tanh"))
    if act not in F.ACTIVATIONS or act not in ACTIVATIONS_C:
        raise CodegenError(f"unknown CfC activation {act!r}")
    fpv4 = _cfc_fpv4(P, cfg, mode, act)
    Cp = C if fpv4 is None else Consts()  # the portable step's arrays: inside its #else when there is an FPv4 step
    blocks, steps, start, maxh = [], [], 0, 1
    layers = F.cfc_layers(cfg)
    for bi, (prefix, n_in, hid, bu, bl, _mask) in enumerate(layers):
        pre = f"B{bi}"
        bb_code, cur, width = "", "z", n_in + hid
        for k in range(bl):
            call = _linear_call(Cp, f"{pre}_BB{k}", P[f"{prefix}backbone{k}_weight"],
                                P[f"{prefix}backbone{k}_bias"], cur, f"bb{k}", sparse)
            bb_code += (f"    float bb{k}[{bu}];\n    {call}\n"
                        f"    for (i = 0; i < {bu}; ++i) bb{k}[i] = act_{act}(bb{k}[i]);\n")
            cur, width = f"bb{k}", bu
        lin = {}
        for head in (["ff1"] if mode == "pure" else ["ff1", "ff2", "time_a", "time_b"]):
            var = {"ff1": "f1", "ff2": "f2", "time_a": "ta", "time_b": "tb"}[head]
            lin[head] = _linear_call(Cp, f"{pre}_{head.upper()}", P[f"{prefix}{head}_weight"],
                                     P[f"{prefix}{head}_bias"], cur, var, sparse)
        if mode == "pure":
            Cp.floats(f"{pre}_A", P[f"{prefix}A"])
            Cp.floats(f"{pre}_W_TAU", P[f"{prefix}w_tau"])
        blocks.append(template("cell_cfc_block.c.in").substitute(
            B=bi, NIN=n_in, H=hid, MODE=mode, BL=bl, BU=bu, PURE=int(mode == "pure"),
            NO_GATE=int(mode == "no_gate"), BACKBONE_CODE=bb_code, FF1_CALL=lin["ff1"],
            FF2_CALL=lin.get("ff2", ""), TA_CALL=lin.get("time_a", ""), TB_CALL=lin.get("time_b", "")))
        src = "x" if bi == 0 else f"h + {start - layers[bi - 1].hidden}"
        steps.append(f"    cfc_block_{bi}({src}, h + {start}, dt, tmp);\n"
                     f"    for (i = 0; i < {hid}; ++i) h[{start} + i] = tmp[i];")
        maxh = max(maxh, hid)
        start += hid
    last_h = layers[-1].hidden
    steps.append(f"    for (i = 0; i < {last_h}; ++i) y[i] = h[{start - last_h} + i];")
    code = template("cell_cfc.c.in").substitute(
        N=as_int(cfg["units"], "units"), NBLOCKS=len(layers),
        WIRING=(plain_name(cfg["wiring"]["kind"]) if cfg.get("wiring") else "no wiring"),
        CELL_OUT=last_h, ACTIVATION=ACTIVATIONS_C[act] if "act_" in "".join(blocks) else "",
        BLOCKS="\n".join(blocks), MAXH=maxh, STEP_CODE="\n".join(steps))
    return (code if fpv4 is None else _fpv4_or_portable(C, fpv4, Cp, code)), {}


_FR_ACT_SCALE = {"lecun_tanh": (0.666, 1.7159), "tanh": (1.0, 1.0)}  # act(x) = b tanh(a x): (a, b)


def _cfc_fpv4(P: dict, cfg: dict, mode: str, act: str) -> str | None:
    """cell_cfc_fpv4.c.in for an unwired CfC in default or no_gate mode whose backbone activation is
    a tanh (lecun_tanh, tanh); None for the rest (they keep the portable step only)."""
    if cfg.get("wiring") or mode not in ("default", "no_gate") or act not in _FR_ACT_SCALE:
        return None
    (prefix, n_in, n, bu, bl, _), = F.cfc_layers(cfg)
    f64 = (lambda k: np.asarray(P[prefix + k], np.float64))
    a, b = _FR_ACT_SCALE[act]
    layers, src, gain = [], [("x", slice(0, n_in)), ("h", slice(n_in, n_in + n))], 1.0
    buffers = backbone = ""
    for k in range(bl):
        w = f64(f"backbone{k}_weight") * gain
        phases = [(name, w[None, :, cols], 0) for name, cols in src]
        layers.append(_fr_layer(f"fr_bb{k}", f64(f"backbone{k}_bias")[None], phases, np.array([-2 * _LOG2E * a])))
        buffers += f"    float bb{k}[FR_BB{k}_SUMS];\n"
        backbone += (f"    fr_bb{k}({', '.join(name for name, _ in src)}, bb{k});\n"
                     f"    for (i = 0; i < {bu}; ++i)\n        bb{k}[i] = fr_tanh(bb{k}[i], &st);\n")
        src, gain = [(f"bb{k}", slice(0, bu))], b
    heads = ("ff1", "ff2", "time_a", "time_b")
    w = np.stack([f64(f"{hd}_weight") for hd in heads]) * gain
    layers.append(_fr_layer("fr_heads", np.stack([f64(f"{hd}_bias") for hd in heads]),
                            [(name, w[:, :, cols], 0) for name, cols in src], _fr_scales("ttss")))
    return template("cell_cfc_fpv4.c.in").substitute(
        N=n, MODE=mode, BL=bl, BU=bu, ACT=act, NO_GATE=int(mode == "no_gate"), BUFFERS=buffers, BACKBONE=backbone,
        HEADS_IN=", ".join(name for name, _ in src), FPV4_PARTS=_fpv4_rnn_parts("CfC", layers))


def _cell_ctrnn(C, P, cfg, opts):
    n = as_int(cfg["units"], "units")
    C.floats("W_IH", P["weight_ih"])
    C.floats("W_HH", P["weight_hh"])
    C.floats("BIAS", P["bias"])
    C.floats("INV_TAU", P["inv_tau"])
    unfolds = as_int(cfg.get("ode_unfolds", 6), "ode_unfolds")
    return template("cell_ctrnn.c.in").substitute(
        N=n, IN=as_int(cfg["input_size"], "input_size"),
        SOLVER_CODE=_solver_code(cfg.get("solver", "euler"), unfolds, n)), {}


def _cell_node(C, P, cfg, opts):
    n, hf = as_int(cfg["units"], "units"), as_int(cfg.get("ode_hidden", cfg["units"]), "ode_hidden")
    for key, name in (("f1_weight", "F1_W"), ("f1_bias", "F1_B"), ("f2_weight", "F2_W"), ("f2_bias", "F2_B"),
                      ("weight_ih", "W_IH"), ("weight_hh", "W_HH"), ("bias", "BIAS")):
        C.floats(name, P[key])
    unfolds = as_int(cfg.get("ode_unfolds", 6), "ode_unfolds")
    return template("cell_node.c.in").substitute(
        N=n, HF=hf, IN=as_int(cfg["input_size"], "input_size"),
        SOLVER_CODE=_solver_code(cfg.get("solver", "rk4"), unfolds, n)), {}


def _cell_lstm(C, P, cfg, opts):
    n, n_in = as_int(cfg["units"], "units"), as_int(cfg["input_size"], "input_size")
    Cp = Consts()
    Cp.floats("W_IH", P["weight_ih"])
    Cp.floats("W_HH", P["weight_hh"])
    Cp.floats("BIAS", P["bias"])
    portable = template("cell_lstm.c.in").substitute(N=n, IN=n_in)
    gates = [slice(g * n, (g + 1) * n) for g in range(4)]  # i, f, g, o
    wx, wh = (np.stack([np.asarray(P[k], np.float64)[s] for s in gates]) for k in ("weight_ih", "weight_hh"))
    bias = np.stack([np.asarray(P["bias"], np.float64)[s] for s in gates])
    fpv4 = _fpv4_rnn_parts("LSTM", [_fr_layer("fr_mac", bias, [("x", wx, 0), ("h", wh, 0)], _fr_scales("ssts"))])
    return _fpv4_or_portable(C, template("cell_lstm_fpv4.c.in").substitute(N=n, FPV4_PARTS=fpv4), Cp, portable), {}


def _cell_gru(C, P, cfg, opts):
    n, n_in = as_int(cfg["units"], "units"), as_int(cfg["input_size"], "input_size")
    Cp = Consts()
    for key, name in (("weight_ih", "W_IH"), ("weight_hh", "W_HH"), ("bias_ih", "B_IH"), ("bias_hh", "B_HH")):
        Cp.floats(name, P[key])
    portable = template("cell_gru.c.in").substitute(N=n, IN=n_in)
    (r, z, g), f64 = [slice(k * n, (k + 1) * n) for k in range(3)], (lambda k: np.asarray(P[k], np.float64))
    bi, bh = f64("bias_ih"), f64("bias_hh")
    # kinds n_x, r, z, n_h (cell_gru_fpv4.c.in): x feeds the first three, h the last three
    bias = np.stack([bi[g], bi[r] + bh[r], bi[z] + bh[z], bh[g]])
    wx = np.stack([f64("weight_ih")[s] for s in (g, r, z)])
    wh = np.stack([f64("weight_hh")[s] for s in (r, z, g)])
    fpv4 = _fpv4_rnn_parts("GRU", [_fr_layer("fr_mac", bias, [("x", wx, 0), ("h", wh, 1)], _fr_scales("tsst"))])
    return _fpv4_or_portable(C, template("cell_gru_fpv4.c.in").substitute(N=n, FPV4_PARTS=fpv4), Cp, portable), {}


_FR_SUMS = 12  # pre-activations per block of the RNN FPv4 step (rnn_fpv4.c.in): s20-s31
_FR_SCALE = {"s": -_LOG2E, "t": -2.0 * _LOG2E}  # sigmoid(x) = 1/(1 + 2^t), t = -x log2(e); tanh: t = -2x log2(e)


def _fr_scales(acts: str) -> np.ndarray:
    """The scale of t for each gate kind's activation ("s" sigmoid, "t" tanh)."""
    return np.array([_FR_SCALE[a] for a in acts])


def _fr_layer(name: str, bias, phases, scale) -> tuple[str, str, np.ndarray]:
    """One MAC function of the RNN FPv4 step (rnn_fpv4_mac.c.in) and its packed weights: bias [kinds,
    units]; phases [(input, W [kinds it feeds, units, inputs], its first kind)]; scale [kinds]: t's
    scale, folded into the rows here. Per block of 12 / kinds units one record: its 12 biases
    (kind-major), then per input of each phase the weights of the kinds it feeds (units past the
    last: zeros)."""
    kinds, n = bias.shape
    per = _FR_SUMS // kinds
    blocks = -(-n // per)
    pad = ((0, 0), (0, blocks * per - n), (0, 0))
    bias = np.pad(bias * scale[:, None], pad[:2])
    ws = [np.pad(w * scale[k0:k0 + len(w), None, None], pad) for _, w, k0 in phases]
    record = []
    for b in range(blocks):
        u = slice(b * per, (b + 1) * per)
        record += [bias[:, u].ravel()] + [w[:, u, :].transpose(2, 0, 1).ravel() for w in ws]
    upper = name.upper()
    code = template("rnn_fpv4_mac.c.in").substitute(
        NAME=name, UPPER=upper, SUMS=blocks * _FR_SUMS, BLOCKS=blocks,
        WHAT=" and ".join(f"{x} ({w.shape[2]})" for x, w, _ in phases),
        PARAMS=", ".join(f"const float *{x}" for x, _, _ in phases),
        INPUTS=", ".join(f'[{x}] "r"({x})' for x, _, _ in phases),
        PHASES="".join(_fr_mac_lines(x, per, range(k0, k0 + len(w)), w.shape[2], 2 + i)
                       for i, (x, w, k0) in enumerate(phases)))
    return name, code, np.concatenate(record)


def _fpv4_rnn_parts(kind: str, layers) -> str:
    """rnn_fpv4.c.in with the layers' MAC functions and their weights (NAME_W), from _fr_layer."""
    F4 = Consts()
    for name, _, w in layers:
        F4.floats(f"{name.upper()}_W", w)
    return template("rnn_fpv4.c.in").substitute(KIND=kind, FR_CONSTANTS=F4.text().rstrip("\n"),
                                             MAC_FUNCTIONS="\n".join(code for _, code, _ in layers))


def _fr_mac_lines(src: str, per: int, kinds, count: int, label: int) -> str:
    """A MAC function's assembly for `count` inputs read from src, two per loop pass (then the odd
    one): per input one vldm of the weights of `kinds` (contiguous) into s8.. and one vfma each
    into their sums (s20 + per kind + unit)."""
    n_w, first = per * len(kinds), 20 + per * kinds[0]

    def one(reg):
        return [f"vldmia   %[w]!, {{s8-s{7 + n_w}}}"] + [f"vfma.f32 s{first + i}, s{8 + i}, {reg}" for i in range(n_w)]

    lines = [f"mov      %[p], %[{src}]"]
    if count >= 2:
        lines += [f"movw     %[c], #{count // 2}", f"{label}:", "vldmia   %[p]!, {s0-s1}", *one("s0"), *one("s1"),
                  "subs     %[c], %[c], #1", f"bne      {label}b"]
    if count % 2:
        lines += ["vldmia   %[p]!, {s0}", *one("s0")]
    return "".join(f'                     "{line}\\n\\t"\n' for line in lines)


CELL_GENERATORS = {"ltc": _cell_ltc, "cfc": _cell_cfc, "ctrnn": _cell_ctrnn, "node": _cell_node,
                   "lstm": _cell_lstm, "gru": _cell_gru}
