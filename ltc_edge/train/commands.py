"""`ltc train` and `ltc eval`. Nothing heavy is imported at module level."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

TASK_NAMES = ("cheetah", "digits", "fashion-mnist", "pendulum", "csv", "npz")
MODEL_NAMES = ("ltc", "cfc", "ctrnn", "node", "lstm", "gru")
WIRING_NAMES = ("ncp", "auto-ncp", "full", "random")


def task_options(task: str, data, data_dir, inputs, targets, time, seq_len, stride, split, episodes) -> dict:
    """The CLI's task flags as load_task() keyword arguments (only those the task takes)."""
    if task not in TASK_NAMES:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASK_NAMES)}")
    if task in ("csv", "npz"):
        if data is None:
            raise ValueError(f"--task {task} needs --data FILE.{task}")
        if not inputs or not targets:
            raise ValueError(f"--task {task} needs --inputs and --targets (column names or indices)")
        opts = {"data": str(data), "inputs": inputs, "targets": targets, "time": time}
        if seq_len is not None:
            opts["seq_len"] = seq_len
        if stride is not None:
            opts["stride"] = stride
        if split is not None:
            try:
                opts["split"] = [float(v) for v in split.split(",")]
            except ValueError:
                raise ValueError(f"--split must be three fractions like 0.7,0.15,0.15, got {split!r}") from None
        return opts
    stray = [n for n, v in (("--data", data), ("--inputs", inputs), ("--targets", targets), ("--time", time),
                            ("--split", split)) if v is not None]
    if stray:
        raise ValueError(f"{', '.join(stray)} only apply to --task csv/npz")
    opts = {}
    if task == "fashion-mnist" and data_dir is not None:
        opts["data_dir"] = str(data_dir)
    if task == "cheetah" and seq_len is not None:
        opts["seq_len"] = seq_len
    if task == "cheetah" and stride is not None:
        opts["stride"] = stride
    if task == "pendulum":
        if episodes is not None:
            opts["episodes"] = episodes
        if seq_len is not None:
            opts["seq_len"] = seq_len
    return opts


