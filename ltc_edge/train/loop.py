"""The training loop: Adam, BPTT through the unrolled solver, gradient clipping, the LTC
constraints after every step, best-on-validation checkpointing and exact resume.

Resume is exact because nothing random is carried between epochs except what the
checkpoint holds: the batch order of epoch e is a permutation drawn from
numpy.random.default_rng([seed, e]); the checkpoint (written atomically after every
epoch) holds the parameters, Adam's state, the best model so far and the history.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch.utils.checkpoint import CheckpointPolicy, checkpoint, create_selective_checkpoint_contexts

from ..fileio import LIMITS, atomic_write_bytes, read_bytes
from ..machine import machine_info
from ..nn import functional as F
from ..nn import modelfile
from ..nn.model import Model, make_config
from ..nn.wirings import WIRINGS
from . import isolate, native
from .options import COMPILE_NOTICE, MAX_UNITS, NATIVE_NOTICE, integer
from .outputs import check_outputs, checkpoint_path, metrics_path  # noqa: F401  (re-exported)
from .streaming import final_streaming
from .taskdata import Split, TaskData

MODELS = tuple(F.CELLS)
WIRED_MODELS = ("ltc", "cfc")  # the cells that take a wiring
CHECKPOINT_VERSION = 1


def default_lr(task: TaskData, kind: str) -> float:
    lrs = task.defaults.get("lr", {})
    return float(lrs.get(kind, lrs.get("default", 0.001)))


def build_task_model(task: TaskData, kind: str, *, units: int = 32, wiring: str | None = None,
                     wiring_args: dict | None = None, seed: int = 0, dt_input: bool = False,
                     **cell_options) -> Model:
    """A freshly initialised model for a task (torch.manual_seed(seed) before the init).

    ltc: wiring defaults to full (the paper's fully connected LTC), with every neuron an
    output and a linear readout to the task's outputs. ncp / auto-ncp: the task's outputs are
    the motor neurons when they are few (<= units // 4), else units // 4 motor neurons and
    a readout (a linear readout from units // 4 motor neurons trains much faster than
    10 motor neurons used directly as logits). dt_input: the cell also gets dt divided by
    the training data's median dt (for discrete cells: an LSTM that knows the elapsed time).
    """
    if kind not in MODELS:
        raise ValueError(f"unknown model {kind!r}; choose one of {', '.join(MODELS)}")
    integer(units, "units", 1, MAX_UNITS)
    out = task.output_size
    wargs = dict(wiring_args or {})
    if wiring is not None and kind not in WIRED_MODELS:
        raise ValueError(f"--wiring applies to ltc and cfc only, not {kind}")
    if kind == "ltc" and wiring is None:
        wiring = "full"
    check_wiring_args(wiring, wargs)
    if wiring in ("ncp", "auto-ncp"):
        motor = int(wargs.pop("output_size", wargs.pop("motor_neurons", 0))) or \
            (out if out <= units // 4 else max(1, units // 4))
        if wiring == "auto-ncp":
            wargs.setdefault("output_size", motor)
        else:
            wargs = _ncp_args(units, motor, wargs)
    if wiring == "random":
        wargs.setdefault("sparsity_level", 0.5)
    try:
        config = make_config(kind, task.input_size, out, units=units, wiring=wiring,
                             wiring_args=wargs or None, normalization=task.normalization,
                             dt_input=median_dt(task) if dt_input else None, **cell_options)
    except TypeError as e:  # a wiring argument of the wrong type
        raise ValueError(f"wiring arguments {json.dumps(wiring_args)}: {e}") from None
    torch.manual_seed(seed)
    model = Model(config)
    dt = task.info.get("dt")
    if kind == "ltc" and dt:
        # ncps's capacitance init (0.4-0.6) assumes an elapsed time of 1 per step; a task
        # stepping dt seconds gets cm * dt, so the initial neuron dynamics per step are the
        # same (the trained model still takes real elapsed times).
        with torch.no_grad():
            model.cell.cm.mul_(float(dt))
    return model


def median_dt(task: TaskData) -> float:
    """The training split's median elapsed time per step (1.0 when the task has no dt)."""
    dt = task.train.dt
    return 1.0 if dt is None else float(np.median(dt))


NEURON_ARGS = {"units", "output_size", "output_dim", "motor_neurons", "inter_neurons", "command_neurons",
               "sensory_fanout", "inter_fanout", "recurrent_command_synapses", "motor_fanin"}


def check_wiring_args(wiring: str | None, wargs: dict) -> None:
    """Only arguments the wiring takes; neuron counts within MAX_UNITS (a wiring's adjacency
    is units^2, allocated before any other check could run)."""
    if not wargs:
        return
    if wiring is None:
        raise ValueError("wiring arguments need a wiring: pass --wiring (ltc and cfc only)")
    allowed = set(inspect.signature(WIRINGS[wiring]).parameters)
    if wiring in ("ncp", "auto-ncp"):
        allowed |= {"output_size", "motor_neurons"}  # the motor neurons, read by build_task_model
    unknown = sorted(set(wargs) - allowed)
    if unknown:
        raise ValueError(f"wiring {wiring} takes no argument {', '.join(map(repr, unknown))}; "
                         f"it takes {', '.join(sorted(allowed))}")
    for k in sorted(NEURON_ARGS & set(wargs)):
        v = wargs[k]
        if isinstance(v, bool) or not isinstance(v, int) or not 1 <= v <= MAX_UNITS:
            raise ValueError(f"wiring argument {k} must be an integer from 1 to {MAX_UNITS}, got {v!r}")
    v = wargs.get("sparsity_level", 0.0)
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v < 1:
        raise ValueError(f"wiring argument sparsity_level must be a number in [0, 1), got {v!r}")


def _ncp_args(units, motor, wargs):
    """Explicit NCP layer sizes from a neuron budget (AutoNCP's proportions, 50% density)."""
    if units - motor < 2:
        raise ValueError(f"ncp wiring: {units} units leave too few for inter and command neurons "
                         f"after {motor} motor neurons")
    rest = units - motor
    inter = max(1, int(round(rest * 0.6)))
    command = max(1, rest - inter)
    args = {"inter_neurons": inter, "command_neurons": command, "motor_neurons": motor,
            "sensory_fanout": max(1, int(inter * 0.5)), "inter_fanout": max(1, int(command * 0.5)),
            "recurrent_command_synapses": max(1, int(command * 0.5 * 2)),
            "motor_fanin": max(1, int(command * 0.5))}
    args.update(wargs)
    return args


# --------------------------------------------------------------------------------------
# running sequences


# --compile keeps the sigmoid gates and matrix products of the forward pass for the backward
# instead of recomputing them (the exp in every gate is most of an LTC unfold's cost): 1.20x
# faster steps on the cheetah LTC-32 (benchmarks/train_speed.py), at the memory of one float per gate,
# so only while a chunk's saved gates stay under this many bytes (a large model recomputes them).
SAVE_GATES_MAX_BYTES = 32 * 2**20
_SAVED_OPS = (torch.ops.aten.sigmoid.default, torch.ops.aten.mm.default, torch.ops.aten.addmm.default)


def _save_gates_policy(ctx, op, *args, **kwargs):
    return CheckpointPolicy.MUST_SAVE if op in _SAVED_OPS else CheckpointPolicy.PREFER_RECOMPUTE


def make_step_fn(config: dict, compile: bool = False, chunk: int = 1, save_gates: bool = True,
                 use_native: bool = True):
    """run(P, x[B, K, in], h[B, S], dt None or [B, K]) -> (y[B, K, out], h): K steps of
    F.model_step with the torch namespace, optionally torch.compile'd as one graph (fixed
    shapes; the first call per shape compiles). `chunk` is how many steps one compiled
    graph unrolls: 1 compiles in ~10 s; 4 compiles longer but trains ~25% faster. save_gates
    (compiled only): keep the forward's gates for the backward (SAVE_GATES_MAX_BYTES).
    Compiled, a dense LTC runs whole windows in the native kernel instead (train/native.py:
    no compile wait, about 2x faster) where it applies and use_native; the torch.compile'd
    graph, built only when first called, runs where it does not."""
    xp = F.ops_for(torch.zeros(1))

    def steps(P, x, h, dt):
        ys = []
        for i in range(x.shape[1]):
            y, h = F.model_step(xp, P, x[:, i], h, 1.0 if dt is None else dt[:, i:i + 1], config)
            ys.append(y)
        return torch.stack(ys, 1), h

    if not compile:
        steps.chunk = 1
        return steps

    def run(P, x, h, dt):  # shapes are fixed per compiled graph: the size check runs once, when tracing
        if not save_gates or native.gate_bytes(config, x.shape[0], x.shape[1]) > SAVE_GATES_MAX_BYTES:
            return steps(P, x, h, dt)
        return checkpoint(steps, P, x, h, dt, use_reentrant=False,
                          context_fn=partial(create_selective_checkpoint_contexts, _save_gates_policy))

    compiled = torch.compile(run, dynamic=False)
    compiled.chunk = max(1, int(chunk))
    compiled.native, compiled.notice = _native_or_why(config, use_native)
    return compiled


def _native_or_why(config: dict, use_native: bool) -> tuple[bool, str]:
    """Whether --compile's step runs the native LTC kernel (train/native.py), and the log line
    saying which step runs."""
    why = native.dense_ltc(config) if use_native else "not asked for"
    if why is None:
        try:
            native.library()
            return True, NATIVE_NOTICE
        except native.NativeUnavailable as e:
            why = str(e)
    return False, f"{COMPILE_NOTICE} (the native LTC kernel does not apply: {why})"


def run_sequence(model: Model, step_fn, x: torch.Tensor, dt: torch.Tensor | None, last_only=False):
    """x[B, T, in] -> y[B, T, out] (or y[B, out] with last_only), `step_fn.chunk` steps per call."""
    B, T, _ = x.shape
    if getattr(step_fn, "native", False) and native.window_too_big(model.config, B, T) is None:
        y = native.window_sequence(model, x, dt)
        return y[:, -1] if last_only else y
    P = model.prepared(training=True)
    h = model.initial_state(B)
    K = getattr(step_fn, "chunk", 1)
    ys = []
    for a in range(0, T, K):
        y, h = step_fn(P, x[:, a:a + K], h, None if dt is None else dt[:, a:a + K])
        ys.append(y)
    y = torch.cat(ys, 1) if len(ys) > 1 else ys[0]
    return y[:, -1] if last_only else y


class Objective:
    """Loss and metric of a task (regression: MSE per element, in normalised output units
    when the model de-normalises its outputs; classification: cross-entropy of the last
    step, metric accuracy)."""

    def __init__(self, task: TaskData):
        self.kind, self.metric = task.kind, task.metric
        norm = task.normalization or {}
        std = norm.get("output_std")
        self.scale = None if std is None else torch.tensor(std, dtype=torch.float32)

    @property
    def loss_label(self) -> str:
        """What the training loss is, for the epoch log (it differs from the metric)."""
        if self.kind == "classification":
            return "cross-entropy"
        return "MSE, normalised units" if self.scale is not None else "MSE, data units"

    @property
    def metric_label(self) -> str:
        return "" if self.kind == "classification" else " (data units)"

    @property
    def last_only(self):
        return self.kind == "classification"

    def loss(self, pred, y):
        if self.kind == "classification":
            return torch.nn.functional.cross_entropy(pred, y)
        err = pred - y
        if self.scale is not None:
            err = err / self.scale
        return (err * err).mean()

    def metric_sums(self, pred, y):
        """(sum of the metric over elements / samples, count) for exact pooling over batches."""
        if self.kind == "classification":
            return float((pred.argmax(-1) == y).sum()), int(y.shape[0])
        return float(((pred - y) ** 2).sum()), int(y.numel())


def _tensors(split: Split, idx=None):
    sel = slice(None) if idx is None else idx
    x = torch.from_numpy(np.ascontiguousarray(split.x[sel]))
    y = torch.from_numpy(np.ascontiguousarray(split.y[sel]))
    dt = None if split.dt is None else torch.from_numpy(np.ascontiguousarray(split.dt[sel]))
    return x, y, dt


@torch.no_grad()
def evaluate(model: Model, task: TaskData, split: str = "test", batch_size: int = 512, step_fn=None) -> dict:
    """{"loss": ..., metric: ...} of a model on one split of a task (eager unless step_fn)."""
    obj = Objective(task)
    s = getattr(task, split)
    step_fn = step_fn or make_step_fn(model.config)
    loss_sum = msum = 0.0
    count = n = 0
    for a in range(0, len(s), batch_size):
        x, y, dt = _tensors(s, slice(a, a + batch_size))
        pred = run_sequence(model, step_fn, x, dt, last_only=obj.last_only)
        loss_sum += float(obj.loss(pred, y)) * x.shape[0]
        n += x.shape[0]
        v, c = obj.metric_sums(pred, y)
        msum += v
        count += c
    out = {"loss": loss_sum / max(n, 1)}
    out[task.metric] = msum / max(count, 1)
    return out


# --------------------------------------------------------------------------------------
# training


@dataclass
class TrainOptions:
    epochs: int = 10
    lr: float = 0.01
    batch_size: int = 16
    seed: int = 0
    grad_clip: float | None = None
    compile: bool = False
    compile_chunk: int = 4
    eval_batch_size: int = 512
    patience: int | None = None  # stop after this many epochs without a better validation metric
    isolate: float | None = None  # the fraction of connections cut out of training (train/isolate.py)
    isolate_by: str = "magnitude"
    isolate_at: int = 1  # after this many epochs


def adam(params, lr: float) -> torch.optim.Optimizer:
    """Adam with the fused update (one kernel over all parameters instead of a loop of small ops):
    the same math, 1.07x faster training steps on the cheetah LTC-32 (benchmarks/train_speed.py)."""
    return torch.optim.Adam(params, lr=lr, fused=True)


def _save_checkpoint(ck: dict, path: Path) -> None:
    """A checkpoint as ONE safetensors file (no pickle): tensors for the model, the best model
    and Adam's state; everything else as JSON in the metadata. Atomic."""
    from safetensors.torch import save

    tensors = {f"state/{k}": v.detach().contiguous() for k, v in ck["state"].items()}
    best = dict(ck["best"])
    for k, v in (best.pop("state") or {}).items():
        tensors[f"best/{k}"] = v.detach().contiguous()
    optim = ck["optim"]
    for idx, st in optim["state"].items():
        for name, v in st.items():
            tensors[f"optim/{idx}/{name}"] = torch.as_tensor(v).detach().reshape(-1).contiguous() \
                if name == "step" else v.detach().contiguous()
    meta = {k: v for k, v in ck.items() if k not in ("state", "optim", "best")}
    meta["best"] = best
    meta["optim_param_groups"] = optim["param_groups"]
    data = save(tensors, metadata={"ltc_edge_checkpoint": json.dumps(meta)})
    atomic_write_bytes(path, data)


def _load_checkpoint(path: Path) -> dict:
    from safetensors import SafetensorError
    from safetensors.torch import load

    # a checkpoint holds the model, the best model and Adam's two moments: 4 models' worth
    raw = read_bytes(path, "training checkpoint", 4 * LIMITS["model"])
    try:
        tensors = load(raw)
        n = int.from_bytes(raw[:8], "little")
        meta = json.loads(json.loads(raw[8:8 + n])["__metadata__"]["ltc_edge_checkpoint"])
    except (SafetensorError, KeyError, ValueError, TypeError):
        raise ValueError(f"{path}: not an ltc-edge training checkpoint (corrupt or foreign file)") from None
    ck = dict(meta)
    ck["state"] = {k[6:]: v for k, v in tensors.items() if k.startswith("state/")}
    best_state = {k[5:]: v for k, v in tensors.items() if k.startswith("best/")}
    ck["best"] = {**meta["best"], "state": best_state or None}
    state: dict = {}
    for k, v in tensors.items():
        if k.startswith("optim/"):
            _, idx, name = k.split("/", 2)
            state.setdefault(int(idx), {})[name] = v.reshape(()) if name == "step" else v
    ck["optim"] = {"state": state, "param_groups": meta["optim_param_groups"]}
    return ck


def _better(task, new, best):
    if best is None:
        return True
    return new > best if task.higher_is_better else new < best


def _resume(ckpt_file: Path, model: Model, opts: TrainOptions, spec: dict):
    """(options, history, best, start epoch, Adam state, spec) from the checkpoint; its model
    and options win, `opts.epochs` may extend the run."""
    if not ckpt_file.is_file():
        raise FileNotFoundError(f"no checkpoint to resume from at {ckpt_file}; run without --resume")
    ck = _load_checkpoint(ckpt_file)
    if ck.get("version") != CHECKPOINT_VERSION:
        raise ValueError(f"{ckpt_file}: unsupported checkpoint version {ck.get('version')}")
    if isolate.unwired(ck["config"]["cell"]) != isolate.unwired(model.config["cell"]) or \
            ck["config"]["input_size"] != model.config["input_size"]:
        raise ValueError(f"{ckpt_file}: the checkpoint holds a different model "
                         f"({ck['config']['cell']['kind']}); resume with the same --model/--wiring/--units")
    opts = TrainOptions(**{**ck["options"], "epochs": opts.epochs, "compile": opts.compile,
                           "compile_chunk": opts.compile_chunk, "eval_batch_size": opts.eval_batch_size,
                           "patience": opts.patience})
    model.load_state_dict(ck["state"])
    if ck["config"].get("isolation"):  # an isolated run: its wiring lost synapses, its record says which
        model.config.update(cell=ck["config"]["cell"], isolation=ck["config"]["isolation"])
        isolate.restore(model)
    spec = {**ck.get("spec", {}), **{k: v for k, v in spec.items() if k == "command"}}
    return opts, ck["history"], ck["best"], ck["epoch"], ck["optim"], spec


def check_train_options(opts: TrainOptions, n_train: int) -> int:
    """Batches per epoch; ValueError for options no run can use."""
    ok = opts.batch_size >= 1 and opts.epochs >= 0 and math.isfinite(opts.lr) and opts.lr > 0
    if not ok or (opts.grad_clip is not None and not (math.isfinite(opts.grad_clip) and opts.grad_clip >= 0)):
        raise ValueError("need --batch-size >= 1, --epochs >= 0, a finite --lr > 0 and a finite --grad-clip >= 0")
    batches = n_train // opts.batch_size
    if batches == 0:
        raise ValueError(f"the training split has {n_train} sequences, fewer than --batch-size {opts.batch_size}")
    return batches


class _Bar:
    """A rich progress bar over all batches of the run, or nothing (then lines go to `log`)."""

    def __init__(self, enabled: bool, total: int, log):
        self.log, self.bar = log, None
        if enabled:
            from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

            self.bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                TextColumn("{task.completed}/{task.total} batches"),
                                TextColumn("{task.fields[stats]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                TimeRemainingColumn())
            self.bar.start()
            self.task = self.bar.add_task("train", total=total, stats="")

    def advance(self, description: str, stats: str):
        if self.bar is not None:
            self.bar.update(self.task, advance=1, description=description, stats=stats)

    def print(self, msg: str):
        self.bar.console.print(msg) if self.bar is not None else self.log(msg)

    def stop(self):
        if self.bar is not None:
            self.bar.stop()


@dataclass
class _Run:
    """What one training run carries from epoch to epoch (and into the checkpoint)."""
    task: TaskData
    model: Model
    opts: TrainOptions
    out: Path
    spec: dict
    history: list
    best: dict
    optim: torch.optim.Optimizer = None
    step_fn: Callable = None
    eval_step: Callable = None
    batches: int = 0
    grad_stats: isolate.GradStats | None = None  # collected in the epoch before isolation


def _train_epoch(run: _Run, epoch: int, bar: _Bar, on_batch) -> list[float]:
    task, model, opts, obj = run.task, run.model, run.opts, Objective(run.task)
    perm = np.random.default_rng([opts.seed, epoch]).permutation(len(task.train))
    model.train()
    losses = []
    for b in range(run.batches):
        x, y, dt = _tensors(task.train, perm[b * opts.batch_size:(b + 1) * opts.batch_size])
        loss = obj.loss(run_sequence(model, run.step_fn, x, dt, last_only=obj.last_only), y)
        run.optim.zero_grad(set_to_none=True)
        loss.backward()
        if run.grad_stats is not None:
            run.grad_stats.add()
        if opts.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), opts.grad_clip)
        run.optim.step()
        model.apply_constraints()
        lv = float(loss.detach())
        if not math.isfinite(lv):
            raise ValueError(f"training diverged (loss {lv}) at epoch {epoch + 1}, batch {b + 1}; "
                             "try a lower --lr or --grad-clip")
        losses.append(lv)
        last = f"  valid {task.metric} {run.history[-1]['valid'][task.metric]:.4g}{obj.metric_label}" \
            if run.history else ""
        bar.advance(f"epoch {epoch + 1}/{opts.epochs}", f"loss {np.mean(losses):.4g} ({obj.loss_label})" + last)
        if on_batch is not None:
            on_batch(epoch, b)
    return losses


def _isolation_due(run: _Run, epoch: int, bar: _Bar) -> None:
    """--isolate: collect gradient statistics in the epoch before, isolate at its start."""
    opts, model = run.opts, run.model
    if not opts.isolate or model.config.get("isolation"):
        return
    if epoch == opts.isolate_at - 1 and opts.isolate_by != "magnitude":
        run.grad_stats = isolate.GradStats(model)
    if epoch == opts.isolate_at:
        cut = isolate.choose(model, opts.isolate, opts.isolate_by, run.grad_stats)
        record = {"fraction": opts.isolate, "by": opts.isolate_by, "at_epoch": opts.isolate_at}
        bar.print(isolate.apply(model, run.optim, cut, record))
        # the model file is the isolated model: the best epoch is chosen among those after isolation
        run.best = {"metric": None, "epoch": None, "state": None, "valid": None}
        run.grad_stats = None
        before = getattr(run.step_fn, "notice", None)
        run.step_fn = make_step_fn(model.config, compile=opts.compile, chunk=opts.compile_chunk)  # new wiring
        if opts.compile and run.step_fn.notice != before:  # e.g. the wiring became sparse: no native kernel
            bar.print(f"after isolation, {run.step_fn.notice}")
        run.eval_step = make_step_fn(model.config)


def _end_epoch(run: _Run, epoch: int, losses: list[float], train_time: float, cpu_time: float = 0.0) -> str:
    """Validate, keep the best model, write the checkpoint; returns the epoch's log line."""
    task, model, opts = run.task, run.model, run.opts
    valid = evaluate(model, task, "valid", opts.eval_batch_size, run.eval_step)
    rec = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "valid": valid, "train_s": round(train_time, 3),
           "train_cpu_s": round(cpu_time, 3)}
    run.history.append(rec)
    improved = _better(task, valid[task.metric], run.best["metric"])
    if improved:
        run.best = {"metric": valid[task.metric], "epoch": epoch + 1, "valid": valid,
                    "state": {k: v.detach().clone() for k, v in model.state_dict().items()}}
        modelfile.save(model, run.out)
    kept = {k: v for k, v in vars(opts).items()
            if k not in ("epochs", "compile", "compile_chunk", "eval_batch_size", "patience")}
    _save_checkpoint({"version": CHECKPOINT_VERSION, "epoch": epoch + 1, "config": model.config,
                      "state": model.state_dict(), "optim": run.optim.state_dict(), "options": kept,
                      "history": run.history, "best": run.best, "spec": run.spec}, checkpoint_path(run.out))
    obj = Objective(task)
    return (f"epoch {epoch + 1:3d}/{opts.epochs}  train loss {rec['train_loss']:.5g} ({obj.loss_label})  "
            f"valid {task.metric} {valid[task.metric]:.5g}{obj.metric_label}{'  *best' if improved else ''}  "
            f"({train_time:.1f} s)")


