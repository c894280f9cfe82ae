"""The cell math, written once against an array namespace (`xp`: numpy or torch).

Training (torch), export (torch traced into a static graph) and the numpy runtime all
call these functions; the C template in export/ is the only other copy, pinned by golden
tests. Nothing here imports torch.

Every cell kind is a `CellSpec` of plain functions:
  shapes(cfg)                 -> {param name: shape}
  prepare(xp, raw, cfg)       -> constants that depend on parameters only (softplus of
                                 constrained parameters, masks, w*erev, ...), computed once
  step(xp, P, x, h, dt, cfg)  -> (y, new_h) for x[B, in], h[B, state], dt[B, 1] or float
State is always one [B, state_size] array (an LSTM's (h, c) is concatenated).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, NamedTuple

import numpy as np

# --------------------------------------------------------------------------------------
# array namespaces


class NumpyOps:
    name = "numpy"

    @staticmethod
    def sigmoid(x):
        # tanh form: no overflow warning for large |x|, same value to float32 rounding
        return 0.5 + 0.5 * np.tanh(0.5 * x)

    tanh = staticmethod(np.tanh)
    exp = staticmethod(np.exp)
    abs = staticmethod(np.abs)

    @staticmethod
    def softplus(x):
        return np.logaddexp(np.zeros((), dtype=x.dtype), x).astype(x.dtype)

    @staticmethod
    def relu(x):
        return np.maximum(x, 0)

    @staticmethod
    def addmm(c, a, b):
        return c + a @ b

    @staticmethod
    def sum(x, axis):
        return x.sum(axis=axis)

    @staticmethod
    def concat(xs, axis):
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def place(shape, rows, cols, vals):
        """zeros(shape) with vals at (rows[k], cols[k])."""
        out = np.zeros(shape, dtype=vals.dtype)
        out[rows, cols] = vals
        return out

    @staticmethod
    def silu(x):
        return x * NumpyOps.sigmoid(x)

    @staticmethod
    def gelu(x):
        from math import sqrt
        erf = np.vectorize(math.erf, otypes=[x.dtype])
        return 0.5 * x * (1.0 + erf(x / sqrt(2.0)))


class TorchOps:
    name = "torch"

    def __init__(self):
        import torch
        import torch.nn.functional as F

        self.sigmoid, self.tanh, self.exp, self.abs = torch.sigmoid, torch.tanh, torch.exp, torch.abs
        self.softplus, self.relu, self.silu, self.gelu = F.softplus, torch.relu, F.silu, F.gelu
        self._torch = torch

    def sum(self, x, axis):
        return x.sum(dim=axis)

    def addmm(self, c, a, b):  # one Gemm node in an exported graph
        return self._torch.addmm(c, a, b)

    def concat(self, xs, axis):
        return self._torch.cat(xs, dim=axis)

    def place(self, shape, rows, cols, vals):  # differentiable in vals
        t = self._torch
        return vals.new_zeros(shape).index_put((t.as_tensor(rows), t.as_tensor(cols)), vals)


_TORCH_OPS = None


def ops_for(array):
    """The namespace for an array: TorchOps for torch tensors, NumpyOps otherwise."""
    global _TORCH_OPS
    if type(array).__module__.startswith("torch"):
        if _TORCH_OPS is None:
            _TORCH_OPS = TorchOps()
        return _TORCH_OPS
    return NumpyOps


def _linear(x, w, b=None):
    y = x @ w.T
    return y if b is None else y + b


ACTIVATIONS = {
    "lecun_tanh": lambda xp, x: 1.7159 * xp.tanh(0.666 * x),
    "tanh": lambda xp, x: xp.tanh(x),
    "relu": lambda xp, x: xp.relu(x),
    "silu": lambda xp, x: xp.silu(x),
    "gelu": lambda xp, x: xp.gelu(x),
}


# --------------------------------------------------------------------------------------
# fixed-step ODE solvers: one dict, as torchdiffeq does


def _euler(f, h, delta):
    return h + delta * f(h)


def _rk4(f, h, delta):
    k1 = f(h)
    k2 = f(h + 0.5 * delta * k1)
    k3 = f(h + 0.5 * delta * k2)
    k4 = f(h + delta * k3)
    return h + delta / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)


@dataclass(frozen=True)
class Solver:
    """A fixed-step solver: `step(f, h, delta) -> h` for explicit ones; None for the LTC's
    semi-implicit fused update, which each cell that has it implements itself (ltc_step)."""

    step: Callable | None
    cells: tuple        # cell kinds that accept it
    backends: tuple     # where it runs: torch, numpy, graph (ONNX/TFLite), c
    doc: str = ""


_EVERYWHERE = ("torch", "numpy", "graph", "c")
SOLVERS = {
    "semi_implicit": Solver(None, ("ltc",), _EVERYWHERE, "ncps's fused implicit-explicit LTC update"),
    "euler": Solver(_euler, ("ltc", "ctrnn", "node"), _EVERYWHERE, "explicit Euler"),
    "rk4": Solver(_rk4, ("ltc", "ctrnn", "node"), _EVERYWHERE, "classic Runge-Kutta 4"),
}


def solvers_for(kind: str, backend: str | None = None) -> tuple:
    """Solver names a cell kind accepts (on a backend, when given), from SOLVERS."""
    return tuple(k for k, s in SOLVERS.items() if kind in s.cells and (backend is None or backend in s.backends))


def odeint_fixed(f, h, dt, unfolds, method):
    """Integrate dh/dt = f(h) over dt with `unfolds` fixed steps (unrolled: no loop state)."""
    solver = SOLVERS.get(method)
    if solver is None or solver.step is None:
        explicit = [k for k, s in SOLVERS.items() if s.step is not None]
        raise ValueError(f"unknown explicit solver {method!r}; choose one of {', '.join(explicit)}")
    delta = dt / unfolds
    for _ in range(unfolds):
        h = solver.step(f, h, delta)
    return h


# --------------------------------------------------------------------------------------
# LTC (Hasani et al. 2021) with ncps semantics


# What ltc_shapes/ltc_sensory/ltc_step understand (nn.schema rejects anything else, which
# would otherwise run silently as "none" or crash): input/output maps. Solvers: solvers_for("ltc").
LTC_MAPPINGS = ("affine", "linear", "none")


def ltc_shapes(cfg):
    n, i, m = cfg["units"], cfg["input_size"], cfg["motor_size"]
    shapes = {"gleak": (n,), "vleak": (n,), "cm": (n,), "sigma": (n, n), "mu": (n, n),
              "w": (n, n), "erev": (n, n), "sensory_sigma": (i, n), "sensory_mu": (i, n),
              "sensory_w": (i, n), "sensory_erev": (i, n)}
    if cfg.get("input_mapping", "affine") in ("affine", "linear"):
        shapes["input_w"] = (i,)
    if cfg.get("input_mapping", "affine") == "affine":
        shapes["input_b"] = (i,)
    if cfg.get("output_mapping", "affine") in ("affine", "linear"):
        shapes["output_w"] = (m,)
    if cfg.get("output_mapping", "affine") == "affine":
        shapes["output_b"] = (m,)
    return shapes


def ltc_prepare(xp, raw, cfg):
    pos = xp.softplus if cfg.get("implicit_param_constraints", False) else (lambda v: v)
    mask = _as(raw["w"], np.abs(np.asarray(cfg["wiring"]["adjacency"], dtype=np.float32)))
    smask = _as(raw["w"], np.abs(np.asarray(cfg["wiring"]["sensory_adjacency"], dtype=np.float32)))
    w = pos(raw["w"]) * mask
    sw = pos(raw["sensory_w"]) * smask
    gleak = pos(raw["gleak"])
    P = {"mu": raw["mu"], "sigma": raw["sigma"], "w": w, "w_erev": w * raw["erev"],
         "sensory_mu": raw["sensory_mu"], "sensory_sigma": raw["sensory_sigma"],
         "sensory_w": sw, "sensory_w_erev": sw * raw["sensory_erev"],
         "cm": pos(raw["cm"]), "gleak": gleak, "gleak_vleak": gleak * raw["vleak"]}
    for k in ("input_w", "input_b", "output_w", "output_b"):
        P[k] = raw.get(k)
    return P


def synaptic(xp, v, mu, sigma, w, w_erev):
    """Sum over presynaptic neurons of w*sigmoid(sigma*(v_pre-mu)), with and without erev."""
    a = xp.sigmoid(sigma * (v[:, :, None] - mu))
    return xp.sum(a * w_erev, 1), xp.sum(a * w, 1)


# Training takes the synapse-list form (ltc_prepare_lists) when at most this share of the
# possible recurrent synapses exists (an NCP wiring, a pruned or isolated net): the dense form
# computes and masks all N x N gates, the list form only the synapses there are.
LISTS_MAX_DENSITY = 0.5


def ltc_prepare_lists(xp, P, cfg):
    """ltc_prepare's P plus each synapse once in a list, as matrices (differentiable in the
    parameters): gate pre-activations z = v @ sv + b, then num = a @ we, den = a @ w (a =
    sigmoid(z)). P itself when the wiring is denser than LISTS_MAX_DENSITY."""
    adj = np.abs(np.asarray(cfg["wiring"]["adjacency"])) > 0
    if adj.mean() > LISTS_MAX_DENSITY:
        return P
    out = dict(P)
    sadj = np.abs(np.asarray(cfg["wiring"]["sensory_adjacency"])) > 0
    for key, mask, pfx in (("lists", adj, ""), ("sensory_lists", sadj, "sensory_")):
        pre, post = np.nonzero(mask)
        e = np.arange(len(pre))
        sigma = P[pfx + "sigma"][pre, post]
        out[key] = {"sv": xp.place((mask.shape[0], len(pre)), pre, e, sigma), "b": -sigma * P[pfx + "mu"][pre, post],
                    "we": xp.place((len(pre), mask.shape[1]), e, post, P[pfx + "w_erev"][pre, post]),
                    "w": xp.place((len(pre), mask.shape[1]), e, post, P[pfx + "w"][pre, post])}
    return out


def synaptic_lists(xp, v, L):
    """synaptic() over ltc_prepare_lists' matrices."""
    a = xp.sigmoid(xp.addmm(L["b"], v, L["sv"]))
    return a @ L["we"], a @ L["w"]


