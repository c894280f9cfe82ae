"""`ltc analyze`: the command (its arguments checked first, one line per bad value), handing
over to analyses.py, which runs each analysis by name. Imports stay inside the function, so
`ltc --help` stays fast."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..train import options as A
from ..train.commands import MODEL_DATA, MODEL_INPUTS, MODEL_TARGETS, MODEL_TIME
from ..train.stored import data_flags, model_task


def register(command):
    command()(analyze)


def analyze(
    what: str = typer.Argument(..., help="trajectory (latent trajectory length), bounds (LTC theorems), "
                                         "solvers (Euler / semi-implicit / RK4 x unfolds, BPTT vs adjoint) or "
                                         "robustness (metric under noise, dropped samples, rate changes, jitter, "
                                         "sensor faults)."),
    target: str = typer.Argument(..., help="trajectory: a cell kind (ltc, ctrnn, node, lstm), 'all', or a "
                                           "model file; bounds, solvers: an LTC model file; robustness: model "
                                           "files or export folders, comma-separated."),
    width: int = typer.Option(32, help="trajectory: layer width k."),
    depth: int = typer.Option(4, help="trajectory: number of stacked layers."),
    sigma_w: str = typer.Option("1,2,4,8", help="trajectory: comma list of weight scales σ_w."),
    steps: Optional[int] = typer.Option(None, help="trajectory: points on the input circle (default 100) / "
                                                   "bounds: steps per sequence (100) / solvers: steps (50)."),
    sequences: Optional[int] = typer.Option(None, help="bounds: random input sequences (default 32); "
                                                       "robustness: test sequences used at most (default 256)."),
    backend: str = typer.Option("numpy", help="robustness: runtime backend(s) for .safetensors models, "
                                              "comma-separated (numpy, onnx, tflite, c); export folders use their own."),
    seeds: int = typer.Option(3, help="robustness: seeds per perturbation level (mean and spread reported)."),
    task: Optional[str] = typer.Option(None, help="bounds, robustness: this task's test inputs (default: the model's "
                                                  "stored task and data file; bounds: random inputs when it has none)."),
    states: Optional[Path] = typer.Option(None, help="bounds: also check states recorded elsewhere "
                                                     "(.npy [..., neurons], e.g. from a quantized export)."),
    seed: int = typer.Option(0, help="Random seed."),
    out: Path = typer.Option(Path("analysis-out"), help="Folder for the JSON and PNG."),
    random_inputs: bool = typer.Option(False, "--random", help="bounds: random inputs (large, dt over two "
                                                               "decades) even when the model stores a task."),
    data: Optional[Path] = MODEL_DATA, inputs: Optional[str] = MODEL_INPUTS, targets: Optional[str] = MODEL_TARGETS,
    time: Optional[str] = MODEL_TIME,
):
    """Check LTC claims on your models: trajectory-length expressivity, and the paper's bounds on
    time constants and states (violations reported per neuron)."""
    from .analyses import ANALYSES, STEPS

    if what not in ANALYSES:
        raise ValueError(f"unknown analysis {what!r}; choose {', '.join(ANALYSES)}")
    steps = STEPS[what] if steps is None else steps
    sequences = (256 if what == "robustness" else 32) if sequences is None else sequences
    _check_analyze_args(what, target, width, depth, steps, sequences, task, seed, out, states)
    A.integer(seeds, "--seeds")
    if what == "bounds" and not random_inputs:
        task = model_task(target, task, data_flags(data, inputs, targets, time))
    ANALYSES[what](target, width=width, depth=depth, sigma_ws=A.number_list(sigma_w, "--sigma-w"), steps=steps,
                   sequences=sequences, task=task, states=states, seed=seed, out=out, backend=backend, seeds=seeds,
                   data_flags=data_flags(data, inputs, targets, time))


def _check_analyze_args(what, target, width, depth, steps, sequences, task, seed, out, states) -> None:
    A.integer(width, "--width")
    A.integer(depth, "--depth")
    A.integer(steps, "--steps", low={"trajectory": 2, "robustness": 0}.get(what, 1))  # an arc needs two points
    A.integer(sequences, "--sequences")
    A.integer(seed, "--seed", low=0)
    A.task_name(task)
    inputs = [states] + [t for t in target.split(",") if Path(t).suffix == ".safetensors"]
    for name in ("trajectory_length.json", "bounds.json", "solvers.json", "robustness.json", "robustness.md"):
        A.output_not_input(out / name, *inputs)
    A.output_not_input(out, *inputs)
