"""Solver study for the LTC: the fixed-step trade-off the export relies on.

1. Solution error, gradient norm and step cost of the semi-implicit (ncps), explicit Euler and
   RK4 solvers at 1..12 unfolds per step, against a fine RK4 reference (256 unfolds, float64).
2. BPTT through the unrolled solver vs the adjoint method (torchdiffeq.odeint_adjoint): memory
   held for the backward pass (bytes of tensors autograd saves) and gradient error against a
   float64 BPTT reference of the same discretisation.
"""

from __future__ import annotations

import copy
import time

import numpy as np

SOLVERS = ("semi_implicit", "euler", "rk4")


def _inputs(model, batch, steps, dt, seed):
    import torch

    g = torch.Generator().manual_seed(seed)
    t = torch.arange(steps, dtype=torch.float64)[None, :, None]
    phase = torch.rand(batch, 1, model.input_size, generator=g, dtype=torch.float64) * 6.28
    x = torch.sin(0.3 * t + phase) + 0.3 * torch.randn(batch, steps, model.input_size, generator=g, dtype=torch.float64)
    return x, torch.full((batch, steps), float(dt), dtype=torch.float64)


def _variant(model, solver, unfolds, dtype):
    m = copy.deepcopy(model).to(dtype)
    m.config = copy.deepcopy(model.config)
    m.config["cell"]["solver"], m.config["cell"]["ode_unfolds"] = solver, unfolds
    return m


def solver_table(model, unfolds=range(1, 13), solvers=SOLVERS, dt=1.0, steps=50, batch=8, seed=0,
                 progress=None) -> dict:
    """Per solver and unfold count: output error vs reference, gradient norm, step cost."""
    import torch

    x, dts = _inputs(model, batch, steps, dt, seed)
    reference = "rk4, 256 unfolds, float64"
    ref = _variant(model, "rk4", 256, torch.float64)
    with torch.no_grad():
        y_ref, _ = ref(x, dts)
    if not torch.isfinite(y_ref).all():  # a neuron with cm = 0 has no explicit ODE: see instantaneous_neurons
        reference = "semi_implicit, 4096 unfolds, float64 (rk4 diverges on this model)"
        with torch.no_grad():
            y_ref, _ = _variant(model, "semi_implicit", 4096, torch.float64)(x, dts)
    rows = []
    for solver in solvers:
        for k in unfolds:
            m64 = _variant(model, solver, k, torch.float64)
            with torch.no_grad():
                y, _ = m64(x, dts)
            err = (y - y_ref).abs()
            m32 = _variant(model, solver, k, torch.float32)
            y32, _ = m32(x.float(), dts.float())
            loss = (y32 ** 2).mean()
            loss.backward()
            grad = torch.sqrt(sum((p.grad ** 2).sum() for p in m32.parameters() if p.grad is not None)).item()
            rows.append({"solver": solver, "unfolds": k, "max_abs_error": float(err.max()),
                         "rms_error": float(err.pow(2).mean().sqrt()), "finite": bool(torch.isfinite(y).all()),
                         "grad_norm": grad, "us_per_step": _step_cost(m32, x.float()[:, 0], dts.float()[:, :1])})
            if progress:
                progress()
    return {"dt": dt, "steps": steps, "batch": batch, "reference": reference,
            "instantaneous_neurons": instantaneous_neurons(model), "rows": rows}


def instantaneous_neurons(model) -> list[int]:
    """Neurons whose capacitance is 0 (training's clamp cm >= 0 can land there): their state is
    an algebraic function of the others, dv/dt = rhs / cm is undefined, so explicit solvers
    (Euler, RK4, the adjoint's ODE) divide by zero while the semi-implicit update stays exact."""
    import torch

    with torch.no_grad():
        cm = model.prepared()["cell"]["cm"]
    return [int(i) for i in torch.nonzero(cm <= 0).flatten()]


def _step_cost(model, x, dt, reps=30) -> float:
    """Microseconds per step of the numpy math (the runtime's), batch as given: best of 3."""
    from ..nn import functional as F

    tensors = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    P = F.model_prepare(F.NumpyOps, tensors, model.config)
    xn, dtn = x.numpy(), dt.numpy()
    h = np.zeros((x.shape[0], model.state_size), np.float32)
    best = np.inf
    with np.errstate(all="ignore"):  # an explicit solver on cm = 0 neurons divides by zero: timed all the same
        for _ in range(3):
            t0 = time.perf_counter()
            for _ in range(reps):
                F.model_step(F.NumpyOps, P, xn, h, dtn, model.config)
            best = min(best, (time.perf_counter() - t0) / reps)
    return best * 1e6


class _SavedBytes:
    """Counts the bytes of tensors autograd keeps for the backward pass."""

    def __init__(self):
        self.bytes = 0

    def __enter__(self):
        import torch

        def pack(t):
            self.bytes += t.numel() * t.element_size()
            return t

        self._ctx = torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t)
        self._ctx.__enter__()
        return self

    def __exit__(self, *exc):
        self._ctx.__exit__(*exc)


