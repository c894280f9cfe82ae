"""`ltc train` and `ltc eval`. Nothing heavy is imported at module level (numpy only: the
name lists come from the registries they name)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Optional

import typer

from ..nn.functional import CELLS
from ..nn.wirings import WIRINGS
from ..runtime.commands import BOARD, BOARD_C, FLASH_CMD, SERIAL, mcu_options
from .isolate import check_isolation
from .options import MAX_COUNT, check_series_numbers, check_train_numbers, integer, optional, use_compile
from .outputs import check_outputs
from .stored import SERIES_TASKS, task_options, task_record  # noqa: F401  (re-exported)
from .streaming import streaming_phrase
from .tasks import TASKS

TASK_NAMES = tuple(TASKS)
MODEL_NAMES = tuple(CELLS)
WIRING_NAMES = tuple(WIRINGS)

# options train and eval share
DATA = typer.Option(None, help="csv/npz: the data file.")
INPUTS = typer.Option(None, help="csv/npz: input columns, names or 0-based indices, comma separated (e.g. a,b or 0,1).")
TARGETS = typer.Option(None, help="csv/npz: target columns (predicted at every step).")
TIME = typer.Option(None, "--time", help="csv/npz: timestamp column; dt = its difference is passed to the "
                                         "model per step.")
SEQ_LEN = typer.Option(None, "--seq-len", help="Sequence length (csv/npz default 32).")
STRIDE = typer.Option(None, help="Window stride (csv/npz default seq-len/2).")
SPLIT = typer.Option(None, help="csv/npz: chronological train,valid,test fractions of the rows, each in "
                                "(0, 1), summing to at most 1 (default 0.7,0.15,0.15).")
DATA_DIR = typer.Option(None, "--data-dir", help="fashion-mnist: folder of the IDX files (default: Debian's "
                                                 "install path).")
# the data options of the commands run on a trained model (bench, prune, analyze; default: the model's stored task)
MODEL_DATA = typer.Option(None, help="csv/npz: another data file (default: the one the model was trained on, "
                                     "checked by sha256).")
MODEL_INPUTS = typer.Option(None, help="csv/npz: input columns (default: the model's).")
MODEL_TARGETS = typer.Option(None, help="csv/npz: target columns (default: the model's).")
MODEL_TIME = typer.Option(None, "--time", help="csv/npz: timestamp column (default: the model's).")


def parse_wiring_args(model: str, wiring: str | None, text: str | None) -> dict | None:
    if model not in MODEL_NAMES:
        raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODEL_NAMES)}")
    if wiring is not None and wiring not in WIRING_NAMES:
        raise ValueError(f"unknown wiring {wiring!r}; choose one of {', '.join(WIRING_NAMES)}")
    if not text:
        return None
    try:
        wargs = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"--wiring-args is not valid JSON ({e})") from None
    if not isinstance(wargs, dict):
        raise ValueError("--wiring-args must be a JSON object, like '{\"sparsity_level\": 0.5}'")
    return wargs


def _train_options(td, model: str, epochs, lr, batch_size, seed, grad_clip, compile, patience=None, isolate=None,
                   isolate_by="magnitude", isolate_at=1):
    from .loop import TrainOptions, default_lr

    d = td.defaults
    ep = d.get("epochs", 10) if epochs is None else epochs
    clip = d.get("grad_clip") if grad_clip is None else (grad_clip if grad_clip > 0 else None)  # 0 = off
    return TrainOptions(epochs=ep, lr=default_lr(td, model) if lr is None else lr,
                        batch_size=d.get("batch_size", 16) if batch_size is None else batch_size, seed=seed,
                        grad_clip=clip, compile=use_compile(compile), patience=patience, isolate=isolate,
                        isolate_by=isolate_by, isolate_at=isolate_at)


def _run_training(task, topts, model, out, wiring, wargs, units, numbers: dict, resume, progress, dt_input=False):
    import sys

    from .tasks import load_task

    td = load_task(task, **topts)  # bad data fails here, before torch is imported
    from .loop import build_task_model, train

    net = build_task_model(td, model, units=units, wiring=wiring, wiring_args=wargs, seed=numbers["seed"],
                           dt_input=dt_input)
    net.config["task"] = task_record(task, topts, td)  # data file (absolute, sha256), dt distribution
    opts = _train_options(td, model, **numbers)
    spec = {"task": task, "task_options": topts, "model": model, "wiring": wiring, "wiring_args": wargs,
            "units": units, "dt_input": dt_input, "command": " ".join(["ltc"] + sys.argv[1:])}
    m = train(td, net, out, opts, spec=spec, resume=resume, progress=progress)
    stop = f" (early stop after {m['epochs_run']} epochs)" if m.get("stopped_early") else ""
    typer.echo(f"best epoch {m['best_epoch']}{stop}: valid {td.metric} {m['valid'][td.metric]:.5g}, "
               f"test {td.metric} {m['test'][td.metric]:.5g} (windows, state reset each)  -> {out}\n"
               f"  {streaming_phrase(td.metric, m['test_streaming'])}: how it runs on a device")


# ltc train --isolate (train/isolate.py)
ISOLATE = typer.Option(None, "--isolate", help="Cut this fraction (0 to 1) of the cell's connections out of "
                       "training after --isolate-at epochs: zeroed and frozen; an LTC's synapses leave the wiring, "
                       "so its step computes fewer (LSTM/GRU/CfC: smaller, not faster). Default: off.")
ISOLATE_BY = typer.Option("magnitude", "--isolate-by", help="Which connections: the lowest by magnitude |w|, "
                          "gradient mean |w*g| or fisher mean g^2*w^2/2 (gradient and fisher: measured over the "
                          "epoch before).")
ISOLATE_AT = typer.Option(1, "--isolate-at", help="Isolate after this many epochs (0: before training, magnitude "
                          "only). The model file is the best epoch after isolation.")


def train_cmd(
    task: str = typer.Option(..., "--task", "-t", help=f"Task: {', '.join(TASK_NAMES)}."),
    model: str = typer.Option("ltc", "--model", "-m", help=f"Model: {', '.join(MODEL_NAMES)}."),
    out: Path = typer.Option(Path("model.safetensors"), "--out", "-o",
                             help="Model file to write (best validation epoch). Also writes "
                                  "OUT.ckpt (resume checkpoint) and <stem>.metrics.json."),
    wiring: Optional[str] = typer.Option(None, help=f"Wiring for ltc/cfc: {', '.join(WIRING_NAMES)} "
                                                     "(ltc default: full)."),
    wiring_args: Optional[str] = typer.Option(None, help='Wiring arguments as JSON, e.g. '
                                                          '\'{"sparsity_level": 0.75}\'.'),
    units: int = typer.Option(32, help="Neurons / hidden units (1 to 2048)."),
    epochs: Optional[int] = typer.Option(None, help="Epochs, >= 1 (default: the task's, e.g. cheetah 200)."),
    lr: Optional[float] = typer.Option(None, help="Adam learning rate, > 0 (default: the task's; "
                                                   "cheetah: ltc 0.01, others 0.001)."),
    batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Batch size, >= 1 (task default)."),
    seed: int = typer.Option(0, help="Seed (initialisation and batch order), >= 0."),
    grad_clip: Optional[float] = typer.Option(None, "--grad-clip",
                                              help="Clip the gradient norm to this, > 0 (task default; 0 = off)."),
    compile: bool = typer.Option(False, "--compile/--no-compile",
                                 help="A faster training step. A dense LTC (full or random wiring, "
                                      "semi-implicit solver) runs ltc-edge's native kernel: whole windows "
                                      "in C, built with the system compiler in about a second, about 10x "
                                      "ncps's step. Other models are torch.compile'd: the first epoch "
                                      "compiles (10 s to minutes), later ones can run faster on large "
                                      "models and many epochs; small models rarely gain. Default: off."),
    resume: bool = typer.Option(False, "--resume", help="Continue from OUT.ckpt after an "
                                                        "interruption (same result as an uninterrupted run)."),
    patience: Optional[int] = typer.Option(None, "--patience", help="Early stop: end training after this many "
                                                                    "epochs without a better validation metric "
                                                                    "(default: off, all --epochs run)."),
    data: Optional[Path] = DATA, inputs: Optional[str] = INPUTS, targets: Optional[str] = TARGETS,
    time: Optional[str] = TIME, seq_len: Optional[int] = SEQ_LEN, stride: Optional[int] = STRIDE,
    split: Optional[str] = SPLIT, data_dir: Optional[Path] = DATA_DIR,
    episodes: Optional[int] = typer.Option(None, help="pendulum: demonstration episodes."),
    progress: Optional[bool] = typer.Option(None, "--progress/--no-progress",
                                            help="Progress bar (default: when stderr is a terminal)."),
    dt_input: bool = typer.Option(False, "--dt-input", help="Give the cell the elapsed time dt (divided by "
                                                            "the training median dt) as one more input: an "
                                                            "LSTM/GRU that knows the time step."),
    isolate: Optional[float] = ISOLATE, isolate_by: str = ISOLATE_BY, isolate_at: int = ISOLATE_AT,
):
    """Train a model on a task; keeps the epoch with the best validation metric. The final report
    gives the test metric over windows (state reset each, as in training) and streamed over the whole
    test series with the state carried, as the model runs on a device.

    Examples: ltc train --task cheetah --model ltc --out ltc.safetensors;
    ltc train --task csv --data f.csv --inputs a,b --targets c --time t --seq-len 32.
    """
    check_train_numbers(units, epochs, lr, batch_size, seed, grad_clip)
    optional(integer, patience, "--patience", 1, MAX_COUNT)
    check_isolation(isolate, isolate_by, isolate_at, epochs)
    wargs = parse_wiring_args(model, wiring, wiring_args)
    topts = task_options(task, data, data_dir, inputs, targets, time, seq_len, stride, split, episodes)
    check_outputs(out, data)  # before any data is read or epoch run
    numbers = {"epochs": epochs, "lr": lr, "batch_size": batch_size, "seed": seed, "grad_clip": grad_clip,
               "compile": compile, "patience": patience, "isolate": isolate, "isolate_by": isolate_by,
               "isolate_at": isolate_at}
    _run_training(task, topts, model, out, wiring, wargs, units, numbers, resume, progress, dt_input)


def _check_metrics(res: dict, model, split_name) -> None:
    bad = {k: v for k, v in res.items() if isinstance(v, float) and not math.isfinite(v)}
    if bad:
        k, v = next(iter(bad.items()))
        raise ValueError(f"{model}: {k} is {v} on the {split_name} split (the model's outputs are not finite); "
                         "retrain it or check the data")


def eval_cmd(
    model: Path = typer.Argument(..., help="A model file written by ltc train."),
    task: Optional[str] = typer.Option(None, "--task", "-t", help="Task (default: the one the model was trained on)."),
    split_name: str = typer.Option("test", "--on", help="Split to evaluate: train, valid or test."),
    data: Optional[Path] = DATA, inputs: Optional[str] = INPUTS, targets: Optional[str] = TARGETS,
    time: Optional[str] = TIME, seq_len: Optional[int] = SEQ_LEN, stride: Optional[int] = STRIDE,
    split: Optional[str] = SPLIT, data_dir: Optional[Path] = DATA_DIR,
    episodes: Optional[int] = typer.Option(None, help="pendulum: closed-loop episodes (default 10)."),
    streaming: bool = typer.Option(False, "--streaming", help="Also stream the split's whole series through the "
                                                              "runtime's step(), state carried, true dt per step."),
    backend: str = typer.Option("numpy", "--backend", help="--streaming: a runtime backend, numpy, onnxruntime "
                                                           "(onnx), tflite, c, tflm, executorch or mcu:CORE (--serial ...)."),
    serial: Optional[str] = SERIAL, flash_cmd: Optional[str] = FLASH_CMD, board: Optional[str] = BOARD,
    board_c: Optional[Path] = BOARD_C,
    json_out: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
):
    """Print a trained model's metrics on a task's test split (default: the task and data file it was
    trained on, checked by sha256; --data etc. for other data). The windowed metric resets the state
    every window; --streaming adds the whole series stepped as a controller would (pendulum: also the
    closed-loop episode return)."""
    if split_name not in ("train", "valid", "test"):
        raise ValueError(f"--on must be train, valid or test, got {split_name!r}")
    check_series_numbers(seq_len, stride, episodes)
    from .streaming import check_backend

    backend = check_backend(backend)  # the canonical name (aliases: onnx -> onnxruntime, ...)
    if backend != "numpy" and not streaming:
        raise ValueError("--backend applies to --streaming (the windowed metric runs the torch model)")
    board_opts = mcu_options(backend, serial, flash_cmd, board, board_c, None)  # --backend mcu:CORE
    from ..nn.modelfile import load, read
    from .loop import evaluate
    from .stored import load_model_task

    flags = {"data": data, "inputs": inputs, "targets": targets, "time": time, "seq_len": seq_len,
             "stride": stride, "split": split, "data_dir": data_dir}
    task, _, td = load_model_task(model, task, flags, config=read(model)[0])
    net = load(model)
    if net.input_size != td.input_size or net.output_size != td.output_size:
        raise ValueError(f"{model} has {net.input_size} inputs / {net.output_size} outputs; task {task} "
                         f"needs {td.input_size} / {td.output_size}")
    res = {"task": task, "split": split_name, **evaluate(net, td, split_name)}
    if streaming:
        res.update(_streaming(model, net, td, split_name, backend, board_opts))
    if task == "pendulum":
        from .pendulum import evaluate_model_closed_loop

        res.update(evaluate_model_closed_loop(net, episodes=episodes or 10))
    _check_metrics(res, model, split_name)
    notes = _eval_notes(td, split_name)
    res["loss_kind"] = notes.pop("loss_kind")
    typer.echo(json.dumps(res) if json_out else "\n".join(
        (f"{k}: {v:.6g}" if isinstance(v, float) else f"{k}: {v}") + (f"  ({notes[k]})" if k in notes else "")
        for k, v in res.items() if k != "loss_kind"))


def _eval_notes(td, split_name: str) -> dict:
    """What each figure of `ltc eval` is: the loss training minimises and the task metric, both
    over the split's windows (state reset each), and the streamed metric."""
    from .loop import Objective

    obj = Objective(td)
    windows = f"{split_name} windows, state reset each"
    units = "; data units" if td.kind == "regression" else ""
    return {"loss_kind": obj.loss_label, "loss": f"training loss: {obj.loss_label}; {windows}",
            td.metric: windows + units,
            f"streaming_{td.metric}": f"the whole {split_name} series, state carried{units}"}


def _streaming(model, net, td, split_name: str, backend: str, board: dict | None = None) -> dict:
    """The streamed figures, keyed beside the windowed ones (streaming_mse, streaming_steps, ...)."""
    from .streaming import streaming_eval

    got = streaming_eval(model, net, td, split_name, backend, board)
    return {"streaming_backend": backend, **{f"streaming_{k}": v for k, v in got.items()}}


def register(command):
    command("train")(train_cmd)
    command("eval")(eval_cmd)