def patience_spent(patience: int | None, history: list, best_epoch: int | None) -> bool:
    """Early stopping: `patience` epochs have run since the best validation epoch (None: off)."""
    return bool(patience) and best_epoch is not None and len(history) - best_epoch >= patience


def _finish(run: _Run, t0: float) -> dict:
    """Test the best model, write the metrics file; returns the metrics."""
    task, model, opts, best, history = run.task, run.model, run.opts, run.best, run.history
    if best["state"] is None:  # zero epochs: the initial model
        best = {"metric": None, "epoch": 0, "valid": evaluate(model, task, "valid", opts.eval_batch_size),
                "state": model.state_dict()}
        modelfile.save(model, run.out)
    model.load_state_dict(best["state"])
    test = evaluate(model, task, "test", opts.eval_batch_size, run.eval_step)
    metrics = {"task": task.name, "task_type": task.kind, "metric": task.metric,
               "model": model.config["cell"]["kind"],
               "wiring": (model.config["cell"].get("wiring") or {}).get("kind"),
               "counts": model.counts(), "options": {**vars(opts)}, "spec": run.spec,
               "epochs_run": len(history), "best_epoch": best["epoch"],
               "stopped_early": patience_spent(run.opts.patience, history, best["epoch"]),
               "valid": best["valid"],
               "test": test, "test_streaming": final_streaming(run.out, task),
               "train_loss_last": history[-1]["train_loss"] if history else None,
               "wall_s_this_run": round(time.time() - t0, 2), "history": history,
               "machine": machine_info(), "model_file": str(run.out)}
    atomic_write_bytes(metrics_path(run.out), json.dumps(metrics, indent=1).encode())
    return metrics