def recurrent_synaptic(xp, P, v):
    if "lists" in P:
        return synaptic_lists(xp, v, P["lists"])
    return synaptic(xp, v, P["mu"], P["sigma"], P["w"], P["w_erev"])


def ltc_sensory(xp, P, x):
    """Input map and sensory synapses: they depend on the input only, so once per step."""
    if P["input_w"] is not None:
        x = x * P["input_w"]
    if P["input_b"] is not None:
        x = x + P["input_b"]
    if "sensory_lists" in P:
        return synaptic_lists(xp, x, P["sensory_lists"])
    return synaptic(xp, x, P["sensory_mu"], P["sensory_sigma"], P["sensory_w"], P["sensory_w_erev"])


def ltc_rhs(xp, P, v, num_s, den_s):
    """dv/dt of the LTC ODE: (gleak*(vleak - v) + sum_j w_j*gate_j*(erev_j - v)) / cm."""
    num, den = recurrent_synaptic(xp, P, v)
    return (P["gleak_vleak"] + num + num_s - (P["gleak"] + den + den_s) * v) / P["cm"]


def ltc_step(xp, P, x, v, dt, cfg):
    if P.get("static"):
        return _ltc_step_static(xp, P, x, v, dt, cfg)
    num_s, den_s = ltc_sensory(xp, P, x)
    unfolds, eps = cfg.get("ode_unfolds", 6), cfg.get("epsilon", 1e-8)
    solver = cfg.get("solver", "semi_implicit")
    if solver == "semi_implicit":
        # ncps's fused step: v' = (cm/Δ v + gleak vleak + Σ w g erev) / (cm/Δ + gleak + Σ w g)
        cm_t = P["cm"] / (dt / unfolds)
        for _ in range(unfolds):
            num, den = recurrent_synaptic(xp, P, v)
            numerator = cm_t * v + P["gleak_vleak"] + (num + num_s)
            denominator = cm_t + P["gleak"] + (den + den_s)
            v = numerator / (denominator + eps)
    else:
        v = odeint_fixed(lambda v: ltc_rhs(xp, P, v, num_s, den_s), v, dt, unfolds, solver)
    return ltc_output(P, v, cfg), v


