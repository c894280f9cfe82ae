"""LTC theorem checks (LTC paper, Theorems 1 and 2), per neuron, numpy only.

Theorem 1 (time constant): with synaptic gates in [0, 1], each neuron's effective time
constant tau_sys = cm / (gleak + sum_j w_j * gate_j) stays within
[cm / (gleak + sum_j w_j), cm / gleak]  (the paper's [tau/(1+tau*W), tau]).
Theorem 2 (state): each neuron's state stays within the range spanned by its initial value,
its leak potential and the reversal potentials of its incoming synapses (F.ltc_state_bounds:
the one bound the runtime guard, the manifests and the C STATE_LO/HI use too).

`check` runs a model on input sequences, records every neuron's state and effective time
constant at every unfold, and reports the observed ranges against those bounds. States coming
from another backend (an exported, quantized file) can be passed in to be checked too.
"""

from __future__ import annotations

import numpy as np

from ..nn import functional as F


def time_constant_bounds(P: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per neuron [cm / (gleak + sum w), cm / gleak]; gleak = 0 gives an infinite upper bound,
    and cm = 0 (an instantaneous neuron, where training's clamp can land) a time constant of 0."""
    total_w = P["w"].sum(0) + P["sensory_w"].sum(0)  # all incoming conductances per neuron
    cm = P["cm"]
    with np.errstate(divide="ignore", invalid="ignore"):
        lo, hi = cm / (P["gleak"] + total_w), cm / P["gleak"]
    return np.where(cm == 0, 0.0, lo), np.where(cm == 0, 0.0, hi)


def check(config: dict, tensors: dict, x: np.ndarray, dt=1.0, states: np.ndarray | None = None,
          tol: float = F.STATE_TOL) -> dict:
    """x [N, T, in] (raw inputs), dt float or [N, T], run from the reset state 0. Returns a
    per-neuron report; a state is within its bound up to F.bound_margin(lo, hi, tol)."""
    cell = config["cell"]
    if cell["kind"] != "ltc":
        raise ValueError(f"bounds apply to LTC cells only, this model is {cell['kind']!r}")
    bounds, why = F.ltc_state_bounds(config, tensors)
    if bounds is None:
        raise ValueError(f"no proven state bound for this model: {why}")
    lo, hi = bounds
    P = F.model_prepare(F.NumpyOps, tensors, config)
    Pc = P["cell"]
    tau_lo, tau_hi = time_constant_bounds(Pc)
    N, T, _ = x.shape
    n = cell["units"]
    h = np.zeros((N, n), np.float32)
    v_min, v_max = np.full(n, np.inf), np.full(n, -np.inf)
    t_min, t_max = np.full(n, np.inf), np.full(n, -np.inf)
    xp = F.NumpyOps
    for t in range(T):
        xt = x[:, t].astype(np.float32)
        d = dt if np.isscalar(dt) else np.asarray(dt, np.float32)[:, t:t + 1]
        # effective time constant at the state the step starts from (gates from v and input)
        xi = xt if P["input_mean"] is None else (xt - P["input_mean"]) / P["input_std"]
        if Pc["input_w"] is not None:
            xi = xi * Pc["input_w"]
        if Pc["input_b"] is not None:
            xi = xi + Pc["input_b"]
        _, den_s = F.synaptic(xp, xi, Pc["sensory_mu"], Pc["sensory_sigma"], Pc["sensory_w"], Pc["sensory_w_erev"])
        _, den = F.synaptic(xp, h, Pc["mu"], Pc["sigma"], Pc["w"], Pc["w_erev"])
        tau = Pc["cm"] / (Pc["gleak"] + den + den_s)
        t_min, t_max = np.minimum(t_min, tau.min(0)), np.maximum(t_max, tau.max(0))
        _, h = F.model_step(xp, P, xt, h, d, config)
        v_min, v_max = np.minimum(v_min, h.min(0)), np.maximum(v_max, h.max(0))
    report = _report(lo, hi, v_min, v_max, tau_lo, tau_hi, t_min, t_max, tol)
    if states is not None:
        s = np.asarray(states, dtype=np.float64).reshape(-1, n)
        report["external"] = _report(lo, hi, s.min(0), s.max(0), tau_lo, tau_hi, None, None, tol)
    report["steps"] = int(T)
    report["sequences"] = int(N)
    return report


def _report(lo, hi, v_min, v_max, tau_lo, tau_hi, t_min, t_max, tol):
    neurons = []
    margin = F.bound_margin(lo, hi, tol)
    for i in range(len(lo)):
        row = {"neuron": i, "state_bound": [float(lo[i]), float(hi[i])],
               "state_observed": [float(v_min[i]), float(v_max[i])],
               "state_ok": bool(v_min[i] >= lo[i] - margin[i] and v_max[i] <= hi[i] + margin[i])}
        if t_min is not None:
            row.update({"tau_bound": [float(tau_lo[i]), float(tau_hi[i])],
                        "tau_observed": [float(t_min[i]), float(t_max[i])],
                        "tau_ok": bool(t_min[i] >= tau_lo[i] * (1 - tol) and t_max[i] <= tau_hi[i] * (1 + tol))})
        neurons.append(row)
    violations = [r["neuron"] for r in neurons if not r["state_ok"] or not r.get("tau_ok", True)]
    return {"neurons": neurons, "violations": violations, "ok": not violations}
