"""`ltc bench`, `ltc prune`, `ltc sweep`: one function per command (imports stay
inside them, so `ltc --help` stays fast). Each checks its arguments first (train/options.py: one
line per bad value), then hands over to the module that does the work."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from ..runtime.commands import BOARD, BOARD_C, FLASH_CMD, SERIAL
from ..train import options as A
from ..train.commands import MODEL_DATA, MODEL_INPUTS, MODEL_TARGETS, MODEL_TIME
from ..train.stored import data_flags, model_task


def register(command):
    for fn in (bench, prune, sweep):
        command()(fn)


# ltc bench -------------------------------------------------------------------------------


CLOCK_HZ = typer.Option(None, "--clock-hz", help="ARM: clock (Hz) for the estimated time per step = cycles "
                        "(Cortex-M, estimated; arm64: instructions) / clock, not measured (default: cortex-m0 48e6, "
                        "cortex-m3 72e6, cortex-m4 168e6, arm64 1.5e9).")
SSH_OPTS = typer.Option("", "--ssh-opts", help="ssh:// targets: extra options for the system ssh, e.g. "
                        "\"-i KEY -o StrictHostKeyChecking=accept-new\" (your ~/.ssh/config applies too).")
BOARD_PYTHON = typer.Option("python3", "--board-python", help="ssh:// targets: the Python to run there (needs "
                            "numpy; a venv's bin/python works).")


def bench(
    models: Optional[List[Path]] = typer.Argument(None, help="Model files (.safetensors) to compare, e.g. an "
                                                             "LTC and an LSTM (or none, with --kinds)."),
    backend: str = typer.Option("numpy,onnxruntime", help="Comma list of torch, numpy, onnxruntime (onnx, ort), "
                                                          "tflite (litert), c, executorch (et): the runtime's names."),
    precision: str = typer.Option("fp32", help="Comma list of fp32, fp16, int8 (onnxruntime and tflite; c: fp32 "
                                               "and int8, the integer-only LTC step; the others run fp32)."),
    target: str = typer.Option("cpu", help="Comma list of cpu, cuda (torch/onnxruntime on a GPU), arm64, "
                                           "cortex-m0, cortex-m3 (soft float), cortex-m4 (C under qemu: instructions, "
                                           "flash, RAM), mcu:cortex-m0|m3|m4|m7|m33 (C on your board: --serial ...), "
                                           "ssh://USER@HOST[:PORT] (a Linux board: numpy, onnxruntime, tflite, c there)."),
    batch: str = typer.Option("1,8,64", help="Comma list of batch sizes for latency and throughput."),
    task: Optional[str] = typer.Option(None, help="Task whose test split gives the metric column and the int8 "
                                                  "calibration (default: the first model's stored task)."),
    seconds: float = typer.Option(0.5, help="Minimum timing seconds per batch size (after warm-up)."),
    out: Path = typer.Option(Path("bench-out"), help="Folder for results.json, report.md, plots, exports."),
    kinds: Optional[str] = typer.Option(None, help="Also train these cell kinds on --task and bench them side by "
                                                   "side, e.g. ltc,cfc,ctrnn,node,lstm,gru (the first is the "
                                                   "reference for --match params)."),
    units: int = typer.Option(32, help="--kinds: hidden size (equal-hidden models, and the reference)."),
    match: str = typer.Option("hidden,params", help="--kinds: hidden (every kind at --units), params (every "
                                                    "kind sized to the reference's parameter count), or both."),
    wiring: Optional[str] = typer.Option(None, help="--kinds: wiring for ltc/cfc (ltc default: full)."),
    epochs: int = typer.Option(5, help="--kinds: training epochs per model (a short schedule)."),
    data: Optional[Path] = MODEL_DATA, inputs: Optional[str] = MODEL_INPUTS, targets: Optional[str] = MODEL_TARGETS,
    time: Optional[str] = MODEL_TIME, serial: Optional[str] = SERIAL, flash_cmd: Optional[str] = FLASH_CMD,
    calibration: Optional[str] = typer.Option(None, help="int8 calibration: a task name, a CSV (the model's columns) "
                                                         "or an .npz x [N, T, in] (default: the task's data)."),
    robustness: bool = typer.Option(False, "--robustness", help="Also run `ltc analyze robustness` on every "
                                                                "benched model x backend x precision (OUT/robustness)."),
    clock_hz: Optional[float] = CLOCK_HZ, board: Optional[str] = BOARD, board_c: Optional[Path] = BOARD_C,
    ssh_opts: str = SSH_OPTS, board_python: str = BOARD_PYTHON,
):
    """Latency (p50/p90/p99), throughput, size, memory and accuracy per model x backend x precision x target.

    Writes OUT/results.json (schema in ltc_edge/bench/report.py), OUT/report.md and PNG plots
    (latency vs accuracy with its Pareto front, latency by backend, size by precision).

    Every cell kind side by side: ltc bench --kinds ltc,cfc,ctrnn,node,lstm,gru --task cheetah
    trains each kind at equal hidden size and at equal parameter count (OUT/models/) first.
    """
    from .run import run_with_progress, wide_console

    lists, batches, models = _check_bench_args(backend, precision, target, batch, seconds, clock_hz, task, models, out)
    console = wide_console()
    flags = data_flags(data, inputs, targets, time)
    models, spec = _models_and_task(console, models, kinds, task, flags, (units, match, wiring, epochs), out)
    results = run_with_progress(console, models, **lists, batches=batches, task=spec and spec[0],
                                task_options=spec and spec[1], calibration=calibration, out=out, min_seconds=seconds,
                                clock_hz=clock_hz, mcu=(serial, flash_cmd, board, board_c), ssh_opts=ssh_opts,
                                board_python=board_python)
    _print_bench(console, results, out)
    if kinds:  # a short schedule ranks cells by how fast they learn, not by where they converge
        console.print(f"[dim]--kinds trained each model --epochs {epochs}, a short schedule: the accuracy ranking can "
                      "change with training. Converged cheetah cells at equal accuracy on the Cortex-M4: "
                      "benchmarks/results/pareto_m4.json (docs/results.md).[/dim]")
    if robustness:
        _bench_robustness(results, out, spec, flags)


def _models_and_task(console, models, kinds, task, flags, kind_options, out) -> tuple:
    """The models to bench (--kinds trains more first) and the task spec their metric uses."""
    if kinds:
        spec = _kinds_task(task, flags)
        models += _train_kinds(console, kinds, spec, *kind_options, out)
    if not models:
        raise ValueError("no models: give model files, or --kinds with --task to train them")
    return models, (spec if kinds else model_task(models[0], task, flags))


def _check_bench_args(backend, precision, target, batch, seconds, clock_hz, task, models, out) -> tuple:
    from ..runtime import backend_list
    from .run import ARM_TARGETS, BACKENDS, MCU_TARGETS, PRECISIONS, parse_batches, parse_list, parse_targets

    targets = parse_targets(target)
    if backend == "numpy,onnxruntime" and set(targets) <= set(ARM_TARGETS + MCU_TARGETS):
        backend = "c"  # the default backends on ARM / mcu targets: only c runs there
    lists = {"backends": backend_list(backend, BACKENDS),  # the runtime's names and aliases
             "precisions": parse_list(precision, PRECISIONS, "precision"),
             "targets": targets}
    batches = parse_batches(batch)
    A.positive(seconds, "--seconds")
    if clock_hz is not None:
        A.positive(clock_hz, "--clock-hz")
    A.task_name(task)
    models = list(models or [])
    A.output_not_input(out, *models)
    return lists, batches, models


def _bench_robustness(results: dict, out: Path, spec, flags) -> None:
    """The robustness sweep over what the bench ran: .safetensors models on numpy / c, and the
    ONNX / TFLite exports (each precision) it wrote under OUT/artifacts."""
    from ..analyze.analyses import robustness
    from .run import EXPORT_FORMAT

    targets, backends = [], []
    for row in results["rows"]:
        if row["skipped"] or row["target"] != "cpu":
            continue
        fmt = EXPORT_FORMAT.get(row["backend"])
        if row["backend"] == "numpy":
            targets.append(row["path"])
            backends.append(row["backend"])
        elif fmt is not None:
            targets.append(str(out / "artifacts" / Path(row["path"]).stem / f"{fmt}-{row['precision']}"))
    targets = list(dict.fromkeys(targets))
    if not targets:
        raise ValueError("--robustness: no benched model ran on the cpu")
    robustness(",".join(targets), backend=",".join(dict.fromkeys(backends)) or "numpy", seeds=3, sequences=256,
               task=spec and spec[0], seed=0, out=out / "robustness", data_flags=flags)


def _print_bench(console, results: dict, out: Path) -> None:
    from . import report

    console.print(report.terminal_table(results))
    for line in report.skipped_lines(results):
        console.print(f"[dim]{line}[/dim]")
    plots = ", ".join(results.get("plots", [])) or f"none ({results.get('plots_note')})"
    console.print(f"results: [bold]{out / 'results.json'}[/bold], report: [bold]{out / 'report.md'}[/bold], "
                  f"plots: {plots}")


def _check_kinds_args(kinds: str, task, units: int, match: str, wiring, epochs: int):
    from ..nn import WIRINGS
    from ..nn.functional import CELLS
    from . import zoo
    from .run import parse_list

    if not task:
        raise ValueError("--kinds needs --task (the models are trained on it)")
    kind_list = A.choices(parse_list(kinds, None, "kinds"), tuple(CELLS), "kind(s)")
    A.integer(units, "--units")
    A.integer(epochs, "--epochs")
    if wiring is not None:
        A.choice(wiring, tuple(WIRINGS), "--wiring")
    return kind_list, parse_list(match, zoo.MATCHES, "match")


def _kinds_task(task, flags: dict):
    """(name, load_task options) --kinds trains on: --task with the data flags (csv/npz: the user's file)."""
    from ..train.stored import DATA_FLAGS, task_options

    if not task:
        raise ValueError("--kinds needs --task (the models are trained on it)")
    return task, task_options(task, episodes=None, **{k: flags.get(k) for k in DATA_FLAGS})


def _train_kinds(console, kinds, spec, units, match, wiring, epochs, out) -> list[Path]:
    from ..train.tasks import load_task
    from . import zoo
    from .run import progress_bar

    task, options = spec
    kind_list, matches = _check_kinds_args(kinds, task, units, match, wiring, epochs)
    entries = zoo.plan_zoo(load_task(task, **options), kind_list, units, matches, wiring)
    with progress_bar(console, "train") as prog:
        t = prog.add_task(entries[0]["name"], total=len(entries))
        names = iter([e["name"] for e in entries[1:]] + [""])
        paths = zoo.train_zoo(task, entries, Path(out) / "models", epochs=epochs, task_options=options,
                              progress=lambda e, s: prog.update(t, advance=1, description=next(names)))
    console.print(f"trained {len(paths)} models ({epochs} epochs each) on {task}: "
                  + ", ".join(f"{e['name']} ({e['match']})" for e in entries))
    return paths


# ltc prune -------------------------------------------------------------------------------


def prune(
    model: Path = typer.Argument(..., help="A trained LTC model file (.safetensors)."),
    sparsity: str = typer.Option("0.5", help="Fraction of existing synapses to remove; a comma list "
                                             "(e.g. 0.25,0.5,0.75) writes one model per value."),
    task: Optional[str] = typer.Option(None, help="Task to fine-tune on and to measure the metric with "
                                                  "(default: the model's stored task and data file)."),
    fine_tune_epochs: int = typer.Option(0, help="Epochs of fine-tuning with the pruned mask fixed (needs a task)."),
    lr: Optional[float] = typer.Option(None, help="Fine-tuning learning rate (task default otherwise)."),
    time_c: bool = typer.Option(True, help="Time the generated C step of each pruned net (needs a C compiler)."),
    out: Path = typer.Option(Path("pruned"), help="A .safetensors file (one sparsity) or a folder."),
    data: Optional[Path] = MODEL_DATA, inputs: Optional[str] = MODEL_INPUTS, targets: Optional[str] = MODEL_TARGETS,
    time: Optional[str] = MODEL_TIME,
):
    """Magnitude-prune an LTC's synapses, fine-tune with the mask fixed, and report metric and C step
    time vs sparsity. Exports of the pruned net carry the sparsity (the C loops over kept synapses)."""
    levels = _check_prune_args(model, sparsity, task, fine_tune_epochs, lr, out)
    need = "--fine-tune-epochs" if fine_tune_epochs else None
    spec = model_task(model, task, data_flags(data, inputs, targets, time), need=need)
    from . import prune_run

    prune_run.run_prune(model, levels, task=spec, fine_tune_epochs=fine_tune_epochs, lr=lr, time_c=time_c, out=out)


def _check_prune_args(model: Path, sparsity: str, task, fine_tune_epochs: int, lr, out: Path) -> list[float]:
    from . import prune_run

    levels = A.number_list(sparsity, "--sparsity", A.fraction)
    A.integer(fine_tune_epochs, "--fine-tune-epochs", low=0)
    if lr is not None:
        A.positive(lr, "--lr")
    A.task_name(task)
    if out.suffix == ".safetensors" and len(levels) != 1:
        raise ValueError("--out is one .safetensors file: give one --sparsity value, or a folder for several")
    for path in prune_run.outputs(model, levels, out):
        A.output_not_input(path, model)
    return levels


# ltc sweep -------------------------------------------------------------------------------


def sweep(
    config: Path = typer.Argument(..., help="Sweep config (TOML or JSON); see ltc_edge/bench/sweep.py."),
    out: Path = typer.Option(Path("sweep-out"), help="Folder for trials, Ray state and sweep.json."),
    address: Optional[str] = typer.Option(None, help="Join an existing Ray cluster: auto (the one started on "
                                                     "this machine with `ray start`) or ray://head:10001; "
                                                     "overrides the config's ray.address. Default (or local): a fresh local "
                                                     "Ray for this sweep, never a stale one left running."),
    resume: bool = typer.Option(False, help="Continue an interrupted sweep in OUT: trials it already holds "
                                            "(same config, artifacts intact) are not run again."),
):
    """Hyper-parameter search on Ray Tune: each trial trains, exports to ONNX and times the step;
    results meet in one accuracy-vs-latency Pareto table (the test metric over windows and streamed
    over the whole test series, state carried), and with seed = [...] in the grid each
    configuration's metric as mean ± std over its seeds.

    CONFIG keys: task, epochs, batch_size, seed; a task_options table, the task's data options as
    `ltc train` takes them (csv/npz: data, inputs, targets, time, seq_len, stride, split; paths
    relative to the config's folder); a search table of lists to grid over (model, units, wiring,
    lr, ode_unfolds, seed); a ray table (num_cpus, cpus_per_trial, max_concurrent, max_failures, address).
    Trials need no shared filesystem: their artifacts come home to OUT as bytes, sha256-checked.
    While it runs: a line per trial event (start, epoch, done, failed, retried) and k/N done with an
    ETA; Ray's own output goes to OUT/ray.log."""
    from rich.console import Console

    from .sweep import check_task, groups_table, ray_init_args, read_config, run_sweep, table, trials

    A.output_not_input(out, config)
    A.output_not_input(out / "sweep.json", config)
    if address is not None and not address.strip():
        raise ValueError("--address is empty; leave it out for a local Ray")
    cfg = read_config(config)
    if address:
        cfg.setdefault("ray", {})["address"] = address
    console = Console()
    for doubt in check_task(cfg):  # bad data: one error line here, before Ray starts
        console.print(f"warning: {doubt}", style="yellow", markup=False)
    where = ray_init_args(cfg.get("ray") or {})["address"]
    console.print(f"sweep: {len(trials(cfg))} trials on task {cfg['task']} "
                  f"({'a fresh local Ray' if where == 'local' else 'Ray at ' + where})")
    summary = run_sweep(cfg, out, resume=resume)
    if summary["resumed"]:
        console.print(f"resumed: {summary['resumed']} finished trial(s) in {out} not run again")
    if summary["rows"]:
        console.print(table(summary))
    if summary.get("groups"):
        console.print(groups_table(summary))
    for f in summary["failed"]:
        console.print(f"[red]failed[/red] {f['trial']}: {f['error']}")
    console.print(f"results: [bold]{out / 'sweep.json'}[/bold]")
    if not summary["rows"]:
        raise typer.Exit(1)
