"""`ltc demo`: the whole pipeline, end to end, in under 10 minutes on 2 CPU cores.

1. train an NCP-wired LTC and an LSTM on the HalfCheetah traces (short schedule)
2. export both to ONNX and TFLite in fp32 and int8, to C, and (when installed) to ExecuTorch
   in fp32 (drift-checked)
3. benchmark them (latency, throughput, size, memory, test MSE) and write report + plots;
   a short robustness sweep of both (noise, dropped samples, rate changes, dt jitter, sensor faults)
4. clone the pendulum swing-up expert into an LTC (DAgger) and run it closed-loop on numpy and C
5. write report.md (every stage, skipped targets with their reason, a conclusion) and demo.json
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import time
from pathlib import Path

from ..errors import LtcEdgeError
from ..fileio import atomic_write_bytes
from ..precision import REFERENCE


def run_demo(out: Path, seed: int = 0, epochs: int = 12, pendulum_rounds: int = 16, quick: bool = False,
             robustness: bool = True) -> dict:
    from rich.rule import Rule

    from ..bench.run import wide_console

    if epochs < 1 or pendulum_rounds < 0:  # before any work (a bad value would fail minutes in)
        raise LtcEdgeError(f"demo needs --epochs >= 1 and --pendulum-rounds >= 0, got {epochs} and {pendulum_rounds}")
    console = wide_console()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    summary = {"seed": seed, "epochs": 1 if quick else epochs, "load_start": _load(), "stage_s": {}}
    console.print(Rule("1/4  train on the HalfCheetah traces (LTC paper protocol, short schedule)"))
    models = _train_cheetah(console, out, seed, epochs, quick, summary)
    summary["stage_s"]["train"] = round(time.time() - started, 1)
    console.print(Rule("2/4 + 3/4  export (ONNX, TFLite: fp32 + int8; C; ExecuTorch: fp32) and benchmark"))
    t0 = time.time()
    results, backends = _bench(console, out, models, quick)
    summary["bench"] = str(out / "bench" / "results.json")
    summary["stage_s"]["export + bench"] = round(time.time() - t0, 1)
    if robustness:
        _robustness(console, models, backends, quick, seed, summary)
    console.print(Rule("4/4  pendulum: clone the swing-up expert into an LTC (DAgger), fly it closed-loop"))
    t0 = time.time()
    summary["pendulum"] = _pendulum(console, out, seed, pendulum_rounds, quick, backends)
    summary["stage_s"]["pendulum"] = round(time.time() - t0, 1)
    summary["total_s"] = round(time.time() - started, 1)
    summary["load_end"] = _load()
    _finish(console, out, summary, results, models)
    return summary


def _load() -> list[float] | None:
    """The 1/5/15-minute load averages (other processes share the cores the timings use)."""
    try:
        return [round(v, 2) for v in os.getloadavg()]
    except OSError:
        return None


def _robustness(console, models: dict, backends, quick: bool, seed: int, summary: dict) -> None:
    """A short robustness sweep of the cheetah models for the report (a few seconds of CPU)."""
    from rich.rule import Rule

    from ..analyze.robustness import demo_sweep

    console.print(Rule("robustness: the cheetah LTC-NCP and LSTM on perturbed test inputs"))
    t0 = time.time()
    summary["robustness"] = demo_sweep(models, backend="c" if "c" in backends else "numpy", quick=quick,
                                       seed=seed, progress=lambda what: console.print(f"  {what}", style="dim"))
    summary["stage_s"]["robustness"] = round(time.time() - t0, 1)


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
    from ..bench import report
    from ..bench.run import run_with_progress

    targets = ["cpu"] if quick else ["cpu", "cortex-m4"]  # missing ARM tools: a skipped row with the reason
    backends = ["numpy", "onnxruntime"] + ([] if quick else ["tflite"])
    if shutil.which("cc") or shutil.which("gcc"):
        backends.append("c")
    precisions = {b: ["fp32"] if quick else ["fp32", "int8"] for b in backends}
    if not quick and importlib.util.find_spec("executorch"):
        backends.append("executorch")  # fp32 only: its int8 (PT2E) export takes ~40 s a model
        precisions["executorch"] = ["fp32"]
    results = run_with_progress(console, list(models.values()), backends=backends, precisions=precisions,
                                targets=targets,
                                batches=(1,) if quick else (1, 16), task=None if quick else "cheetah",
                                out=out / "bench", min_seconds=0.05 if quick else 0.3)
    console.print(report.terminal_table(results))
    for line in report.skipped_lines(results):
        console.print(f"[dim]{line}[/dim]")
    return results, backends


def _pendulum(console, out: Path, seed: int, rounds: int, quick: bool, backends) -> dict:
    """Clone the swing-up expert into a fully connected 16-neuron LTC (DAgger; its dense synapses
    fit the bang-bang expert better than a 16-neuron NCP) and fly it closed-loop on numpy (and
    C) on the episode seeds `ltc eval` uses (0, 1, ...), beside the expert on the same seeds."""
    from ..runtime import load as runtime_load
    from ..runtime.control import run_episodes
    from ..train.dagger import DaggerOptions, clone_pendulum
    from ..train.pendulum import Expert, evaluate_pendulum

    opts = DaggerOptions(seed=seed, iterations=rounds)
    if quick:  # tests: a round of each kind, a few steps
        opts = DaggerOptions(seed=seed, iterations=1, demo_episodes=3, episodes=2, bc_steps=4, steps=2,
                             select_episodes=1)
    ppath, network = out / "models" / "pendulum-ltc.safetensors", "fully connected 16-neuron LTC"
    rec = clone_pendulum(ppath, units=16, wiring=None, opts=opts, log=console.print)
    episodes = 2 if quick else 10
    expert = evaluate_pendulum(Expert(), episodes=episodes, seed=0)
    clone = {}
    for backend in [b for b in ("numpy", "c") if b in backends]:
        r = run_episodes(runtime_load(ppath, backend=backend), "Pendulum-v1", episodes=episodes, seed=0)
        clone[backend] = {"returns": r["returns"], "return_mean": r["return_mean"]}
        console.print(f"  LTC clone on {backend:>5}: mean return {r['return_mean']:8.1f}  "
                      f"(episodes: {', '.join(f'{v:.0f}' for v in r['returns'])})")
    console.print(f"  expert:              mean return {expert['return_mean']:8.1f}  "
                  f"(episodes: {', '.join(f'{v:.0f}' for v in expert['returns'])})")
    mean = clone["numpy"]["return_mean"]
    gap = (expert["return_mean"] - mean) / abs(expert["return_mean"])
    return {"method": f"DAgger into a {network}: behaviour cloning on {opts.demo_episodes} expert episodes, then "
                      f"up to {opts.iterations} rounds of {opts.episodes} student rollouts labelled by the expert (a "
                      f"torque beyond the limit the expert saturates at costs nothing), stopping once within "
                      f"{opts.stop_within:.0%} of the expert on {opts.select_episodes} selection episodes (seeds "
                      f"{rec['select_seeds'][0]}–{rec['select_seeds'][1]}, not the evaluation seeds); kept: round "
                      f"{rec['best_iteration']} of {len(rec['history']) - 1}, the best on the selection episodes",
            "network": network, "train_s": rec["train_s"], "train_cpu_s": rec["train_cpu_s"],
            "seeds": list(range(episodes)), "model": str(ppath),
            "expert": {"returns": expert["returns"], "return_mean": expert["return_mean"]},
            "clone": clone, "clone_mean": mean, "gap": gap, "within_10_percent": abs(gap) <= 0.1,
            "dagger": rec["history"], "best_round": rec["best_iteration"]}


RECORDED_PARETO = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "pareto_m4.json"


def recorded_pareto(path: Path = RECORDED_PARETO) -> dict | None:
    """The recorded converged cheetah figures of a clone (benchmarks/pareto_m4.py): each 32-unit cell's
    converged test MSE (the converged sweep's, else the 200-epoch table's) and, at equal accuracy, what the LTC-NCP-32 costs on the M4 against the cheapest
    cell of another kind that is as accurate. None without the file (an installed package)."""
    try:
        rec = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    anchor = [p for p in rec.get("points", []) if p["source"] == "converged table" and p["precision"] == REFERENCE]
    # a sweep trained to convergence (early stop) stands for the table: the same protocol as its verdict
    if (rec.get("protocol") or {}).get("converged"):
        anchor = [p for p in rec["points"] if p["source"] == "sweep" and p["precision"] == REFERENCE
                  and p["units"] == 32 and set(p.get("status") or []) == {"finished"}] or anchor
    if not anchor:
        return None
    ncp = [e for e in rec.get("equal_accuracy_converged", []) if e["point"].startswith("LTC-NCP-")]
    # the largest LTC-NCP (the demo's is 32 units): "LTC-NCP-32 fp32" -> 32
    eq = max(ncp, key=lambda e: int(e["point"].split()[0].rsplit("-", 1)[1]), default=None)
    answer = None
    if eq and eq.get("cheapest_other_kind_as_accurate"):
        answer = (f"the {eq['point']} (MSE {eq['test_mse']:.3f}, {eq['cycles']:,.0f} estimated cycles per step) is "
                  f"matched or beaten by the {eq['cheapest_other_kind_as_accurate']} (MSE {eq['its_mse']:.3f}) at "
                  f"{eq['its_cycles']:,.0f} cycles: the LTC-NCP costs {eq['cost_ratio']:.2f}x.")
    return {"source": "benchmarks/results/pareto_m4.json", "epochs": anchor[0].get("epochs_cap") or
            rec["protocol"]["epochs_cap"], "early_stop": anchor[0]["source"] == "sweep",
            "seeds": len(anchor[0]["seeds"]), "units": anchor[0]["units"], "answer": answer,
            "converged": {f"{p['kind']}-{p['units']}": {"test_mse": p["test_mse"], "cycles_per_step": p["cost"]}
                          for p in anchor}}


def m4_steps(bench_out: Path, models: dict) -> dict:
    """Which fp32 step each model's exported C builds on the Cortex-M4: "fpv4" (its FPv4 form) or
    "portable"; the conclusion quotes a speed ratio only between steps of the same kind."""
    from ..codegen.c import FPV4_TEST

    steps = {}
    for name, path in models.items():
        sources = sorted((bench_out / "artifacts" / Path(path).stem / "c-fp32").glob("*.c"))
        if sources:
            steps[name] = "fpv4" if FPV4_TEST in sources[0].read_text() else "portable"
    return steps


def _finish(console, out: Path, summary: dict, results: dict, models: dict) -> None:
    from rich.rule import Rule

    from .report import conclusion, markdown

    summary["m4_steps"] = m4_steps(out / "bench", models)
    summary["recorded"] = recorded_pareto()
    atomic_write_bytes(out / "demo.json", json.dumps(summary, indent=2).encode())
    plots = [out / "bench" / Path(p).name for p in results.get("plots", [])]
    atomic_write_bytes(out / "report.md", markdown(summary, results, plots, out).encode())
    console.print(Rule())
    console.print(conclusion(summary, results))
    console.print(f"done in {summary['total_s']:.0f} s. Report: [bold]{out / 'report.md'}[/bold] (plots and the "
                  f"bench's own report in {out / 'bench'}); models: [bold]{out / 'models'}[/bold] "
                  f"(try: ltc eval {out / 'models' / 'pendulum-ltc.safetensors'})")