def ltc_output(P, v, cfg):
    """The motor neurons' states (the first motor_size, in the last axis), mapped."""
    y = v[..., : cfg["motor_size"]]
    if P["output_w"] is not None:
        y = y * P["output_w"]
    if P["output_b"] is not None:
        y = y + P["output_b"]
    return y


def ltc_bounds(raw, cfg):
    """Per-neuron (lo, hi) that an LTC state starting inside cannot leave (LTC paper,
    Theorem 2): each update is a positive mix of the neuron's own value, its leak potential
    and the reversal potentials of its incoming synapses. Needs w, gleak, cm >= 0 (true
    under either constraint mode). numpy arrays in, numpy arrays out."""
    adj = np.abs(np.asarray(cfg["wiring"]["adjacency"])) > 0
    sadj = np.abs(np.asarray(cfg["wiring"]["sensory_adjacency"])) > 0
    erev = np.concatenate([np.where(adj, raw["erev"], np.nan),
                           np.where(sadj, raw["sensory_erev"], np.nan)], axis=0)
    vleak = np.asarray(raw["vleak"], dtype=np.float64)
    with np.errstate(all="ignore"):
        lo = np.fmin(vleak, np.nanmin(np.where(np.isnan(erev), np.inf, erev), axis=0))
        hi = np.fmax(vleak, np.nanmax(np.where(np.isnan(erev), -np.inf, erev), axis=0))
    return lo, hi



