"""Isolation during training (`ltc train --isolate FRACTION --isolate-by STAT --isolate-at EPOCH`):
after EPOCH epochs, the FRACTION of the cell's connections whose removal costs least by STAT are cut
out of training: set to zero, frozen (no gradient, no Adam moments), and for an LTC removed from
the wiring, so the training step computes only the synapses that are left (the synapse-list form,
functional.ltc_prepare_lists) and the exports skip them as they skip any absent synapse.

Connections: an LTC's synapses (recurrent and sensory; all four parameters of a synapse go with
it), every other cell's weight-matrix entries (biases, the readout and the LTC's per-neuron
parameters stay). A dense matrix product costs the same with zeros in it, so an LSTM, GRU, CfC,
CT-RNN or ODE-RNN gets smaller and no faster; the log says so.

The statistics score a connection's removal (lowest first), from the epoch before isolation:
  magnitude  |w|
  gradient   mean over batches of |w * dL/dw|      (first-order loss change of setting w to 0)
  fisher     mean over batches of (dL/dw)^2 * w^2 / 2 (empirical-Fisher estimate of the same)
The fraction applies to each weight tensor separately (an LTC's recurrent and sensory synapses keep
the same share). The model file records it in config["isolation"]; an LTC's adjacency is the list
of what is left, another cell's isolated entries are its exact zeros in the named tensors.
"""

from __future__ import annotations

import numpy as np

from ..errors import LtcEdgeError
from ..nn.prune import SYNAPSE_TENSORS, synapse_strength
from .options import choice, fraction, integer

# score(strength, w, mean |w*g|, mean g^2); strength: |w|, or an LTC's effective conductance (as `ltc prune`)
STATISTICS = {  # the names are nn.schema.ISOLATE_BY (what a model file may record)
    "magnitude": lambda strength, w, wg_abs, g_sq: strength,
    "gradient": lambda strength, w, wg_abs, g_sq: wg_abs,
    "fisher": lambda strength, w, wg_abs, g_sq: 0.5 * g_sq * w * w,
}
LTC_SYNAPSES = {w: adj for adj, w in SYNAPSE_TENSORS.items()}  # parameter -> adjacency key


def check_isolation(isolate, by: str, at: int, epochs: int) -> None:
    """One-line errors for options no run can use (before any data is read)."""
    if isolate is None:
        return
    fraction(isolate, "--isolate")
    choice(by, STATISTICS, "--isolate-by")
    if epochs is not None and epochs < 1:
        raise LtcEdgeError(f"--isolate needs --epochs 1 or more, got {epochs}")
    integer(at, "--isolate-at", 0, None if epochs is None else epochs - 1)
    if at == 0 and by != "magnitude":
        raise LtcEdgeError(f"--isolate-by {by} needs gradients from at least one epoch: --isolate-at 1 or later "
                           "(or --isolate-by magnitude to isolate before training)")


def candidates(model) -> dict:
    """{parameter name: bool mask of the entries that are connections now}."""
    params = dict(model.named_parameters())
    if model.kind == "ltc":
        wiring = model.config["cell"]["wiring"]
        return {name: np.abs(np.asarray(wiring[key])) > 0 for name, key in LTC_SYNAPSES.items()}
    return {n: np.ones(tuple(p.shape), bool) for n, p in params.items() if n.startswith("cell.") and p.dim() == 2}