def register(command):
    @command("train")
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
        units: int = typer.Option(32, help="Neurons / hidden units."),
        epochs: Optional[int] = typer.Option(None, help="Epochs (default: the task's, e.g. cheetah 200)."),
        lr: Optional[float] = typer.Option(None, help="Adam learning rate (default: the task's; "
                                                       "cheetah: ltc 0.01, others 0.001)."),
        batch_size: Optional[int] = typer.Option(None, "--batch-size", help="Batch size (task default)."),
        seed: int = typer.Option(0, help="Seed (initialisation and batch order)."),
        grad_clip: Optional[float] = typer.Option(None, "--grad-clip",
                                                  help="Clip the gradient norm (task default; 0 = off)."),
        compile: Optional[bool] = typer.Option(None, "--compile/--no-compile",
                                               help="torch.compile the step function (~3x faster, "
                                                    "~10-40 s to compile). Default: on from 20 epochs."),
        resume: bool = typer.Option(False, "--resume", help="Continue from OUT.ckpt after an "
                                                            "interruption (same result as an uninterrupted run)."),
        data: Optional[Path] = typer.Option(None, help="csv/npz: the data file."),
        inputs: Optional[str] = typer.Option(None, help="csv/npz: input columns, names or 0-based "
                                                        "indices, comma separated (e.g. a,b or 0,1)."),
        targets: Optional[str] = typer.Option(None, help="csv/npz: target columns (predicted at every step)."),
        time: Optional[str] = typer.Option(None, "--time", help="csv/npz: timestamp column; dt = its "
                                                                "difference is passed to the model per step."),
        seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Sequence length (csv/npz default 32)."),
        stride: Optional[int] = typer.Option(None, help="Window stride (csv/npz default seq-len/2)."),
        split: Optional[str] = typer.Option(None, help="csv/npz: chronological train,valid,test "
                                                       "fractions (default 0.7,0.15,0.15)."),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="fashion-mnist: folder of the IDX "
                                                                         "files (default: Debian's install path)."),
        episodes: Optional[int] = typer.Option(None, help="pendulum: demonstration episodes."),
        progress: Optional[bool] = typer.Option(None, "--progress/--no-progress",
                                                help="Progress bar (default: when stderr is a terminal)."),
    ):
        """Train a model on a task; keeps the epoch with the best validation metric.

        Examples: ltc train --task cheetah --model ltc --out ltc.safetensors;
        ltc train --task csv --data f.csv --inputs a,b --targets c --time t --seq-len 32.
        """
        if model not in MODEL_NAMES:
            raise ValueError(f"unknown model {model!r}; choose one of {', '.join(MODEL_NAMES)}")
        if wiring is not None and wiring not in WIRING_NAMES:
            raise ValueError(f"unknown wiring {wiring!r}; choose one of {', '.join(WIRING_NAMES)}")
        wargs = None
        if wiring_args:
            try:
                wargs = json.loads(wiring_args)
            except json.JSONDecodeError as e:
                raise ValueError(f"--wiring-args is not valid JSON ({e})") from None
            if not isinstance(wargs, dict):
                raise ValueError("--wiring-args must be a JSON object")
        topts = task_options(task, data, data_dir, inputs, targets, time, seq_len, stride, split, episodes)
        import sys

        from .loop import TrainOptions, build_task_model, default_lr, train
        from .tasks import load_task

        td = load_task(task, **topts)
        net = build_task_model(td, model, units=units, wiring=wiring, wiring_args=wargs, seed=seed)
        net.config["task"] = {"name": task, "options": topts, "type": td.kind, "metric": td.metric}
        d = td.defaults
        ep = d.get("epochs", 10) if epochs is None else epochs
        clip = d.get("grad_clip") if grad_clip is None else (grad_clip or None)
        opts = TrainOptions(epochs=ep, lr=lr or default_lr(td, model),
                            batch_size=batch_size or d.get("batch_size", 16), seed=seed, grad_clip=clip,
                            compile=(ep >= 20) if compile is None else compile)
        spec = {"task": task, "task_options": topts, "model": model, "wiring": wiring, "wiring_args": wargs,
                "units": units, "command": " ".join(["ltc"] + sys.argv[1:])}
        m = train(td, net, out, opts, spec=spec, resume=resume, progress=progress)
        test = m["test"]
        typer.echo(f"best epoch {m['best_epoch']}: valid {td.metric} {m['valid'][td.metric]:.5g}, "
                   f"test {td.metric} {test[td.metric]:.5g}  -> {out}")

    @command("eval")
    def eval_cmd(
        model: Path = typer.Argument(..., help="A model file written by ltc train."),
        task: Optional[str] = typer.Option(None, "--task", "-t",
                                           help="Task (default: the one the model was trained on)."),
        split_name: str = typer.Option("test", "--on", help="Split to evaluate: train, valid or test."),
        data: Optional[Path] = typer.Option(None, help="csv/npz: the data file."),
        inputs: Optional[str] = typer.Option(None, help="csv/npz: input columns."),
        targets: Optional[str] = typer.Option(None, help="csv/npz: target columns."),
        time: Optional[str] = typer.Option(None, "--time", help="csv/npz: timestamp column."),
        seq_len: Optional[int] = typer.Option(None, "--seq-len", help="Sequence length."),
        stride: Optional[int] = typer.Option(None, help="Window stride."),
        split: Optional[str] = typer.Option(None, help="csv/npz: train,valid,test fractions."),
        data_dir: Optional[Path] = typer.Option(None, "--data-dir", help="fashion-mnist: IDX folder."),
        episodes: Optional[int] = typer.Option(None, help="pendulum: closed-loop episodes (default 10)."),
        json_out: bool = typer.Option(False, "--json", help="Print the metrics as JSON."),
    ):
        """Print a trained model's metrics on a task's test split (pendulum: also the
        closed-loop episode return)."""
        from ..nn.modelfile import read

        config, _ = read(model)
        stored = config.get("task") or {}
        if task is None:
            if not stored:
                raise ValueError(f"{model}: no task stored in the model; pass --task")
            task = stored["name"]
        flags = (data, inputs, targets, time, seq_len, stride, split, data_dir)
        if task == stored.get("name") and all(v is None for v in flags):
            topts = dict(stored.get("options") or {})
        else:
            topts = task_options(task, data, data_dir, inputs, targets, time, seq_len, stride, split, None)
        if split_name not in ("train", "valid", "test"):
            raise ValueError(f"--on must be train, valid or test, got {split_name!r}")
        from ..nn.modelfile import load
        from .loop import evaluate
        from .tasks import load_task

        td = load_task(task, **topts)
        net = load(model)
        if net.input_size != td.input_size or net.output_size != td.output_size:
            raise ValueError(f"{model} has {net.input_size} inputs / {net.output_size} outputs; task {task} "
                             f"needs {td.input_size} / {td.output_size}")
        res = {"task": task, "split": split_name, **evaluate(net, td, split_name)}
        if task == "pendulum":
            from .pendulum import evaluate_model_closed_loop

            res.update(evaluate_model_closed_loop(net, episodes=episodes or 10))
        if json_out:
            typer.echo(json.dumps(res))
        else:
            for k, v in res.items():
                typer.echo(f"{k}: {v:.6g}" if isinstance(v, float) else f"{k}: {v}")
