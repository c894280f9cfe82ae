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

from ..fileio import atomic_write_bytes


def run_demo(out: Path, seed: int = 0, epochs: int = 12, pendulum_epochs: int = 40, quick: bool = False) -> dict:
    from rich.rule import Rule

    from .run import wide_console

    console = wide_console()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    summary = {"seed": seed}
    console.print(Rule("1/4  train on the HalfCheetah traces (LTC paper protocol, short schedule)"))
    models = _train_cheetah(console, out, seed, epochs, quick, summary)
    console.print(Rule("2/4 + 3/4  export (ONNX, TFLite: fp32 + int8; C) and benchmark"))
    results, backends = _bench(console, out, models, quick)
    summary["bench"] = str(out / "bench" / "results.json")
    console.print(Rule("4/4  pendulum: clone the swing-up expert into an LTC, run it closed-loop"))
    summary["pendulum"] = _pendulum(console, out, seed, pendulum_epochs, quick, backends)
    summary["total_s"] = round(time.time() - started, 1)
    _finish(console, out, summary, results, models)
    return summary


def _train_cheetah(console, out: Path, seed: int, epochs: int, quick: bool, summary: dict) -> dict:
    """An NCP-wired LTC and an LSTM on the cheetah traces; {name: model file}."""
    from ..nn import load
    from ..train.loop import TrainOptions, build_task_model, default_lr, evaluate, train
    from ..train.tasks import load_task

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
    return models


def _bench(console, out: Path, models: dict, quick: bool):
    """Export and bench every model; (results, the backends used)."""
    from . import arm, report
    from .run import run_with_progress

    targets = ["cpu"] if quick or arm.missing_tools("m4") else ["cpu", "cortex-m4"]
    backends = ["numpy", "onnxruntime"] + ([] if quick else ["tflite"])
    if shutil.which("cc") or shutil.which("gcc"):
        backends.append("c")
    results = run_with_progress(console, list(models.values()), backends=backends,
                                precisions=["fp32"] if quick else ["fp32", "int8"], targets=targets,
                                batches=(1,) if quick else (1, 16), task=None if quick else "cheetah",
                                out=out / "bench", min_seconds=0.05 if quick else 0.3)
    console.print(report.terminal_table(results))
    for line in report.skipped_lines(results):
        console.print(f"[dim]{line}[/dim]")
    return results, backends


def _pendulum(console, out: Path, seed: int, pendulum_epochs: int, quick: bool, backends) -> dict:
    """Clone the swing-up expert into an LTC-NCP and fly it closed-loop on numpy (and C)."""
    from ..runtime import load as runtime_load
    from ..runtime.control import run_episodes
    from ..train.loop import TrainOptions, build_task_model, default_lr, train
    from ..train.pendulum import Expert, evaluate_pendulum
    from ..train.tasks import load_task

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
    return {"train_s": round(time.time() - t0, 1), "expert_return": expert["return_mean"],
            "clone_return": closed, "episodes": episodes}


def _finish(console, out: Path, summary: dict, results: dict, models: dict) -> None:
    from rich.rule import Rule

    bench_dir = out / "bench"
    atomic_write_bytes(out / "demo.json", json.dumps(summary, indent=2).encode())
    console.print(Rule())
    console.print(f"done in {summary['total_s']:.0f} s. Report: [bold]{bench_dir / 'report.md'}[/bold]; "
                  f"plots: {', '.join(str(bench_dir / p) for p in results.get('plots', []))}; "
                  f"models: [bold]{out / 'models'}[/bold] (try: ltc info {models['ltc-ncp']})")