def train(task: TaskData, model: Model, out: str | os.PathLike, opts: TrainOptions, *,
          spec: dict | None = None, resume: bool = False, progress: bool | None = None,
          log: Callable[[str], None] | None = None,
          on_batch: Callable[[int, int], None] | None = None,
          on_epoch: Callable[[dict], None] | None = None) -> dict:
    """Train `model` on `task`; the best-on-validation model is saved at `out`, the
    checkpoint at `out`.ckpt (after every epoch) and the metrics at <out>.metrics.json.

    resume: continue from the checkpoint (its model and options win; `opts.epochs` may
    extend the run). on_batch(epoch, batch) is called after every optimiser step (tests
    use it to simulate an interrupt); on_epoch(summary) after every epoch (epoch, epochs, metric,
    valid, best_valid, best_epoch: `ltc sweep` reports it live). Returns the metrics dict.
    """
    out = Path(out)
    check_outputs(out, task.info.get("data"))
    log = log or (lambda s: print(s, file=sys.stderr, flush=True))
    run = _Run(task, model, opts, out, dict(spec or {}), [], {"metric": None, "epoch": None, "state": None,
                                                               "valid": None})
    start_epoch, optim_state = 0, None
    if resume:
        run.opts, run.history, run.best, start_epoch, optim_state, run.spec = \
            _resume(checkpoint_path(out), model, opts, run.spec)
    run.batches = check_train_options(run.opts, len(task.train))
    for doubt in task.info.get("warnings") or []:  # once every option passed: an error stays one line
        log(f"warning: {doubt}")
    out.parent.mkdir(parents=True, exist_ok=True)
    run.optim = adam(model.parameters(), run.opts.lr)
    if optim_state is not None:
        run.optim.load_state_dict(optim_state)
    run.step_fn = make_step_fn(model.config, compile=run.opts.compile, chunk=run.opts.compile_chunk)
    if run.opts.compile:
        log(run.step_fn.notice)
    run.eval_step = make_step_fn(model.config)
    show = sys.stderr.isatty() if progress is None else progress
    bar = _Bar(show, (run.opts.epochs - start_epoch) * run.batches, log)
    t0 = time.time()
    try:
        for epoch in range(start_epoch, run.opts.epochs):
            if patience_spent(run.opts.patience, run.history, run.best["epoch"]):
                bar.print(f"early stop: no better validation {task.metric} in {run.opts.patience} epochs "
                          f"(best epoch {run.best['epoch']})")
                break
            _isolation_due(run, epoch, bar)
            te, tc = time.time(), time.process_time()
            losses = _train_epoch(run, epoch, bar, on_batch)
            bar.print(_end_epoch(run, epoch, losses, time.time() - te, time.process_time() - tc))
            if on_epoch is not None:
                on_epoch({"epoch": epoch + 1, "epochs": run.opts.epochs, "metric": task.metric,
                          "valid": run.history[-1]["valid"][task.metric], "best_valid": run.best["metric"],
                          "best_epoch": run.best["epoch"]})
    finally:
        bar.stop()
    return _finish(run, t0)
