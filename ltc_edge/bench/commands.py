"""`ltc bench`, `ltc analyze`, `ltc prune`, `ltc sweep` (imports stay inside the commands)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer


def register(command):
    @command()
    def bench(
        models: Optional[List[Path]] = typer.Argument(None, help="Model files (.safetensors) to compare, e.g. an "
                                                                 "LTC and an LSTM (or none, with --kinds)."),
        backend: str = typer.Option("numpy,onnxruntime", help="Comma list of torch, numpy, onnxruntime, tflite, c."),
        precision: str = typer.Option("fp32", help="Comma list of fp32, fp16, int8 (onnxruntime and tflite; "
                                                   "the others run fp32)."),
        target: str = typer.Option("cpu", help="Comma list of cpu, cuda (torch / onnxruntime on a GPU), arm64, "
                                               "cortex-m4 (C under qemu: instruction counts, flash, RAM)."),
        batch: str = typer.Option("1,8,64", help="Comma list of batch sizes for latency and throughput."),
        task: Optional[str] = typer.Option(None, help="Task whose test split gives the accuracy metric "
                                                      "(cheetah, digits, pendulum, ...); also int8 calibration."),
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
    ):
        """Latency (p50/p90/p99), throughput, size, memory and accuracy per model x backend x precision x target.

        Writes OUT/results.json (schema in ltc_edge/bench/report.py), OUT/report.md and PNG plots
        (latency vs accuracy with its Pareto front, latency by backend, size by precision).

        Every cell kind side by side: ltc bench --kinds ltc,cfc,ctrnn,node,lstm,gru --task cheetah
        trains each kind at equal hidden size and at equal parameter count (OUT/models/) first.
        """
        from rich.console import Console
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        from . import report
        from .run import (BACKENDS, PRECISIONS, TARGETS, parse_batches, parse_list, plan, run_bench)

        backends = parse_list(backend, BACKENDS, "backend")
        precisions = parse_list(precision, PRECISIONS, "precision")
        targets = parse_list(target, TARGETS, "target")
        batches = parse_batches(batch)
        import sys

        console = Console(width=None if sys.stdout.isatty() else 120)
        models = list(models or [])
        if kinds:
            models += _train_kinds(console, kinds, task, units, match, wiring, epochs, out)
        if not models:
            raise ValueError("no models: give model files, or --kinds with --task to train them")
        total = len(plan(models, backends, precisions, targets))
        with Progress(TextColumn("[bold]bench"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                      TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as prog:
            t = prog.add_task("", total=total)

            def tick(row):
                prog.update(t, advance=1, description=f"{row['model']} {row['backend']}/{row['precision']}"
                                                      f"/{row['target']}")

            results = run_bench(models, backends=backends, precisions=precisions, targets=targets, batches=batches,
                                task=task, out=out, min_seconds=seconds, progress=tick)
        console.print(report.terminal_table(results))
        for line in report.skipped_lines(results):
            console.print(f"[dim]{line}[/dim]")
        console.print(f"results: [bold]{out / 'results.json'}[/bold], report: [bold]{out / 'report.md'}[/bold], "
                      f"plots: {', '.join(results.get('plots', [])) or 'none (matplotlib missing)'}")

    @command()
    def analyze(
        what: str = typer.Argument(..., help="trajectory (latent trajectory length), bounds (LTC theorems) or "
                                             "solvers (Euler / semi-implicit / RK4 x unfolds, BPTT vs adjoint)."),
        target: str = typer.Argument(..., help="trajectory: a cell kind (ltc, ctrnn, node, lstm), 'all', or a "
                                               "model file; bounds, solvers: an LTC model file."),
        width: int = typer.Option(32, help="trajectory: layer width k."),
        depth: int = typer.Option(4, help="trajectory: number of stacked layers."),
        sigma_w: str = typer.Option("1,2,4,8", help="trajectory: comma list of weight scales σ_w."),
        steps: int = typer.Option(100, help="trajectory: points on the input circle / bounds: steps per sequence."),
        sequences: int = typer.Option(32, help="bounds: random input sequences."),
        task: Optional[str] = typer.Option(None, help="bounds: use this task's test inputs instead of random ones."),
        states: Optional[Path] = typer.Option(None, help="bounds: also check states recorded elsewhere "
                                                         "(.npy [..., neurons], e.g. from a quantized export)."),
        seed: int = typer.Option(0, help="Random seed."),
        out: Path = typer.Option(Path("analysis-out"), help="Folder for the JSON and PNG."),
    ):
        """Check LTC claims on your models: trajectory-length expressivity, and the paper's bounds on
        time constants and states (violations reported per neuron)."""
        import json

        import numpy as np
        from rich.console import Console
        from rich.table import Table

        from ..nn.modelfile import atomic_write_bytes, read

        console = Console()
        if what == "trajectory":
            from . import expressivity as E

            scales = [float(s) for s in sigma_w.split(",") if s.strip()]
            if Path(target).suffix == ".safetensors":
                config, tensors = read(target)
                from ..nn import load

                r = E.trajectory_lengths(config["cell"]["kind"], layers=[load(target)], steps=steps, seed=seed)
                result = {"width": config["cell"]["units"], "depth": 1, "sigma_ws": [None], "runs": [r]}
            else:
                kinds = E.KINDS if target == "all" else [k.strip() for k in target.split(",")]
                bad = [k for k in kinds if k not in E.KINDS + ("cfc", "gru")]
                if bad:
                    raise ValueError(f"unknown cell kind(s) {', '.join(bad)}; use ltc, ctrnn, node, lstm, cfc, gru or all")
                result = E.sweep(kinds, width, depth, scales, steps=steps, seed=seed)
                result["plot"] = Path(E.plot(result, out / "trajectory_length.png")).name
            atomic_write_bytes(out / "trajectory_length.json", json.dumps(result, indent=2).encode())
            table = Table(title="latent trajectory length (2-D PCA) per layer")
            for col in ("kind", "σ_w", "per layer"):
                table.add_column(col)
            for run in result["runs"]:
                table.add_row(run["kind"], str(run["sigma_w"]), "  ".join(f"{v:.3g}" for v in run["pca2_length_per_layer"]))
            console.print(table)
            console.print(f"written to [bold]{out}[/bold]")
        elif what == "bounds":
            from . import bounds

            config, tensors = read(target)
            rng = np.random.default_rng(seed)
            if task:
                from ..train.tasks import load_task

                split = load_task(task).test
                x, dt = split.x, (1.0 if split.dt is None else split.dt)
            else:
                x = rng.normal(size=(sequences, steps, config["input_size"])).astype(np.float32) * 3
                dt = rng.uniform(0.01, 2.0, size=(sequences, steps)).astype(np.float32)
            ext = np.load(states) if states else None
            result = bounds.check(config, tensors, x, dt, states=ext)
            atomic_write_bytes(out / "bounds.json", json.dumps(result, indent=2).encode())
            table = Table(title=f"LTC bounds on {target}: {'OK' if result['ok'] else 'VIOLATED'}")
            for col in ("neuron", "state bound", "observed", "τ bound", "observed τ", "ok"):
                table.add_column(col)
            for n in result["neurons"]:
                table.add_row(str(n["neuron"]), "[{:.3g}, {:.3g}]".format(*n["state_bound"]),
                              "[{:.3g}, {:.3g}]".format(*n["state_observed"]), "[{:.3g}, {:.3g}]".format(*n["tau_bound"]),
                              "[{:.3g}, {:.3g}]".format(*n["tau_observed"]),
                              "yes" if n["state_ok"] and n["tau_ok"] else "[red]NO[/red]")
            console.print(table)
            if ext is not None:
                v = result["external"]["violations"]
                console.print(f"external states: {'within bounds' if not v else 'violations at neurons ' + str(v)}")
            console.print(f"written to [bold]{out / 'bounds.json'}[/bold]")
            if not result["ok"] or (ext is not None and not result["external"]["ok"]):
                raise typer.Exit(2)
        elif what == "solvers":
            from ..nn import load
            from . import solvers as S

            model = load(target)
            if model.kind != "ltc":
                raise ValueError(f"the solver study is for LTC models; {target} is {model.kind!r}")
            table = S.solver_table(model, steps=steps if steps != 100 else 50, seed=seed)
            table["adjoint_vs_bptt"] = [S.adjoint_vs_bptt(model, unfolds=k, seed=seed) for k in (3, 6, 12)]
            table["plot"] = Path(S.plot(table, out / "solvers.png")).name
            atomic_write_bytes(out / "solvers.json", json.dumps(table, indent=2).encode())
            t = Table(title=f"LTC solver study on {target} (reference: {table['reference']})")
            for col in ("solver", "unfolds", "max abs error", "grad norm", "µs/step"):
                t.add_column(col)
            for r in table["rows"]:
                t.add_row(r["solver"], str(r["unfolds"]), f"{r['max_abs_error']:.3g}", f"{r['grad_norm']:.3g}",
                          f"{r['us_per_step']:.0f}")
            console.print(t)
            if table["instantaneous_neurons"]:
                console.print(f"{len(table['instantaneous_neurons'])} neuron(s) have cm = 0 (instantaneous): only the "
                              "semi-implicit solver integrates this model; explicit solvers give nan")
            for a in table["adjoint_vs_bptt"]:
                if a.get("skipped"):
                    console.print(f"unfolds {a['unfolds']}: BPTT vs adjoint skipped: {a['skipped']}")
                    continue
                console.print(f"unfolds {a['unfolds']}: BPTT keeps {a['bptt']['saved_bytes']} B "
                              f"(grad rel err {a['bptt']['grad_rel_error']:.2g}), adjoint {a['adjoint']['saved_bytes']} B "
                              f"(grad rel err {a['adjoint']['grad_rel_error']:.2g})")
            console.print(f"written to [bold]{out}[/bold]")
        else:
            raise ValueError(f"unknown analysis {what!r}; choose trajectory, bounds or solvers")

    @command()
    def prune(
        model: Path = typer.Argument(..., help="A trained LTC model file (.safetensors)."),
        sparsity: str = typer.Option("0.5", help="Fraction of existing synapses to remove; a comma list "
                                                 "(e.g. 0.25,0.5,0.75) writes one model per value."),
        task: Optional[str] = typer.Option(None, help="Task to fine-tune on and to measure the metric with."),
        fine_tune_epochs: int = typer.Option(0, help="Epochs of fine-tuning with the pruned mask fixed (needs --task)."),
        lr: Optional[float] = typer.Option(None, help="Fine-tuning learning rate (task default otherwise)."),
        time_c: bool = typer.Option(True, help="Time the generated C step of each pruned net (needs a C compiler)."),
        out: Path = typer.Option(Path("pruned"), help="A .safetensors file (one sparsity) or a folder."),
    ):
        """Magnitude-prune an LTC's synapses, fine-tune with the mask fixed, and report metric and C step
        time vs sparsity. Exports of the pruned net carry the sparsity (the C loops over kept synapses)."""
        import json

        from rich.console import Console
        from rich.table import Table

        from ..nn import load, save
        from ..nn.modelfile import atomic_write_bytes
        from ..nn.prune import prune_model, synapse_counts

        levels = [float(s) for s in sparsity.split(",") if s.strip()]
        if not levels:
            raise ValueError("--sparsity is empty")
        if fine_tune_epochs and not task:
            raise ValueError("--fine-tune-epochs needs --task")
        single = out.suffix == ".safetensors"
        if single and len(levels) != 1:
            raise ValueError("--out is one .safetensors file: give one --sparsity value, or a folder for several")
        base = load(model)
        console = Console()
        task_data = None
        if task:
            from ..train.tasks import load_task

            task_data = load_task(task)
        rows = []
        for s in [0.0] + levels:
            pruned = prune_model(base, s) if s > 0 else base
            path = out if single and s > 0 else (out / f"pruned-{s:g}.safetensors" if s > 0 else model)
            if s > 0:
                if fine_tune_epochs:
                    from ..train.loop import TrainOptions, default_lr, train

                    train(task_data, pruned, path,
                          TrainOptions(epochs=fine_tune_epochs, lr=lr or default_lr(task_data, pruned.kind),
                                       batch_size=task_data.defaults.get("batch_size", 16)),
                          progress=True, log=lambda m: None)
                    pruned = load(path)
                else:
                    save(pruned, path)
            row = {"sparsity": s, "file": str(path), **synapse_counts(pruned.config)}
            if task_data is not None:
                from ..train.loop import evaluate

                row[task_data.metric] = float(evaluate(pruned, task_data, "test")[task_data.metric])
            if time_c:
                row["c_step_us"] = _c_step_us(path)
            rows.append(row)
        report = {"model": str(model), "task": task, "fine_tune_epochs": fine_tune_epochs, "rows": rows}
        report_path = (out.parent if single else out) / "prune_report.json"
        atomic_write_bytes(report_path, json.dumps(report, indent=2).encode())
        t = Table(title=f"pruning {model}")
        cols = [k for k in rows[0] if k != "file"]
        for c in cols:
            t.add_column(c)
        for r in rows:
            t.add_row(*(f"{r[c]:.4g}" if isinstance(r.get(c), float) else str(r.get(c)) for c in cols))
        console.print(t)
        console.print(f"report: [bold]{report_path}[/bold]")

    @command()
    def sweep(
        config: Path = typer.Argument(..., help="Sweep config (TOML or JSON); see ltc_edge/bench/sweep.py."),
        out: Path = typer.Option(Path("sweep-out"), help="Folder for trials, Ray state and sweep.json."),
        address: Optional[str] = typer.Option(None, help="An existing Ray cluster (e.g. auto, ray://head:10001); "
                                                         "overrides the config. Default: a local Ray."),
    ):
        """Hyper-parameter search on Ray Tune: each trial trains, exports to ONNX and times the step;
        results meet in one accuracy-vs-latency Pareto table."""
        from rich.console import Console

        from .sweep import read_config, run_sweep, table, trials

        cfg = read_config(config)
        if address:
            cfg.setdefault("ray", {})["address"] = address
        console = Console()
        console.print(f"sweep: {len(trials(cfg))} trials on task {cfg['task']} "
                      f"({'Ray at ' + cfg['ray']['address'] if cfg.get('ray', {}).get('address') else 'local Ray'})")
        summary = run_sweep(cfg, out)
        if summary["rows"]:
            console.print(table(summary))
        for f in summary["failed"]:
            console.print(f"[red]failed[/red] {f['trial']}: {f['error']}")
        console.print(f"results: [bold]{out / 'sweep.json'}[/bold]")
        if not summary["rows"]:
            raise typer.Exit(1)


def _train_kinds(console, kinds, task, units, match, wiring, epochs, out) -> list[Path]:
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from ..train.tasks import load_task
    from . import zoo
    from .run import parse_list

    if not task:
        raise ValueError("--kinds needs --task (the models are trained on it)")
    kinds = parse_list(kinds, None, "kinds")
    entries = zoo.plan_zoo(load_task(task), kinds, units, parse_list(match, zoo.MATCHES, "match"), wiring)
    with Progress(TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as prog:
        t = prog.add_task(entries[0]["name"], total=len(entries))
        names = iter([e["name"] for e in entries[1:]] + [""])
        paths = zoo.train_zoo(task, entries, Path(out) / "models", epochs=epochs,
                              progress=lambda e, s: prog.update(t, advance=1, description=next(names)))
    console.print(f"trained {len(paths)} models ({epochs} epochs each) on {task}: "
                  + ", ".join(f"{e['name']} ({e['match']})" for e in entries))
    return paths


def _c_step_us(path) -> float | None:
    """Median µs per step of the generated C for a model file (None without a C compiler)."""
    import shutil

    import numpy as np

    if not shutil.which("cc") and not shutil.which("gcc"):
        return None
    from ..runtime import load

    from .timing import measure_latency

    ctrl = load(path, backend="c")
    x = np.zeros((1, ctrl.input_size), np.float32)
    return measure_latency(lambda: ctrl.step(x, 0.05), min_seconds=0.2)["p50_us"]
