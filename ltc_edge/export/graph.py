"""Static graphs of a model for export: one step, or a fixed-length sequence, unrolled.

The modules here hold the *prepared* parameters (F.model_prepare: softplus of constrained
parameters, masks, w*erev, ...) as constant buffers and call ltc_edge.nn.functional.model_step,
the one copy of the cell math. Python loops (the LTC's fixed-step solver, the sequence) unroll
at trace time, so the traced graph has no Loop/If/Scan. With `fixed_dt` the elapsed time is a
Python float: everything that depends on it only (cm/Δ, cm/Δ + gleak) becomes constant and is
folded by the exporter, and the graph has no dt input.

Inputs / outputs:  step      x[B, in], state[B, S], dt[B, 1]       -> y[B, out], new_state[B, S]
                   sequence  x[B, T, in], state[B, S], dt[B, T, 1] -> y[B, T, out], new_state[B, S]
(dt only for cells that use elapsed time and when no fixed_dt is given.)
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..nn import functional as F

_SEP = "__"
_ARRAY = "<array>"  # marks an array leaf (a buffer) in the skeleton of a prepared dict


def _flatten(prefix, tree, out):
    for key, value in tree.items():
        name = f"{prefix}{_SEP}{key}" if prefix else key
        if isinstance(value, dict):
            _flatten(name, value, out)
        else:
            out[name] = value
    return out


def _unflatten(flat: dict, skeleton) -> dict:
    def build(prefix, tree):
        res = {}
        for key, value in tree.items():
            name = f"{prefix}{_SEP}{key}" if prefix else key
            res[key] = build(name, value) if isinstance(value, dict) else (flat[name] if value == _ARRAY else value)
        return res

    return build("", skeleton)


def _skeleton(tree):
    """The dict structure with array leaves marked _ARRAY; None and Python scalars kept as is."""
    return {k: (_skeleton(v) if isinstance(v, dict) else
                (v if v is None or isinstance(v, (bool, int, float, str)) else _ARRAY))
            for k, v in tree.items()}


def prepare(config: dict, params: dict, fixed_dt: float | None = None) -> dict:
    """The prepared constants of a model: the graph-friendly form of functional.py where it
    has one (model_prepare_static: e.g. the LTC's synapse lists, cm/Δ folded for a fixed dt),
    otherwise model_prepare's. Either way model_step runs it."""
    xp = F.ops_for(next(iter(params.values())))
    if hasattr(F, "model_prepare_static"):
        return F.model_prepare_static(xp, params, config, fixed_dt=fixed_dt)
    return F.model_prepare(xp, params, config)


def graph_form(P: dict) -> str:
    """'static' when the cell constants are in functional's graph-friendly form, else 'dense'."""
    return "static" if P["cell"].get("static") else "dense"


def uses_dt(config: dict, fixed_dt: float | None = None) -> bool:
    """Whether the exported graph has a dt input."""
    return fixed_dt is None and F.model_uses_dt(config)


class _Prepared(nn.Module):
    def __init__(self, model, fixed_dt: float | None = None):
        super().__init__()
        if fixed_dt is not None:
            fixed_dt = float(fixed_dt)
            if not np.isfinite(fixed_dt) or fixed_dt <= 0:
                raise ValueError(f"--fixed-dt must be a positive number, got {fixed_dt}")
        self.config = model.config
        self.fixed_dt = fixed_dt
        self.has_dt = uses_dt(model.config, fixed_dt)
        self.input_size = model.config["input_size"]
        self.output_size = model.config["output_size"]
        self.state_size = F.state_size(model.config)
        with torch.no_grad():
            params = {k: v.detach().to(torch.float32).clone() for k, v in model.raw_params().items()}
            P = prepare(model.config, params, fixed_dt)
        self.form = graph_form(P)
        self._skel = _skeleton(P)
        for name, value in _flatten("", P, {}).items():
            if self._skel_leaf(name) == _ARRAY:
                self.register_buffer(name, torch.as_tensor(value, dtype=torch.float32).detach().clone())

    def _skel_leaf(self, name):
        node = self._skel
        for part in name.split(_SEP):
            node = node[part]
        return node

    def prepared(self) -> dict:
        return _unflatten(dict(self.named_buffers()), self._skel)

    def _dt(self, dt):
        if self.fixed_dt is not None:
            return self.fixed_dt
        if not self.has_dt:
            return 1.0  # ignored by the cell
        return dt

    def input_names(self):
        return ["x", "state"] + (["dt"] if self.has_dt else [])


class StepGraph(_Prepared):
    """One step: forward(x[B, in], state[B, S], dt[B, 1]) -> (y[B, out], new_state[B, S])."""

    kind = "step"

    def forward(self, x, state, dt=None):
        return F.model_step(F.ops_for(x), self.prepared(), x, state, self._dt(dt), self.config)

    def sample_inputs(self, batch: int = 1):
        args = [torch.zeros(batch, self.input_size), torch.zeros(batch, self.state_size)]
        if self.has_dt:
            args.append(torch.ones(batch, 1))
        return tuple(args)

    def input_shapes(self):
        shapes = {"x": ["batch", self.input_size], "state": ["batch", self.state_size]}
        if self.has_dt:
            shapes["dt"] = ["batch", 1]
        return shapes

    def output_shapes(self):
        return {"y": ["batch", self.output_size], "new_state": ["batch", self.state_size]}


class SequenceGraph(_Prepared):
    """T steps unrolled: forward(x[B, T, in], state[B, S], dt[B, T, 1]) -> (y[B, T, out], state)."""

    kind = "sequence"

    def __init__(self, model, length: int, fixed_dt: float | None = None):
        super().__init__(model, fixed_dt)
        if int(length) < 1:
            raise ValueError(f"sequence length must be >= 1, got {length}")
        self.length = int(length)

    def forward(self, x, state, dt=None):
        P, xp, ys = self.prepared(), F.ops_for(x), []
        for t in range(self.length):
            d = dt[:, t] if (self.has_dt and self.fixed_dt is None) else self._dt(None)
            y, state = F.model_step(xp, P, x[:, t], state, d, self.config)
            ys.append(y)
        return torch.stack(ys, 1), state

    def sample_inputs(self, batch: int = 1):
        args = [torch.zeros(batch, self.length, self.input_size), torch.zeros(batch, self.state_size)]
        if self.has_dt:
            args.append(torch.ones(batch, self.length, 1))
        return tuple(args)

    def input_shapes(self):
        shapes = {"x": ["batch", self.length, self.input_size], "state": ["batch", self.state_size]}
        if self.has_dt:
            shapes["dt"] = ["batch", self.length, 1]
        return shapes

    def output_shapes(self):
        return {"y": ["batch", self.length, self.output_size], "new_state": ["batch", self.state_size]}


def build_graph(model, *, fixed_dt: float | None = None, sequence_length: int | None = None):
    """The static graph module of a Model: a StepGraph, or a SequenceGraph of fixed length."""
    model = model.eval()
    if sequence_length:
        return SequenceGraph(model, sequence_length, fixed_dt).eval()
    return StepGraph(model, fixed_dt).eval()