# the float32 rounding slack of a state-bound check, times (1 + the bound's width): the runtime
# guard's default for fp32 models, the C checked step's STATE_LO/HI and `ltc analyze bounds`
STATE_TOL = 1e-4


def bound_margin(lo, hi, tol: float = STATE_TOL):
    """The slack a bound check allows per neuron: tol * (1 + |hi - lo|)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return tol * (1.0 + np.abs(np.asarray(hi, np.float64) - np.asarray(lo, np.float64)))


def ltc_state_bounds(config: dict, raw: dict):
    """(lo, hi) float64 when the LTC theorem applies to this model, else (None, the reason).
    The LTC paper's Theorem 2 bounds a state by min/max(its initial value, the leak and the
    incoming reversal potentials); every run starts from the reset state 0, so the bound is
    ltc_bounds widened to contain 0. The one bound computation: the runtime guards, every
    export's manifest, the C STATE_LO/HI, `ltc analyze bounds` and robustness all use it."""
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
    lo, hi = ltc_bounds(craw, cell)
    return (np.minimum(np.asarray(lo, dtype=np.float64), 0.0), np.maximum(np.asarray(hi, dtype=np.float64), 0.0)), ""

# LTC, synapse-list ("static") form: for exported graphs and the runtime. Same math as
# ltc_step's semi-implicit solver, laid out for few graph nodes. Every synapse that exists in
# the wiring is one column of a matrix, recurrent and sensory synapses side by side, plus one
# always-on synapse (pre-activation 40: float32 sigmoid(40) == 1.0) that carries the constant
# terms gleak*vleak and gleak. An unfold is then one product for the pre-activations (the
# sensory ones, which depend on the input only, are its constant-per-step C), a sigmoid, and
# one product each for the numerator and the denominator sums: with a dt input
#     a = sigmoid(v @ s + z_x);  v = (cm_t*v + a @ we) / (cm_t + a @ w),  cm_t = cm / (dt/unfolds)
# (6 graph nodes), and with a fixed dt cm_t is a constant divided out of both sums,
#     v = (v + a @ (we/cm_t)) / (1 + a @ (w/cm_t))   (5 graph nodes: no product with v).
# Masks are folded into the lists, the input mapping into the sensory pre-activations, the
# output mapping into one matrix.

LTC_STATIC_MAX = 1 << 16  # units * synapses above this: the matrices get big, keep the dense form
_ALWAYS_ON = 40.0          # pre-activation of the constant synapse: float32 sigmoid(40) == 1.0


