"""Trajectory-length expressivity (LTC paper, section 4; after Raghu et al. 2017).

A circular input trajectory x(t) = (sin t, cos t), t in [0, 2π), is fed through a stack of L
recurrent layers of width k. The latent trajectory of each layer is the sequence of its
outputs over time; its length is the summed arc length. The paper shows the LTC's latent
trajectory length grows with depth and weight scale faster than CT-RNN / ODE-RNN / LSTM, and
plots lengths of the 2-D PCA projection, which we report beside the full-space length.

Weights are drawn N(0, σ_w²/k), biases N(0, σ_b²), as in the paper. The LTC's synapse is
w·sigmoid(sigma·(v - mu)): its gain `sigma` plays the role of a weight inside the nonlinearity,
but acts on one presynaptic neuron, not a sum of k, so it is drawn N(0, σ_w²); `mu` (the
threshold) N(0, σ_b²); the conductances w, which must stay non-negative, |N(0, 1/k)|.
"""

from __future__ import annotations

import math

import numpy as np

from ..nn.functional import CELLS

KINDS = ("ltc", "ctrnn", "node", "lstm")  # 'all': the paper's four (any of CELLS may be asked for)


def _stack(kind, width, depth, sigma_w, sigma_b, seed):
    import torch

    from ..nn import build_model

    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)

    def normal(shape, std):
        return torch.randn(shape, generator=g) * std

    layers, n_in = [], 2
    for _ in range(depth):
        m = build_model(kind, n_in, units=width, readout=False)
        with torch.no_grad():
            for name, p in m.named_parameters():
                short = name.split(".", 1)[1]
                if kind == "ltc":
                    if short in ("sigma", "sensory_sigma"):
                        p.copy_(normal(p.shape, sigma_w))
                    elif short in ("mu", "sensory_mu"):
                        p.copy_(normal(p.shape, sigma_b))
                    elif short in ("w", "sensory_w"):
                        p.copy_(normal(p.shape, 1 / math.sqrt(width)).abs())
                elif p.dim() == 2 and short != "tau":
                    p.copy_(normal(p.shape, sigma_w / math.sqrt(width)))
                elif "bias" in short:
                    p.copy_(normal(p.shape, sigma_b))
        layers.append(m)
        n_in = m.output_size
    return layers


def arc_length(traj: np.ndarray) -> float:
    return float(np.linalg.norm(np.diff(traj, axis=0), axis=1).sum())


def pca2(traj: np.ndarray) -> np.ndarray:
    c = traj - traj.mean(0)
    if not np.isfinite(c).all() or np.allclose(c, 0):
        return np.zeros((len(traj), 2))
    _, _, vt = np.linalg.svd(c, full_matrices=False)
    return c @ vt[:2].T


def trajectory_lengths(kind: str, width: int = 32, depth: int = 4, sigma_w: float = 2.0, sigma_b: float = 1.0,
                       steps: int = 100, seed: int = 0, layers=None, dt: float | None = 1.0) -> dict:
    """Arc length of each layer's latent trajectory for a circular input."""
    import torch

    t = np.linspace(0, 2 * math.pi, steps, endpoint=False)
    x = torch.tensor(np.stack([np.sin(t), np.cos(t)], 1)[None], dtype=torch.float32)
    dt = float(2 * math.pi / steps) if dt is None else float(dt)
    layers = layers or _stack(kind, width, depth, sigma_w, sigma_b, seed)
    full, projected, inp = [], [], x
    with torch.no_grad():
        for m in layers:
            y, _ = m(inp, dt=dt)
            traj = y[0].numpy().astype(np.float64)
            full.append(arc_length(traj))
            projected.append(arc_length(pca2(traj)))
            inp = y
    return {"kind": kind, "width": width, "depth": len(layers), "sigma_w": sigma_w, "sigma_b": sigma_b,
            "input_length": arc_length(x[0].numpy().astype(np.float64)),
            "length_per_layer": full, "pca2_length_per_layer": projected}


def sweep(kinds=KINDS, width=32, depth=4, sigma_ws=(1.0, 2.0, 4.0, 8.0), sigma_b=1.0, steps=1000, seed=0,
          progress=None) -> dict:
    """Lengths for every kind x weight scale (depth is covered by the per-layer list)."""
    runs = []
    for kind in kinds:
        for s in sigma_ws:
            runs.append(trajectory_lengths(kind, width, depth, s, sigma_b, steps, seed))
            if progress:
                progress()
    return {"width": width, "depth": depth, "sigma_ws": list(sigma_ws), "sigma_b": sigma_b, "steps": steps,
            "seed": seed, "runs": runs}


def plot(result: dict, path) -> str:
    from ..plots import COLORS, pyplot, save

    plt = pyplot()
    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    sig = max(result["sigma_ws"])
    for run in result["runs"]:
        if run["sigma_w"] == sig:
            a1.plot(range(1, run["depth"] + 1), run["pca2_length_per_layer"], "o-",
                    color=COLORS.get(run["kind"], "gray"), label=run["kind"])
    a1.set_xlabel("layer (depth)")
    a1.set_ylabel("latent trajectory length (2-D PCA)")
    a1.set_yscale("log")
    a1.set_title(f"length vs depth (σ_w = {sig:g}, width {result['width']})")
    kinds = sorted({r["kind"] for r in result["runs"]}, key=list(CELLS).index)  # any cell kind, CELLS order
    for kind in kinds:
        rs = sorted((r for r in result["runs"] if r["kind"] == kind), key=lambda r: r["sigma_w"])
        a2.plot([r["sigma_w"] for r in rs], [r["pca2_length_per_layer"][-1] for r in rs], "o-",
                color=COLORS.get(kind, "gray"), label=kind)
    a2.set_xlabel("weight scale σ_w")
    a2.set_ylabel(f"length at layer {result['depth']} (2-D PCA)")
    a2.set_yscale("log")
    a2.set_title("length vs weight scale")
    for ax in (a1, a2):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return save(fig, path)