class GradStats:
    """Per-entry mean |w * g| and mean g^2 of the candidate tensors over the batches of an epoch."""

    def __init__(self, model):
        import torch

        self.params = {n: p for n, p in model.named_parameters() if n in candidates(model)}
        self.abs = {n: torch.zeros_like(p) for n, p in self.params.items()}
        self.sq = {n: torch.zeros_like(p) for n, p in self.params.items()}
        self.batches = 0

    def add(self) -> None:
        for n, p in self.params.items():
            if p.grad is not None:  # no gradient: nothing to add
                g = p.grad.detach()
                self.abs[n] += (g * p.detach()).abs()
                self.sq[n] += g * g
        self.batches += 1

    def mean(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        k = max(self.batches, 1)
        return (self.abs[name] / k).numpy().astype(np.float64), (self.sq[name] / k).numpy().astype(np.float64)


def choose(model, fraction: float, by: str, stats: GradStats | None) -> dict:
    """{parameter name: bool mask of the entries to isolate}: per tensor, the `fraction` of its
    current connections with the lowest score (ties by position)."""
    out = {}
    params = dict(model.named_parameters())
    implicit = model.kind == "ltc" and model.config["cell"].get("implicit_param_constraints", False)
    for name, live in candidates(model).items():
        w = params[name].detach().numpy().astype(np.float64)
        wg_abs, g_sq = stats.mean(name) if stats is not None else (None, None)
        score = STATISTICS[by](synapse_strength(w, implicit), w, wg_abs, g_sq)
        idx = np.flatnonzero(live.ravel())
        n = int(round(fraction * idx.size))
        cut = np.zeros(w.size, bool)
        cut[idx[np.argsort(score.ravel()[idx], kind="stable")[:n]]] = True
        out[name] = cut.reshape(w.shape)
    return out


def apply(model, optim, cut: dict, record: dict) -> str:
    """Zero the chosen entries and their Adam moments (with zero gradients from then on, Adam leaves
    them at zero), and remove an LTC's chosen synapses from its wiring (the mask then zeroes their
    gradients); another cell's entries get a gradient mask (freeze). Returns the log line."""
    import torch

    params = dict(model.named_parameters())
    ltc = model.kind == "ltc"
    before = {n: int(v.sum()) for n, v in candidates(model).items()}
    for name, mask in cut.items():
        m = torch.as_tensor(mask)
        for p in [params[n] for n in synapse_params(name)] if ltc else [params[name]]:
            p.data[m] = 0.0
            for moment in optim.state.get(p, {}).values():
                if torch.is_tensor(moment) and moment.shape == p.shape:
                    moment[m] = 0.0
        if ltc:
            wiring = model.config["cell"]["wiring"]
            adj = np.asarray(wiring[LTC_SYNAPSES[name]]).copy()
            adj[mask] = 0
            wiring[LTC_SYNAPSES[name]] = adj.astype(int).tolist()
        else:
            freeze(params[name], mask)
    model.config["isolation"] = {**record, "isolated": {n: int(v.sum()) for n, v in cut.items()},
                                 "left": {n: int(v.sum()) for n, v in candidates(model).items()} if ltc else None}
    speed = "the step now computes only the synapses left" if ltc else \
        "the dense step costs the same (zeros in a matrix product): smaller, not faster"
    return (f"isolated {record['fraction']:.0%} by {record['by']} after epoch {record['at_epoch']}: "
            + ", ".join(f"{n} {int(v.sum())} of {before[n]}" for n, v in cut.items()) + f"; {speed}")


def synapse_params(name: str) -> list[str]:
    """An LTC synapse's four parameters, named from its weight tensor (cell.w or cell.sensory_w)."""
    prefix = name[:-1]  # "cell." or "cell.sensory_"
    return [prefix + short for short in ("w", "erev", "mu", "sigma")]


def freeze(p: torch.Tensor, mask: np.ndarray) -> None:
    """Keep p's masked entries where they are: their gradient is zeroed before the optimiser sees it."""
    import torch

    keep = torch.as_tensor(~mask, dtype=p.dtype)
    p.register_hook(lambda g: g * keep)


def unwired(cell: dict) -> dict:
    """A cell config without its adjacency matrices: what an isolated run shares with its start."""
    wiring = cell.get("wiring")
    if not wiring:
        return cell
    return {**cell, "wiring": {k: v for k, v in wiring.items() if k not in ("adjacency", "sensory_adjacency")}}


def restore(model) -> None:
    """After resuming an isolated run: freeze again what the record names (LTC: the wiring already
    holds it). The isolated entries of another cell are its exact zeros in the named tensors."""
    rec = model.config.get("isolation")
    if not rec or model.kind == "ltc":
        return
    params = dict(model.named_parameters())
    for name in rec["isolated"]:
        freeze(params[name], params[name].detach().numpy() == 0.0)