def ltc_prepare_static(xp, P, cfg, fixed_dt=None):
    """Synapse-list constants from ltc_prepare's P (None when the dense form fits better:
    a solver other than semi-implicit, or units * synapses > LTC_STATIC_MAX)."""
    if cfg.get("solver", "semi_implicit") != "semi_implicit":
        return None
    n, m = cfg["units"], cfg["motor_size"]
    pre, post = np.nonzero(np.abs(np.asarray(cfg["wiring"]["adjacency"])) > 0)
    spre, spost = np.nonzero(np.abs(np.asarray(cfg["wiring"]["sensory_adjacency"])) > 0)
    if n * len(pre) > LTC_STATIC_MAX:
        return None
    g = {k: (None if v is None else _numpy64(v)) for k, v in P.items()}
    n_in = g["sensory_w"].shape[0]
    iw = np.ones(n_in) if g["input_w"] is None else g["input_w"]
    ib = np.zeros(n_in) if g["input_b"] is None else g["input_b"]
    k_rec, k_sen = len(pre), len(spre)
    cols = k_rec + k_sen + 1  # recurrent synapses, sensory synapses, the always-on one
    sv, sx, b = np.zeros((n, cols)), np.zeros((n_in, cols)), np.zeros(cols)
    we, w = np.zeros((cols, n)), np.zeros((cols, n))
    # pre-activation of a synapse: sigma * (scale * pre + shift - mu)
    for (pr, po, sigma, mu, ww, wwe, s, col0, scale, shift) in (
            (pre, post, g["sigma"], g["mu"], g["w"], g["w_erev"], sv, 0, np.ones(n), np.zeros(n)),
            (spre, spost, g["sensory_sigma"], g["sensory_mu"], g["sensory_w"], g["sensory_w_erev"], sx, k_rec,
             iw, ib)):
        k = col0 + np.arange(len(pr))
        s[pr, k] = sigma[pr, po] * scale[pr]
        b[k] = sigma[pr, po] * (shift[pr] - mu[pr, po])
        we[k, po], w[k, po] = wwe[pr, po], ww[pr, po]
    unfolds, eps = cfg.get("ode_unfolds", 6), cfg.get("epsilon", 1e-8)
    b[-1] = _ALWAYS_ON
    we[-1], w[-1] = g["gleak_vleak"], g["gleak"] + eps
    out = np.zeros((n, m))
    out[np.arange(m), np.arange(m)] = 1.0 if g["output_w"] is None else g["output_w"]
    S = {"static": True, "sv": sv, "sx": sx, "b": b, "we": we, "w": w, "out": out,
         "out_b": np.zeros(m) if g["output_b"] is None else g["output_b"]}
    if fixed_dt is None:  # cm / (dt / unfolds), per row at run time
        S["cm_u"], S["ones"] = g["cm"] * unfolds, None
    else:  # a constant cm_t, divided out of both sums: v = (v + a @ we/cm_t) / (1 + a @ w/cm_t)
        cm_t = g["cm"] / (float(fixed_dt) / unfolds)
        S["we"], S["w"], S["cm_u"], S["ones"] = we / cm_t, w / cm_t, None, np.ones(n)
    like = P["w"]
    return {k: (v if v is None or isinstance(v, bool) else _as(like, np.asarray(v, dtype=np.float32)))
            for k, v in S.items()}


def _ltc_step_static(xp, P, x, v, dt, cfg):
    z_x = xp.addmm(P["b"], x, P["sx"])  # sensory pre-activations: once per step
    cm_t = None if P["cm_u"] is None else P["cm_u"] / dt  # None: a fixed dt, cm_t folded into we, w
    for _ in range(cfg.get("ode_unfolds", 6)):
        a = xp.sigmoid(xp.addmm(z_x, v, P["sv"]))
        if cm_t is None:  # no product with v: 5 graph nodes an unfold
            v = xp.addmm(v, a, P["we"]) / xp.addmm(P["ones"], a, P["w"])
        else:
            v = xp.addmm(cm_t * v, a, P["we"]) / xp.addmm(cm_t, a, P["w"])
    return xp.addmm(P["out_b"], v, P["out"]), v


def _numpy64(t):
    if type(t).__module__.startswith("torch"):
        t = t.detach().cpu().numpy()
    return np.asarray(t, dtype=np.float64)


# --------------------------------------------------------------------------------------
# CfC (Hasani et al. 2022), ncps semantics: plain (backbone MLP) or wired (one CfC per layer)


CFC_MODES = ("default", "no_gate", "pure")  # _cfc_block's branches (nn.schema checks the name)


def _cfc_block_shapes(prefix, n_in, hidden, mode, backbone_units, backbone_layers):
    shapes, width = {}, n_in + hidden
    for k in range(backbone_layers):
        shapes[f"{prefix}backbone{k}_weight"] = (backbone_units, width)
        shapes[f"{prefix}backbone{k}_bias"] = (backbone_units,)
        width = backbone_units
    heads = ["ff1"] if mode == "pure" else ["ff1", "ff2", "time_a", "time_b"]
    for head in heads:
        shapes[f"{prefix}{head}_weight"] = (hidden, width)
        shapes[f"{prefix}{head}_bias"] = (hidden,)
    if mode == "pure":
        shapes[f"{prefix}w_tau"] = (1, hidden)
        shapes[f"{prefix}A"] = (1, hidden)
    return shapes


class CfcLayer(NamedTuple):
    """One CfC block: a wired CfC has one per wiring layer, an unwired one a single block."""

    prefix: str             # parameter-name prefix ("" or "layer0_", ...)
    n_in: int
    hidden: int
    backbone_units: int
    backbone_layers: int
    mask: object            # [hidden, n_in + hidden] 0/1 float32, or None (dense)


