"""Magnitude pruning of wired synapses (LTC paper's sparsity experiments).

A synapse's magnitude is its effective maximum conductance w (softplus'd when the model uses
implicit constraints). Pruning removes the weakest fraction of the existing synapses from the
wiring's adjacency matrices; since every consumer (training masks, exported constants, the C
loops over synapse lists) derives sparsity from the adjacency, the pruned net stays pruned
through fine-tuning and export without any extra mask.
"""

from __future__ import annotations

import copy

import numpy as np


# an LTC's synapse tensors: wiring adjacency key -> the parameter of the synapses' strength w
SYNAPSE_TENSORS = {"adjacency": "cell.w", "sensory_adjacency": "cell.sensory_w"}


def synapse_strength(w: np.ndarray, implicit: bool) -> np.ndarray:
    """The effective maximum conductance of raw parameters w (softplus'd under implicit constraints)."""
    return np.logaddexp(0.0, w) if implicit else np.abs(w)


def prune_config(config: dict, tensors: dict, sparsity: float, include_sensory: bool = True) -> dict:
    """A new config whose wiring keeps the strongest (1 - sparsity) of the existing synapses.

    `sparsity` is the fraction of the currently existing synapses to remove, applied to the
    recurrent and (if include_sensory) the sensory synapses separately, so both keep the same
    share. Ties are broken by position, deterministically.
    """
    if not 0.0 <= sparsity < 1.0:
        raise ValueError(f"sparsity must be in [0, 1), got {sparsity}")
    cell = config["cell"]
    if cell["kind"] != "ltc":
        raise ValueError(f"pruning works on wired synapses of LTC models; this model is {cell['kind']!r}")
    implicit = cell.get("implicit_param_constraints", False)
    new = copy.deepcopy(config)
    wiring = new["cell"]["wiring"]
    pairs = [(k, v) for k, v in SYNAPSE_TENSORS.items() if include_sensory or k == "adjacency"]
    for adj_key, w_key in pairs:
        adj = np.asarray(wiring[adj_key])
        mag = synapse_strength(np.asarray(tensors[w_key], dtype=np.float64), implicit)
        idx = np.flatnonzero(adj.ravel() != 0)
        n_remove = int(round(sparsity * idx.size))
        if n_remove == 0:
            continue
        order = idx[np.argsort(mag.ravel()[idx], kind="stable")]
        flat = adj.ravel().copy()
        flat[order[:n_remove]] = 0
        wiring[adj_key] = flat.reshape(adj.shape).astype(int).tolist()
    wiring["args"] = {**wiring.get("args", {}), "pruned_sparsity": sparsity}
    return new


def prune_model(model, sparsity: float, include_sensory: bool = True):
    """A pruned copy of a torch Model (same parameters; removed synapses are masked)."""
    from .model import Model

    tensors = {k: v.detach().cpu().numpy() for k, v in model.state_dict().items()}
    return Model(prune_config(model.config, tensors, sparsity, include_sensory), tensors)


def synapse_counts(config: dict) -> dict:
    w = config["cell"].get("wiring")
    if not w:
        return {"synapses": None, "sensory_synapses": None}
    return {"synapses": int(np.count_nonzero(w["adjacency"])),
            "sensory_synapses": int(np.count_nonzero(w["sensory_adjacency"]))}
