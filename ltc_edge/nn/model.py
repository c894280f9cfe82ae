"""Torch side of the models: parameters, initialisation, sequence unrolling, ncps import.

The math is not here: every step calls ltc_edge.nn.functional with the torch namespace.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from . import functional as F
from .schema import CELL_OPTIONS
from .wirings import Wiring, make_wiring

FORMAT = "ltc-edge-model"
FORMAT_VERSION = 1


# --------------------------------------------------------------------------------------
# initialisation (training only; ncps ranges and draw order for the LTC)

_LTC_RANGES = {"gleak": (0.001, 1.0), "vleak": (-0.2, 0.2), "cm": (0.4, 0.6), "sigma": (3, 8),
               "mu": (0.3, 0.8), "w": (0.001, 1.0), "sensory_sigma": (3, 8),
               "sensory_mu": (0.3, 0.8), "sensory_w": (0.001, 1.0)}


def _init_ltc(cfg, shapes):
    adj = np.asarray(cfg["wiring"]["adjacency"], dtype=np.float32)
    sadj = np.asarray(cfg["wiring"]["sensory_adjacency"], dtype=np.float32)
    out = {}
    for name, shape in shapes.items():  # same order as ncps, so torch.manual_seed matches it
        if name in _LTC_RANGES:
            lo, hi = _LTC_RANGES[name]
            out[name] = torch.rand(*shape) * (hi - lo) + lo
        elif name == "erev":
            out[name] = torch.tensor(adj)
        elif name == "sensory_erev":
            out[name] = torch.tensor(sadj)
        elif name.endswith("_w"):
            out[name] = torch.ones(shape)
        else:
            out[name] = torch.zeros(shape)
    return out


def _init_cfc(cfg, shapes):
    out = {}
    for name, shape in shapes.items():
        t = torch.empty(shape)
        if len(shape) == 2:  # ncps: xavier on every 2-D parameter (w_tau and A included)
            nn.init.xavier_uniform_(t)
        else:  # nn.Linear's default bias init
            fan_in = shapes[name.replace("_bias", "_weight")][1]
            nn.init.uniform_(t, -1 / math.sqrt(fan_in), 1 / math.sqrt(fan_in))
        out[name] = t
    return out


def _init_generic(cfg, shapes):
    out, n = {}, cfg["units"]
    for name, shape in shapes.items():
        t = torch.empty(shape)
        if name == "tau":
            t.fill_(math.log(math.e - 1))  # softplus(tau) = 1
        elif name.startswith("weight_hh") and cfg["kind"] in ("ctrnn", "node"):
            nn.init.orthogonal_(t)
        elif len(shape) == 2 and cfg["kind"] in ("ctrnn", "node"):
            nn.init.xavier_uniform_(t)
        elif cfg["kind"] in ("ctrnn", "node"):
            t.zero_()
        else:  # LSTM / GRU: torch's RNN cell init
            nn.init.uniform_(t, -1 / math.sqrt(n), 1 / math.sqrt(n))
        out[name] = t
    if cfg["kind"] == "lstm":
        out["bias"][n:2 * n] = 1.0  # forget-gate bias 1: remember by default
    return out


INITIALIZERS = {"ltc": _init_ltc, "cfc": _init_cfc, "ctrnn": _init_generic, "node": _init_generic,
                "lstm": _init_generic, "gru": _init_generic}

# Parameters that must stay >= 0 when the LTC is trained without softplus (ncps clips them)
_LTC_NONNEG = ("w", "sensory_w", "cm", "gleak")


# --------------------------------------------------------------------------------------
# configs


def make_config(kind: str, input_size: int, output_size: int | None = None, *, units: int = 32,
                wiring: Wiring | str | None = None, wiring_args: dict | None = None,
                readout: bool | None = None, normalization: dict | None = None,
                dt_input: float | None = None, **cell_options) -> dict:
    """A model config (what goes into the .safetensors metadata).

    kind: ltc, cfc, ctrnn, node, lstm, gru. wiring: a Wiring, or a registry name (full,
    random, ncp, auto-ncp) with wiring_args; needed for ltc (default: full), optional for cfc.
    readout: a linear layer from the cell's outputs to output_size; None means "only if the
    cell's own output size differs from output_size". dt_input: give the cell dt / dt_input
    as one more input (a discrete cell such as an LSTM then sees the elapsed time).
    """
    F.cell_spec(kind)
    input_size = int(input_size)
    if input_size < 1:
        raise ValueError(f"input_size must be >= 1, got {input_size}")
    if dt_input is not None and not (isinstance(dt_input, (int, float)) and 0 < dt_input < float("inf")):
        raise ValueError(f"dt_input (the dt scale) must be a number > 0, got {dt_input!r}")
    n_cell_in = input_size + (dt_input is not None)
    cell = {"kind": kind, "input_size": n_cell_in, "units": int(units)}
    wiring = _wiring_for(kind, wiring, wiring_args, n_cell_in, units, output_size)
    if wiring is not None:
        cell["wiring"] = wiring.to_config()
        cell["units"] = wiring.units
    if kind == "ltc":
        cell.update({"motor_size": cell["wiring"]["output_dim"], "ode_unfolds": 6, "epsilon": 1e-8,
                     "implicit_param_constraints": False, "input_mapping": "affine",
                     "output_mapping": "affine", "solver": "semi_implicit"})
    elif kind == "cfc":
        cell.update({"mode": "default", "activation": "lecun_tanh"})
        if wiring is None:
            cell.update({"backbone_units": 128, "backbone_layers": 1})
    elif kind in ("ctrnn", "node"):
        cell.update({"ode_unfolds": 6, "solver": "euler" if kind == "ctrnn" else "rk4"})
    unknown = set(cell_options) - _CELL_OPTIONS.get(kind, set())
    if unknown:
        raise ValueError(f"unknown option(s) for {kind}: {', '.join(sorted(unknown))}")
    cell.update(cell_options)
    cell_out = F.cell_spec(kind).output_size(cell)
    if output_size is None:
        output_size = cell_out
    if readout is None:
        readout = int(output_size) != cell_out
    if not readout and int(output_size) != cell_out:
        raise ValueError(f"output_size {output_size} differs from the cell's {cell_out} outputs: "
                         "use a readout layer")
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "input_size": input_size,
              "output_size": int(output_size), "readout": bool(readout), "cell": cell,
              "normalization": normalization}
    if dt_input is not None:
        config["dt_input"] = {"scale": float(dt_input)}
    F.model_shapes(config)  # raises on inconsistent sizes
    return config


def _wiring_for(kind, wiring, wiring_args, n_in, units, output_size):
    """A built Wiring (or None) from a Wiring or a registry name + args; ltc defaults to full."""
    if isinstance(wiring, str):
        args = dict(wiring_args or {})
        if wiring in ("full", "random"):
            args.setdefault("units", units)
        elif wiring == "auto-ncp":
            args.setdefault("units", units)
            args.setdefault("output_size", output_size or max(1, units // 4))
        wiring = make_wiring(wiring, n_in, **args)
    if kind == "ltc" and wiring is None:
        wiring = make_wiring("full", n_in, units=units)
    if wiring is not None:
        if kind not in ("ltc", "cfc"):
            raise ValueError(f"cell kind {kind!r} takes no wiring (only ltc and cfc do)")
        wiring.build(n_in)
    return wiring


# options a caller may set per kind: the schema's table (ltc_edge/nn/schema.py), less the
# wiring-derived ones make_config fills in itself
_CELL_OPTIONS = {kind: set(checks) - {"wiring", "motor_size"} for kind, (checks, _) in CELL_OPTIONS.items()}


# --------------------------------------------------------------------------------------
# the model


class Model(nn.Module):
    """A recurrent model: normalisation -> cell -> optional linear readout.

    `step(x, state, dt)` advances one step; `forward(x, dt, state)` runs a batch-first
    sequence. Elapsed time `dt` is a float, or per sample and step: [B, T] / [B, T, 1].
    """

    def __init__(self, config: dict, params: dict | None = None):
        super().__init__()
        self.config = config
        shapes = F.model_shapes(config)
        cell_cfg = config["cell"]
        if params is None:
            cell_shapes = {k[5:]: v for k, v in shapes.items() if k.startswith("cell.")}
            params = {f"cell.{k}": v for k, v in INITIALIZERS[cell_cfg["kind"]](cell_cfg, cell_shapes).items()}
            if config["readout"]:
                lin = nn.Linear(shapes["readout.weight"][1], shapes["readout.weight"][0])
                params["readout.weight"], params["readout.bias"] = lin.weight.data, lin.bias.data
        self.cell = nn.Module()
        self.readout = nn.Module()
        for name, shape in shapes.items():
            holder, short = name.split(".", 1)
            value = torch.as_tensor(np.asarray(params[name]) if not torch.is_tensor(params[name])
                                    else params[name].detach(), dtype=torch.float32).clone()
            if tuple(value.shape) != tuple(shape):
                raise ValueError(f"parameter {name} has shape {tuple(value.shape)}, expected {tuple(shape)}")
            getattr(self, holder).register_parameter(short, nn.Parameter(value))

    # -- sizes -------------------------------------------------------------------------
    @property
    def kind(self) -> str:
        return self.config["cell"]["kind"]

    @property
    def input_size(self) -> int:
        return self.config["input_size"]

    @property
    def output_size(self) -> int:
        return self.config["output_size"]

    @property
    def state_size(self) -> int:
        return F.state_size(self.config)

    def raw_params(self) -> dict:
        return dict(self.named_parameters())

    def prepared(self, training: bool = False) -> dict:
        """The parameter-only constants of a step; training=True: the form that trains fastest
        (an LTC with a sparse wiring: synapse lists), the same outputs to float rounding."""
        prepare = F.model_prepare_training if training else F.model_prepare
        return prepare(F.ops_for(next(self.parameters())), self.raw_params(), self.config)

    def initial_state(self, batch: int = 1) -> torch.Tensor:
        p = next(self.parameters())
        return torch.zeros(batch, self.state_size, dtype=p.dtype, device=p.device)

    # -- running -----------------------------------------------------------------------
    def step(self, x, state=None, dt=None, prepared=None):
        """One step: x[B, in] -> (y[B, out], new_state[B, state])."""
        if x.dim() != 2 or x.shape[1] != self.input_size:
            raise ValueError(f"step expects x of shape [batch, {self.input_size}], got {tuple(x.shape)}")
        P = self.prepared() if prepared is None else prepared
        state = self.initial_state(x.shape[0]) if state is None else state
        return F.model_step(F.ops_for(x), P, x, state, _step_dt(dt, x), self.config)

    def forward(self, x, dt=None, state=None, return_sequences: bool = True):
        """x[B, T, in] -> (y[B, T, out] or y[B, out], final state[B, state])."""
        if x.dim() != 3 or x.shape[2] != self.input_size:
            raise ValueError(f"expected x of shape [batch, time, {self.input_size}], got {tuple(x.shape)}")
        B, T, _ = x.shape
        P = self.prepared()
        h = self.initial_state(B) if state is None else state
        if h.shape != (B, self.state_size):
            raise ValueError(f"state must have shape {(B, self.state_size)}, got {tuple(h.shape)}")
        dts = _sequence_dt(dt, B, T, x)
        xp = F.ops_for(x)
        ys = []
        for t in range(T):
            y, h = F.model_step(xp, P, x[:, t], h, dts[t], self.config)
            ys.append(y)
        return (torch.stack(ys, 1) if return_sequences else ys[-1]), h

    @torch.no_grad()
    def apply_constraints(self):
        """ncps's apply_weight_constraints: clip LTC conductances and capacitances at 0
        when they are not kept positive by softplus. Call after each optimiser step."""
        cfg = self.config["cell"]
        if cfg["kind"] == "ltc" and not cfg.get("implicit_param_constraints", False):
            for name in _LTC_NONNEG:
                getattr(self.cell, name).clamp_(min=0)

    def counts(self) -> dict:
        cfg = self.config["cell"]
        wiring = cfg.get("wiring")
        synapses = sensory = None
        if wiring:
            synapses = int(np.abs(np.asarray(wiring["adjacency"])).sum())
            sensory = int(np.abs(np.asarray(wiring["sensory_adjacency"])).sum())
        return {"neurons": cfg["units"], "synapses": synapses, "sensory_synapses": sensory,
                "parameters": int(sum(p.numel() for p in self.parameters())),
                "state_size": self.state_size}


def _step_dt(dt, x):
    if dt is None:
        return 1.0
    if isinstance(dt, (int, float)):
        return float(dt)
    dt = torch.as_tensor(dt, dtype=x.dtype, device=x.device)
    return dt.reshape(-1, 1) if dt.dim() <= 1 and dt.numel() == x.shape[0] else dt


def _sequence_dt(dt, B, T, x):
    """Per-step elapsed times: a list of T floats or [B, 1] tensors."""
    if dt is None or isinstance(dt, (int, float)):
        return [1.0 if dt is None else float(dt)] * T
    dt = torch.as_tensor(dt, dtype=x.dtype, device=x.device)
    if dt.dim() == 3 and dt.shape[2] == 1:
        dt = dt[:, :, 0]
    if dt.dim() == 1 and dt.shape[0] == T:
        dt = dt.expand(B, T)
    if dt.shape != (B, T):
        raise ValueError(f"dt must be a float, [T], [B, T] or [B, T, 1] (B={B}, T={T}), got {tuple(dt.shape)}")
    return [dt[:, t:t + 1] for t in range(T)]


def build_model(kind: str, input_size: int, output_size: int | None = None, *, seed: int | None = None,
                **kwargs) -> Model:
    """Make a freshly initialised model, e.g. build_model("ltc", 8, wiring="auto-ncp", units=19, output_size=4)."""
    config = make_config(kind, input_size, output_size, **kwargs)
    if seed is not None:
        torch.manual_seed(seed)
    return Model(config)


# --------------------------------------------------------------------------------------
# ncps import


def _ncps_wiring_config(w) -> dict:
    return {"kind": {"FullyConnected": "full", "Random": "random", "NCP": "ncp", "AutoNCP": "auto-ncp"}
            .get(type(w).__name__, "custom"),
            "args": {}, "units": int(w.units), "input_dim": int(w.input_dim), "output_dim": int(w.output_dim),
            "layers": [list(map(int, w.get_neurons_of_layer(i))) for i in range(w.num_layers)],
            "neuron_types": [w.get_type_of_neuron(i) for i in range(w.units)],
            "adjacency": np.asarray(w.adjacency_matrix).astype(int).tolist(),
            "sensory_adjacency": np.asarray(w.sensory_adjacency_matrix).astype(int).tolist()}


def _apply_ncps_masks(wiring: dict, cell) -> None:
    """ncps multiplies w by the cell's own sparsity masks, which a user may have edited after
    building the wiring (pruning zeroes entries): the masks, not the wiring, are what runs."""
    for key, mask_name in (("adjacency", "sparsity_mask"), ("sensory_adjacency", "sensory_sparsity_mask")):
        mask = cell._params[mask_name].detach().cpu().numpy()
        if not np.isin(mask, (0.0, 1.0)).all():
            raise ValueError(f"from_ncps: the LTC's {mask_name} holds values other than 0 and 1; "
                             "only binary masks (the wiring, optionally pruned) can be converted")
        adj = np.asarray(wiring[key])
        polarity = np.where(adj < 0, -1, 1)  # erev is a parameter; a synapse added by hand counts as excitatory
        wiring[key] = (polarity * mask.astype(int)).tolist()


def from_ncps(module, dt: float = 1.0) -> Model:
    """Convert an in-memory ncps.torch LTC / LTCCell / CfC / CfCCell / WiredCfCCell (with its
    wiring) into an ltc-edge Model computing the same outputs and states.

    `dt`: the elapsed time per step the module was trained with, in the unit its timespans
    were in. ncps steps by 1.0 when forward() is given no timespans, hence the default; a model
    trained with timespans in seconds at 200 Hz: dt=0.005. It is recorded as the model's
    training dt (`config["task"]["dt"]`): a step without dt uses it, and `ltc info`, the C header
    and the model card state it."""
    task = _ncps_task(dt)
    name = type(module).__name__
    readout = None
    if name in ("LTC", "CfC"):
        if getattr(module, "use_mixed", False):
            raise ValueError("mixed_memory=True (an extra LSTM) is not supported by ltc-edge")
        if name == "CfC" and not isinstance(module.fc, nn.Identity):
            readout = module.fc
        module = module.rnn_cell
        name = type(module).__name__
    params = {}
    if name == "LTCCell":
        wiring = _ncps_wiring_config(module._wiring)
        _apply_ncps_masks(wiring, module)
        cell = {"kind": "ltc", "input_size": wiring["input_dim"], "units": wiring["units"], "wiring": wiring,
                "motor_size": wiring["output_dim"], "ode_unfolds": int(module._ode_unfolds),
                "epsilon": float(module._epsilon),
                "implicit_param_constraints": bool(module._implicit_param_constraints),
                "input_mapping": module._input_mapping, "output_mapping": module._output_mapping,
                "solver": "semi_implicit"}
        for k in F.ltc_shapes(cell):
            params[f"cell.{k}"] = module._params[k]
    elif name == "CfCCell":
        linears = [m for m in (module.backbone or []) if isinstance(m, nn.Linear)]
        acts = [type(m).__name__ for m in (module.backbone or []) if not isinstance(m, (nn.Linear, nn.Dropout))]
        act = {"LeCun": "lecun_tanh", "SiLU": "silu", "ReLU": "relu", "Tanh": "tanh", "GELU": "gelu"}[acts[0]] \
            if acts else "lecun_tanh"
        if module.sparsity_mask is not None:
            raise ValueError("a bare CfCCell with a sparsity mask: convert the WiredCfCCell or CfC instead")
        cell = {"kind": "cfc", "input_size": module.input_size, "units": module.hidden_size,
                "mode": module.mode, "activation": act,
                "backbone_units": linears[0].out_features if linears else 0,
                "backbone_layers": len(linears)}
        params.update(_ncps_cfc_block(module, "", linears))
    elif name == "WiredCfCCell":
        wiring = _ncps_wiring_config(module._wiring)
        cell = {"kind": "cfc", "input_size": wiring["input_dim"], "units": wiring["units"], "wiring": wiring,
                "mode": module._layers[0].mode, "activation": "lecun_tanh"}
        for li, layer in enumerate(module._layers):
            params.update(_ncps_cfc_block(layer, f"layer{li}_", []))
    else:
        raise TypeError(f"from_ncps: unsupported module {type(module).__name__} "
                        "(expected ncps.torch LTC, LTCCell, CfC, CfCCell or WiredCfCCell)")
    cell_out = F.cell_spec(cell["kind"]).output_size(cell)
    config = {"format": FORMAT, "format_version": FORMAT_VERSION, "input_size": cell["input_size"],
              "output_size": readout.out_features if readout is not None else cell_out,
              "readout": readout is not None, "cell": cell, "normalization": None, "task": task}
    if readout is not None:
        params["readout.weight"], params["readout.bias"] = readout.weight, readout.bias
    return Model(config, {k: v.detach().float() for k, v in params.items()})


def _ncps_task(dt) -> dict:
    """config["task"] of an ncps import: only the training dt (no task to re-load)."""
    if not (isinstance(dt, (int, float)) and not isinstance(dt, bool) and 1e-30 <= dt <= 1e12):
        raise ValueError(f"from_ncps: dt must be a positive number (the training time step), got {dt!r}")
    return {"dt": {"median": float(dt), "min": float(dt), "max": float(dt), "mean": float(dt), "std": 0.0}}


def _ncps_cfc_block(cell, prefix, linears):
    out = {f"{prefix}backbone{k}_weight": lin.weight for k, lin in enumerate(linears)}
    out.update({f"{prefix}backbone{k}_bias": lin.bias for k, lin in enumerate(linears)})
    heads = ["ff1"] if cell.mode == "pure" else ["ff1", "ff2", "time_a", "time_b"]
    for head in heads:
        lin = getattr(cell, head)
        out[f"cell.{prefix}{head}_weight"] = lin.weight
        out[f"cell.{prefix}{head}_bias"] = lin.bias
    if cell.mode == "pure":
        out[f"cell.{prefix}w_tau"], out[f"cell.{prefix}A"] = cell.w_tau, cell.A
    return {(k if k.startswith("cell.") else f"cell.{k}"): v for k, v in out.items()}