def cfc_layers(cfg) -> list:
    """The CfC blocks of a cell config, in order."""
    wiring = cfg.get("wiring")
    if wiring is None:
        return [CfcLayer("", cfg["input_size"], cfg["units"], cfg.get("backbone_units", 128),
                         cfg.get("backbone_layers", 1), None)]
    adj = np.asarray(wiring["adjacency"])
    sadj = np.asarray(wiring["sensory_adjacency"])
    blocks, n_in, prev = [], cfg["input_size"], None
    for li, neurons in enumerate(wiring["layers"]):
        src = sadj[:, neurons] if li == 0 else adj[prev, :][:, neurons]
        mask = np.concatenate([src, np.ones((len(neurons), len(neurons)))], axis=0)
        blocks.append(CfcLayer(f"layer{li}_", n_in, len(neurons), 0, 0, np.abs(mask.T).astype(np.float32)))
        n_in, prev = len(neurons), neurons
    return blocks


def cfc_shapes(cfg):
    shapes = {}
    for b in cfc_layers(cfg):
        shapes.update(_cfc_block_shapes(b.prefix, b.n_in, b.hidden, cfg.get("mode", "default"),
                                        b.backbone_units, b.backbone_layers))
    return shapes


def cfc_prepare(xp, raw, cfg):
    P = dict(raw)
    for prefix, mask in ((b.prefix, b.mask) for b in cfc_layers(cfg)):
        if mask is not None:
            for head in ("ff1", "ff2"):
                if f"{prefix}{head}_weight" in P:
                    P[f"{prefix}{head}_weight"] = P[f"{prefix}{head}_weight"] * _as(raw[f"{prefix}ff1_weight"], mask)
    return P


def _cfc_block(xp, P, prefix, x, h, dt, mode, backbone_layers, act):
    z = xp.concat([x, h], 1)
    for k in range(backbone_layers):
        z = act(xp, _linear(z, P[f"{prefix}backbone{k}_weight"], P[f"{prefix}backbone{k}_bias"]))
    ff1 = _linear(z, P[f"{prefix}ff1_weight"], P[f"{prefix}ff1_bias"])
    if mode == "pure":
        A = P[f"{prefix}A"]
        return -A * xp.exp(-dt * (xp.abs(P[f"{prefix}w_tau"]) + xp.abs(ff1))) * ff1 + A
    ff1 = xp.tanh(ff1)
    ff2 = xp.tanh(_linear(z, P[f"{prefix}ff2_weight"], P[f"{prefix}ff2_bias"]))
    t_a = _linear(z, P[f"{prefix}time_a_weight"], P[f"{prefix}time_a_bias"])
    t_b = _linear(z, P[f"{prefix}time_b_weight"], P[f"{prefix}time_b_bias"])
    t_interp = xp.sigmoid(t_a * dt + t_b)
    if mode == "no_gate":
        return ff1 + t_interp * ff2
    return ff1 * (1.0 - t_interp) + t_interp * ff2


def cfc_step(xp, P, x, h, dt, cfg):
    mode = cfg.get("mode", "default")
    act = ACTIVATIONS[cfg.get("activation", "lecun_tanh")]
    new_h, start, inp = [], 0, x
    for b in cfc_layers(cfg):
        out = _cfc_block(xp, P, b.prefix, inp, h[:, start:start + b.hidden], dt, mode, b.backbone_layers, act)
        new_h.append(out)
        start += b.hidden
        inp = out
    return inp, (new_h[0] if len(new_h) == 1 else xp.concat(new_h, 1))


# --------------------------------------------------------------------------------------
# CT-RNN: dh/dt = -h/tau + tanh(W [x, h] + b), fixed-step solver


def ctrnn_shapes(cfg):
    n, i = cfg["units"], cfg["input_size"]
    return {"weight_ih": (n, i), "weight_hh": (n, n), "bias": (n,), "tau": (n,)}


def ctrnn_prepare(xp, raw, cfg):
    # tau > 0 through softplus, stored as its inverse so the step only multiplies
    return {"weight_ih": raw["weight_ih"], "weight_hh": raw["weight_hh"], "bias": raw["bias"],
            "inv_tau": 1.0 / (xp.softplus(raw["tau"]) + 1e-3)}


