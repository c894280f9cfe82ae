"""`ltc demo`: the whole pipeline, end to end, in a few minutes on 2 CPU cores.

1. train an NCP-wired LTC and an LSTM on the HalfCheetah traces (short schedule)
2. export both to ONNX and TFLite in fp32 and int8, and to C (drift-checked)
3. benchmark them (latency, throughput, size, memory, test MSE) and write report + plots
4. clone the pendulum swing-up expert into an LTC and run it closed-loop on numpy and C
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path


def run_demo(out: Path, seed: int = 0, epochs: int = 12, pendulum_epochs: int = 40, quick: bool = False) -> dict:
    from rich.console import Console
    from rich.rule import Rule

    from ..nn import load
    from ..nn.modelfile import atomic_write_bytes
    from ..train.loop import TrainOptions, build_task_model, default_lr, evaluate, train
    from ..train.tasks import load_task
    from . import report
    from .run import run_bench

    import sys

    console = Console(width=None if sys.stdout.isatty() else 120)  # logs and CI: room for the table
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    summary = {"seed": seed}

    # 1. train ------------------------------------------------------------------------
    console.print(Rule("1/4  train on the HalfCheetah traces (LTC paper protocol, short schedule)"))
    cheetah = load_task("cheetah")
    if quick:  # tests: a slice of the data, one epoch
        cheetah.train.x, cheetah.train.y = cheetah.train.x[:64], cheetah.train.y[:64]
    models = {}
    for name, kind, wiring in (("ltc-ncp", "ltc", "auto-ncp"), ("lstm", "lstm", None)):
        model = build_task_model(cheetah, kind, units=32, wiring=wiring, seed=seed)
        path = out / "models" / f"{name}.safetensors"
        t0 = time.time()
        train(cheetah, model, path, TrainOptions(epochs=epochs, lr=default_lr(cheetah, kind), batch_size=16,
                                                 seed=seed), progress=True, log=lambda m: None)
        test = evaluate(load(path), cheetah, "test")
        models[name] = path
        summary[name] = {"test_mse": test["mse"], "train_s": round(time.time() - t0, 1),
                         "parameters": load(path).counts()["parameters"]}
        console.print(f"  {name}: test MSE {test['mse']:.3f} after {epochs} epochs "
                      f"({summary[name]['train_s']} s)")

    # 2 + 3. export and benchmark ------------------------------------------------------
    console.print(Rule("2/4 + 3/4  export (ONNX, TFLite: fp32 + int8; C) and benchmark"))
    import shutil as _sh

    targets = ["cpu"]
    from . import arm

    if not arm.missing_tools("m4") and not quick:
        targets.append("cortex-m4")
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from .run import plan

    bench_dir = out / "bench"
    backends = ["numpy", "onnxruntime", "tflite", "c"] if _sh.which("cc") or _sh.which("gcc") else \
        ["numpy", "onnxruntime", "tflite"]
    precisions = ["fp32"] if quick else ["fp32", "int8"]
    if quick:
        backends = [b for b in backends if b != "tflite"]
    with Progress(TextColumn("[bold]bench"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("{task.description}"), TimeElapsedColumn(), console=console) as prog:
        t = prog.add_task("", total=len(plan(list(models.values()), backends, precisions, targets)))
        results = run_bench(list(models.values()), backends=backends, precisions=precisions, targets=targets,
                            batches=(1,) if quick else (1, 16), task=None if quick else "cheetah",
                            out=bench_dir, min_seconds=0.05 if quick else 0.3,
                            progress=lambda r: prog.update(t, advance=1, description=f"{r['model']} {r['backend']}"
                                                                                    f"/{r['precision']}"))
    console.print(report.terminal_table(results))
    for line in report.skipped_lines(results):
        console.print(f"[dim]{line}[/dim]")
    summary["bench"] = str(bench_dir / "results.json")

    # 4. closed loop -------------------------------------------------------------------
    console.print(Rule("4/4  pendulum: clone the swing-up expert into an LTC, run it closed-loop"))
    from ..runtime import load as runtime_load
    from ..runtime.control import run_episodes
    from ..train.pendulum import Expert, evaluate_pendulum

    pend = load_task("pendulum")
    model = build_task_model(pend, "ltc", units=32, wiring="auto-ncp", seed=seed)
    ppath = out / "models" / "pendulum-ltc.safetensors"
    t0 = time.time()
    train(pend, model, ppath, TrainOptions(epochs=1 if quick else pendulum_epochs, lr=default_lr(pend, "ltc"),
                                           batch_size=16, seed=seed, grad_clip=1.0), progress=True, log=lambda m: None)
    episodes = 2 if quick else 5
    expert = evaluate_pendulum(Expert(), episodes=episodes, seed=100)
    closed = {}
    for backend in [b for b in ("numpy", "c") if b in backends]:
        r = run_episodes(runtime_load(ppath, backend=backend), "Pendulum-v1", episodes=episodes, seed=100)
        closed[backend] = r["return_mean"]
        console.print(f"  LTC clone on {backend:>5}: mean return {r['return_mean']:8.1f}  "
                      f"(episodes: {', '.join(f'{v:.0f}' for v in r['returns'])})")
    console.print(f"  expert:              mean return {expert['return_mean']:8.1f}")
    summary["pendulum"] = {"train_s": round(time.time() - t0, 1), "expert_return": expert["return_mean"],
                           "clone_return": closed, "episodes": episodes}

    summary["total_s"] = round(time.time() - started, 1)
    atomic_write_bytes(out / "demo.json", json.dumps(summary, indent=2).encode())
    console.print(Rule())
    console.print(f"done in {summary['total_s']:.0f} s. Report: [bold]{bench_dir / 'report.md'}[/bold]; "
                  f"plots: {', '.join(str(bench_dir / p) for p in results.get('plots', []))}; "
                  f"models: [bold]{out / 'models'}[/bold] (try: ltc info {models['ltc-ncp']})")
    return summary