def adjoint_vs_bptt(model, unfolds=6, dt=1.0, steps=30, batch=4, seed=0) -> dict:
    """Gradient of mean(y^2) through an RK4-discretised LTC by BPTT and by the adjoint method.
    Not defined for a model with instantaneous (cm = 0) neurons: returns the reason instead."""
    import torch

    zero_cm = instantaneous_neurons(model)
    if zero_cm:
        return {"unfolds": unfolds, "skipped": f"{len(zero_cm)} neuron(s) with cm = 0 ({', '.join(map(str, zero_cm))}): "
                                             "no explicit ODE for RK4 or the adjoint to integrate"}
    base = _variant(model, "rk4", unfolds, torch.float32)
    x, dts = _inputs(model, batch, steps, dt, seed)
    # float64 BPTT: the reference gradient of this discretisation
    g_ref, _ = _bptt_gradient(_variant(model, "rk4", unfolds, torch.float64), x, dts)
    g_bptt, mem_bptt = _bptt_gradient(copy.deepcopy(base), x.float(), dts.float())
    g_adj, mem_adj = _adjoint_gradient(copy.deepcopy(base), x.float(), dt, unfolds)

    def rel(g):
        return float((g - g_ref).norm() / g_ref.norm())

    return {"unfolds": unfolds, "steps": steps, "batch": batch, "dt": dt,
            "bptt": {"saved_bytes": int(mem_bptt), "grad_rel_error": rel(g_bptt)},
            "adjoint": {"saved_bytes": int(mem_adj), "grad_rel_error": rel(g_adj)},
            "memory_ratio_bptt_over_adjoint": mem_bptt / max(mem_adj, 1)}


def _gradient(m):
    """All parameter gradients of `m` as one float64 vector (zeros for unused parameters)."""
    import torch

    return torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).flatten()
                      for p in m.parameters()]).double()


def _bptt_gradient(m, x, dts):
    """(gradient of mean(y^2) by backprop through the unrolled solver, bytes saved for backward)."""
    with _SavedBytes() as mem:
        y, _ = m(x, dts)
        loss = (y ** 2).mean()
    loss.backward()
    return _gradient(m), mem.bytes


def _sensory_rhs(owner):
    """The LTC's right-hand side over a state [v, num_s, den_s]: the sensory drive rides along
    with zero derivative, so the adjoint carries its gradient back to the sensory parameters
    (a closure would not)."""
    import torch
    from torch import nn

    from ..nn import functional as F

    n = owner.config["cell"]["units"]

    class RHS(nn.Module):
        def __init__(self):
            super().__init__()
            self.owner = owner

        def forward(self, t, z):
            P = self.owner.prepared()["cell"]
            v, num_s, den_s = z[:, :n], z[:, n:2 * n], z[:, 2 * n:]
            dv = F.ltc_rhs(F.ops_for(v), P, v, num_s, den_s)
            return torch.cat([dv, torch.zeros_like(num_s), torch.zeros_like(den_s)], 1)

    return RHS()


def _outputs(P: dict, h, motor_size: int):
    """The model's output from the LTC state: motor neurons, output map, readout."""
    yt = h[:, :motor_size]
    if P["cell"]["output_w"] is not None:
        yt = yt * P["cell"]["output_w"]
    if P["cell"]["output_b"] is not None:
        yt = yt + P["cell"]["output_b"]
    if P["readout_w"] is not None:
        yt = yt @ P["readout_w"].T + P["readout_b"]
    return yt


def _adjoint_gradient(adj, x, dt: float, unfolds: int):
    """(gradient by the adjoint method: the same RK4 steps forward, gradients by integrating the
    adjoint ODE backwards; bytes saved for backward)."""
    import torch
    from torchdiffeq import odeint_adjoint

    from ..nn import functional as F

    n, motor = adj.config["cell"]["units"], adj.config["cell"]["motor_size"]
    rhs = _sensory_rhs(adj)
    with _SavedBytes() as mem:
        h, ys = adj.initial_state(x.shape[0]), []
        for t in range(x.shape[1]):
            P = adj.prepared()
            xt = x[:, t]
            if P["input_mean"] is not None:
                xt = (xt - P["input_mean"]) / P["input_std"]
            num_s, den_s = F.ltc_sensory(F.ops_for(xt), P["cell"], xt)
            z = odeint_adjoint(rhs, torch.cat([h, num_s, den_s], 1), torch.tensor([0.0, float(dt)]), method="rk4",
                               options={"step_size": float(dt) / unfolds}, adjoint_params=tuple(adj.parameters()))[-1]
            h = z[:, :n]
            ys.append(_outputs(P, h, motor))
        loss = (torch.stack(ys, 1) ** 2).mean()
    loss.backward()
    return _gradient(adj), mem.bytes


def plot(table: dict, path) -> str:
    from ..plots import pyplot, save

    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for solver, color in zip(SOLVERS, ("tab:red", "tab:blue", "tab:green")):
        rs = [r for r in table["rows"] if r["solver"] == solver]
        k = [r["unfolds"] for r in rs]
        axes[0].semilogy(k, [r["max_abs_error"] if r["finite"] else np.nan for r in rs], "o-", color=color, label=solver)
        axes[1].semilogy(k, [r["grad_norm"] for r in rs], "o-", color=color, label=solver)
        axes[2].plot(k, [r["us_per_step"] for r in rs], "o-", color=color, label=solver)
    axes[0].set_ylabel("max |y - y_ref| over the sequence")
    axes[1].set_ylabel("‖∂ loss / ∂θ‖ (BPTT)")
    axes[2].set_ylabel("µs per step (numpy)")
    for ax, title in zip(axes, ("solution error", "gradient norm", "step cost")):
        ax.set_xlabel("unfolds per step")
        ax.set_title(f"{title} (dt = {table['dt']})")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save(fig, path)