def ctrnn_step(xp, P, x, h, dt, cfg):
    u = _linear(x, P["weight_ih"], P["bias"])  # input drive is constant over the step

    def f(h):
        return -h * P["inv_tau"] + xp.tanh(u + h @ P["weight_hh"].T)

    h = odeint_fixed(f, h, dt, cfg.get("ode_unfolds", 6), cfg.get("solver", "euler"))
    return h, h


# --------------------------------------------------------------------------------------
# ODE-RNN (Rubanova et al. 2019): evolve h by a neural ODE over dt, then an RNN update


def node_shapes(cfg):
    n, i, hf = cfg["units"], cfg["input_size"], cfg.get("ode_hidden", cfg["units"])
    return {"f1_weight": (hf, n), "f1_bias": (hf,), "f2_weight": (n, hf), "f2_bias": (n,),
            "weight_ih": (n, i), "weight_hh": (n, n), "bias": (n,)}


def node_prepare(xp, raw, cfg):
    return dict(raw)


def node_step(xp, P, x, h, dt, cfg):
    def f(h):
        return _linear(xp.tanh(_linear(h, P["f1_weight"], P["f1_bias"])), P["f2_weight"], P["f2_bias"])

    h = odeint_fixed(f, h, dt, cfg.get("ode_unfolds", 6), cfg.get("solver", "euler"))
    h = xp.tanh(_linear(x, P["weight_ih"], P["bias"]) + h @ P["weight_hh"].T)
    return h, h


# --------------------------------------------------------------------------------------
# LSTM and GRU (torch.nn.LSTMCell / GRUCell semantics; dt is ignored)


def lstm_shapes(cfg):
    n, i = cfg["units"], cfg["input_size"]
    return {"weight_ih": (4 * n, i), "weight_hh": (4 * n, n), "bias": (4 * n,)}


def lstm_step(xp, P, x, hc, dt, cfg):
    n = cfg["units"]
    h, c = hc[:, :n], hc[:, n:]
    z = _linear(x, P["weight_ih"], P["bias"]) + h @ P["weight_hh"].T
    i, f, g, o = z[:, :n], z[:, n:2 * n], z[:, 2 * n:3 * n], z[:, 3 * n:]
    c = xp.sigmoid(f) * c + xp.sigmoid(i) * xp.tanh(g)
    h = xp.sigmoid(o) * xp.tanh(c)
    return h, xp.concat([h, c], 1)


def gru_shapes(cfg):
    n, i = cfg["units"], cfg["input_size"]
    return {"weight_ih": (3 * n, i), "weight_hh": (3 * n, n), "bias_ih": (3 * n,), "bias_hh": (3 * n,)}


def gru_step(xp, P, x, h, dt, cfg):
    n = cfg["units"]
    gi = _linear(x, P["weight_ih"], P["bias_ih"])
    gh = _linear(h, P["weight_hh"], P["bias_hh"])
    r = xp.sigmoid(gi[:, :n] + gh[:, :n])
    z = xp.sigmoid(gi[:, n:2 * n] + gh[:, n:2 * n])
    c = xp.tanh(gi[:, 2 * n:] + r * gh[:, 2 * n:])
    h = (1.0 - z) * c + z * h
    return h, h


# --------------------------------------------------------------------------------------
# registry


@dataclass(frozen=True)
class CellSpec:
    shapes: Callable
    prepare: Callable
    step: Callable
    state_size: Callable  # cfg -> int
    output_size: Callable  # cfg -> int
    uses_dt: bool


def _identity_prepare(xp, raw, cfg):
    return dict(raw)


CELLS = {
    "ltc": CellSpec(ltc_shapes, ltc_prepare, ltc_step, lambda c: c["units"], lambda c: c["motor_size"], True),
    "cfc": CellSpec(cfc_shapes, cfc_prepare, cfc_step, lambda c: c["units"],
                    lambda c: c["wiring"]["output_dim"] if c.get("wiring") else c["units"], True),
    "ctrnn": CellSpec(ctrnn_shapes, ctrnn_prepare, ctrnn_step, lambda c: c["units"], lambda c: c["units"], True),
    "node": CellSpec(node_shapes, node_prepare, node_step, lambda c: c["units"], lambda c: c["units"], True),
    "lstm": CellSpec(lstm_shapes, _identity_prepare, lstm_step, lambda c: 2 * c["units"], lambda c: c["units"], False),
    "gru": CellSpec(gru_shapes, _identity_prepare, gru_step, lambda c: c["units"], lambda c: c["units"], False),
}


def cell_spec(kind: str) -> CellSpec:
    if kind not in CELLS:
        raise ValueError(f"unknown cell kind {kind!r}; choose one of {', '.join(CELLS)}")
    return CELLS[kind]


# --------------------------------------------------------------------------------------
# whole model = input normalisation -> cell -> optional linear readout -> de-normalisation


def model_shapes(config):
    cell = config["cell"]
    shapes = {f"cell.{k}": v for k, v in cell_spec(cell["kind"]).shapes(cell).items()}
    if config.get("readout"):
        n_out, n_in = config["output_size"], cell_spec(cell["kind"]).output_size(cell)
        shapes["readout.weight"] = (n_out, n_in)
        shapes["readout.bias"] = (n_out,)
    return shapes


def model_prepare(xp, raw, config):
    """All parameter-only work, done once: for training once per forward, for export at
    export time (the results become graph constants), for the runtime at load time."""
    cell = config["cell"]
    craw = {k[5:]: v for k, v in raw.items() if k.startswith("cell.")}
    P = {"cell": cell_spec(cell["kind"]).prepare(xp, craw, cell),
         "readout_w": raw.get("readout.weight"), "readout_b": raw.get("readout.bias")}
    norm = config.get("normalization") or {}
    like = next(iter(raw.values()))
    for key in ("input_mean", "input_std", "output_mean", "output_std"):
        P[key] = None if norm.get(key) is None else _as(like, np.asarray(norm[key], dtype=np.float32))
    return P


def model_uses_dt(config) -> bool:
    """Whether a step's answer depends on dt: continuous-time cells, and any cell given the
    elapsed time as an extra input (config["dt_input"], e.g. an LSTM trained that way)."""
    return cell_spec(config["cell"]["kind"]).uses_dt or bool(config.get("dt_input"))


def model_step(xp, P, x, h, dt, config):
    """One control step: x[B, in], h[B, state], dt (float or [B, 1]) -> (y[B, out], new h)."""
    x = model_input(xp, P, x, dt, config)
    cell = config["cell"]
    y, h = cell_spec(cell["kind"]).step(xp, P["cell"], x, h, dt, cell)
    return model_output(P, y), h


def model_input(xp, P, x, dt, config):
    """What the cell sees of an input row: normalised, and with dt as a column where configured."""
    if P["input_mean"] is not None:
        x = (x - P["input_mean"]) / P["input_std"]
    if config.get("dt_input"):  # dt / (training median dt) as one more input column
        x = xp.concat([x, x[:, :1] * 0.0 + dt * (1.0 / config["dt_input"]["scale"])], 1)
    return x


def model_output(P, y):
    """The model's output from the cell's: readout, then de-normalised."""
    if P["readout_w"] is not None:
        y = _linear(y, P["readout_w"], P["readout_b"])
    if P["output_mean"] is not None:
        y = y * P["output_std"] + P["output_mean"]
    return y


STATIC_PREPARE = {"ltc": ltc_prepare_static}
TRAINING_PREPARE = {"ltc": ltc_prepare_lists}


def model_prepare_training(xp, raw, config):
    """model_prepare, then the cell's fastest differentiable form where it has one
    (TRAINING_PREPARE): what training and its evaluation step with."""
    P = model_prepare(xp, raw, config)
    fold = TRAINING_PREPARE.get(config["cell"]["kind"])
    if fold is not None:
        P["cell"] = fold(xp, P["cell"], config["cell"])
    return P


def model_prepare_static(xp, raw, config, fixed_dt=None):
    """model_prepare, then the graph-friendly form of the cell's constants where the cell
    kind has one (STATIC_PREPARE), with dt folded in when fixed_dt is given. For export and
    the runtime; model_step takes either form."""
    P = model_prepare(xp, raw, config)
    fold = STATIC_PREPARE.get(config["cell"]["kind"])
    static = fold(xp, P["cell"], config["cell"], fixed_dt) if fold else None
    if static is not None:
        P["cell"] = static
    return P


def state_size(config) -> int:
    return cell_spec(config["cell"]["kind"]).state_size(config["cell"])


def _as(like, array):
    """`array` (numpy) as the same kind of array as `like` (numpy or torch, same device)."""
    if type(like).__module__.startswith("torch"):
        import torch

        return torch.as_tensor(array, dtype=like.dtype, device=like.device)
    return np.asarray(array, dtype=like.dtype)
