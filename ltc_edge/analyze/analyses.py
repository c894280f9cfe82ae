"""The `ltc analyze` subcommands: one function each (run, write JSON, print), looked up in
ANALYSES by name. Every function takes the target and the command's options by keyword,
ignoring those it does not use; the arguments are already checked (commands.py)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from ..errors import LtcEdgeError
from ..fileio import atomic_write_bytes
from ..nn.functional import CELLS


def _console():
    from rich.console import Console

    return Console()


def _table(title: str, columns):
    from rich.table import Table

    table = Table(title=title)
    for col in columns:
        table.add_column(col)
    return table


def _write_json(path: Path, data: dict) -> None:
    atomic_write_bytes(path, json.dumps(data, indent=2).encode())


def _span(pair) -> str:
    return "[{:.3g}, {:.3g}]".format(*pair)


# trajectory ------------------------------------------------------------------------------


def trajectory_kinds(target: str) -> list[str]:
    """'all' (the paper's four kinds) or a comma list of cell kinds."""
    from .expressivity import KINDS

    if target == "all":
        return list(KINDS)
    kinds = [k.strip() for k in target.split(",") if k.strip()]
    bad = [k for k in kinds if k not in CELLS] or ([] if kinds else [repr(target)])
    if bad:
        raise LtcEdgeError(f"unknown cell kind(s) {', '.join(bad)}; choose from {', '.join(CELLS)}, "
                           "all, or a .safetensors model file")
    return kinds


def _trajectory_of_file(target: str, steps: int, seed: int) -> dict:
    from ..nn import load, read
    from . import expressivity as E

    config, _ = read(target)
    r = E.trajectory_lengths(config["cell"]["kind"], layers=[load(target)], steps=steps, seed=seed)
    return {"width": config["cell"]["units"], "depth": 1, "sigma_ws": [None], "runs": [r]}


def trajectory(target: str, *, width: int, depth: int, sigma_ws: list[float], steps: int, seed: int, out: Path,
               **_) -> None:
    """Latent trajectory length per layer of a cell kind (or 'all', or one model file)."""
    from . import expressivity as E

    if Path(target).suffix == ".safetensors":
        result = _trajectory_of_file(target, steps, seed)
    else:
        result = E.sweep(trajectory_kinds(target), width, depth, sigma_ws, steps=steps, seed=seed)
        result["plot"] = Path(E.plot(result, out / "trajectory_length.png")).name
    _write_json(out / "trajectory_length.json", result)
    table = _table("latent trajectory length (2-D PCA) per layer", ("kind", "σ_w", "per layer"))
    for run in result["runs"]:
        table.add_row(run["kind"], str(run["sigma_w"]), "  ".join(f"{v:.3g}" for v in run["pca2_length_per_layer"]))
    console = _console()
    console.print(table)
    console.print(f"written to [bold]{out}[/bold]")


# bounds ----------------------------------------------------------------------------------


def _bounds_inputs(config: dict, task, sequences: int, steps: int, seed: int):
    """The task's test inputs (task: a name or (name, load_task options)), or random ones (large
    inputs, dt over two decades)."""
    import numpy as np

    if task:
        from ..train.tasks import load_task

        name, opts = (task, {}) if isinstance(task, str) else task
        split = load_task(name, **opts).test
        return split.x, (1.0 if split.dt is None else split.dt)
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(sequences, steps, config["input_size"])).astype(np.float32) * 3
    dt = rng.uniform(0.01, 2.0, size=(sequences, steps)).astype(np.float32)
    return x, dt


def _bounds_table(target: str, result: dict):
    table = _table(f"LTC bounds on {target}: {'OK' if result['ok'] else 'VIOLATED'}",
                   ("neuron", "state bound", "observed", "τ bound", "observed τ", "ok"))
    for n in result["neurons"]:
        table.add_row(str(n["neuron"]), _span(n["state_bound"]), _span(n["state_observed"]), _span(n["tau_bound"]),
                      _span(n["tau_observed"]), "yes" if n["state_ok"] and n["tau_ok"] else "[red]NO[/red]")
    return table


def bounds(target: str, *, steps: int, sequences: int, task, states: Path | None, seed: int,
           out: Path, **_) -> None:
    """The paper's Theorems 1-2 per neuron; exit status 2 when a bound is violated."""
    import numpy as np

    from ..nn import read
    from . import bounds as B

    config, tensors = read(target)
    x, dt = _bounds_inputs(config, task, sequences, steps, seed)
    ext = np.load(states) if states else None
    result = B.check(config, tensors, x, dt, states=ext)
    result["inputs"] = "random" if not task else f"task {task if isinstance(task, str) else task[0]} (test split)"
    _write_json(out / "bounds.json", result)
    console = _console()
    console.print(_bounds_table(target, result))
    if ext is not None:
        v = result["external"]["violations"]
        console.print(f"external states: {'within bounds' if not v else 'violations at neurons ' + str(v)}")
    console.print(f"written to [bold]{out / 'bounds.json'}[/bold]")
    if not result["ok"] or (ext is not None and not result["external"]["ok"]):
        raise typer.Exit(2)


# solvers ---------------------------------------------------------------------------------


def _solver_lines(table: dict) -> list[str]:
    lines = []
    if table["instantaneous_neurons"]:
        lines.append(f"{len(table['instantaneous_neurons'])} neuron(s) have cm = 0 (instantaneous): only the "
                     "semi-implicit solver integrates this model; explicit solvers give nan")
    for a in table["adjoint_vs_bptt"]:
        if a.get("skipped"):
            lines.append(f"unfolds {a['unfolds']}: BPTT vs adjoint skipped: {a['skipped']}")
            continue
        lines.append(f"unfolds {a['unfolds']}: BPTT keeps {a['bptt']['saved_bytes']} B "
                     f"(grad rel err {a['bptt']['grad_rel_error']:.2g}), adjoint {a['adjoint']['saved_bytes']} B "
                     f"(grad rel err {a['adjoint']['grad_rel_error']:.2g})")
    return lines


def solvers(target: str, *, steps: int, seed: int, out: Path, **_) -> None:
    """Semi-implicit / Euler / RK4 x unfolds against a fine reference, and BPTT vs adjoint."""
    from ..nn import load
    from . import solvers as S

    model = load(target)
    if model.kind != "ltc":
        raise ValueError(f"the solver study is for LTC models; {target} is {model.kind!r}")
    table = S.solver_table(model, steps=steps, seed=seed)
    table["adjoint_vs_bptt"] = [S.adjoint_vs_bptt(model, unfolds=k, seed=seed) for k in (3, 6, 12)]
    table["plot"] = Path(S.plot(table, out / "solvers.png")).name
    _write_json(out / "solvers.json", table)
    t = _table(f"LTC solver study on {target} (reference: {table['reference']})",
               ("solver", "unfolds", "max abs error", "grad norm", "µs/step"))
    for r in table["rows"]:
        t.add_row(r["solver"], str(r["unfolds"]), f"{r['max_abs_error']:.3g}", f"{r['grad_norm']:.3g}",
                  f"{r['us_per_step']:.0f}")
    console = _console()
    console.print(t)
    for line in _solver_lines(table):
        console.print(line)
    console.print(f"written to [bold]{out}[/bold]")


# robustness ------------------------------------------------------------------------------


def _deploy(targets: list[str], backends: list[str]):
    """Each model file on each runtime backend (canonical names; an export folder or
    .onnx/.tflite on its own): onnxruntime / tflite / tflm run an fp32 export of a .safetensors,
    made in a temporary folder (the backends read the verified bytes into memory on load)."""
    import tempfile

    from ..export import export_for_backend
    from ..runtime import load
    from .robustness import Deployed

    def short(p: Path, up: bool) -> str:
        return f"{p.parent.name}/{p.name}" if p.is_dir() else f"{p.parent.name}/{p.stem}" if up else p.stem

    paths = [Path(t) for t in targets]
    # files of the same name (model.safetensors of two sweep trials) get their folder's name too
    stems = [short(p, False) for p in paths]
    names = [short(p, stems.count(s) > 1) for p, s in zip(paths, stems)]
    out = []
    with tempfile.TemporaryDirectory(prefix="ltc-robustness-") as tmp:
        for i, (t, p, base) in enumerate(zip(targets, paths, names)):
            on = backends if p.suffix == ".safetensors" else ["auto"]
            for b in on:
                src = t if b == "auto" else export_for_backend(t, b, Path(tmp) / f"{i}-{b}", drift_steps=50)
                ctrl = load(src, b, batch=1, state_check="off", nonfinite="raise")
                name = base if len(on) == 1 else f"{base} ({ctrl.backend_name})"
                out.append(Deployed(name=name, path=str(t), backend=ctrl.backend_name, ctrl=ctrl))
    return out


def _robustness_task(models, task: str | None, flags: dict, sequences: int, seed: int):
    """The models' stored task (they must agree; its data file checked) unless --task / --data
    ...; test rows capped at `sequences`."""
    from ..train.stored import load_model_task
    from .robustness import input_std, sample_rows

    stored = [(m.ctrl.meta.config or {}).get("task") or {} for m in models]
    names = {(s.get("name"), repr(sorted((s.get("options") or {}).items()))) for s in stored}
    if task is None and not any(v is not None for v in flags.values()) and len(names) != 1:
        raise LtcEdgeError("the models do not share one stored task; pass --task or --data")
    _, _, td = load_model_task(models[0].path, task, flags, config=models[0].ctrl.meta.config or {})
    for m in models:
        if m.ctrl.input_size != td.input_size:
            raise LtcEdgeError(f"task {td.name} has {td.input_size} inputs but {m.path} takes {m.ctrl.input_size}")
    return td, sample_rows(td.test, sequences, seed), input_std(td.train)


def robustness(target: str, *, backend: str, seeds: int, sequences: int, task: str | None, seed: int,
               out: Path, data_flags: dict, **_) -> None:
    """Task metric under noise, dropped samples, rate changes, jitter and sensor faults."""
    from . import robustness as R

    from ..runtime import backend_list

    models = _deploy([t for t in target.split(",") if t], backend_list(backend))
    out.mkdir(parents=True, exist_ok=True)
    td, test, std = _robustness_task(models, task, data_flags, sequences, seed)
    console = _console()
    result = R.sweep(models, test, R.Context(input_std=std), td.kind, seeds=seeds,
                     progress=lambda what: console.print(f"  {what}", style="dim"))
    result.update({"task": td.name, "metric": td.metric, "higher_is_better": td.higher_is_better,
                   "test_sequences": len(test)})
    R.add_streaming(result, models, td)
    if td.name == "pendulum":
        result["closed_loop"] = R.closed_loop_sweep(models, std, seeds=seeds,
                                                    progress=lambda what: console.print(f"  {what}", style="dim"))
    from ..export.manifest import versions

    result["versions"] = versions("onnxruntime", "ai-edge-litert")
    result["plot"] = Path(R.plot(result, out / "robustness.png")).name
    _write_json(out / "robustness.json", result)
    atomic_write_bytes(out / "robustness.md", R.markdown(result).encode())
    table = _table(f"robustness on {td.name} ({td.metric} relative to clean, mean of {seeds} seeds)",
                   ("model", "clean", "streamed", *result["levels"]))
    for m in result["models"]:
        worst = [max((r["relative"] or 0.0) for r in m["perturbations"][n]) if not td.higher_is_better
                 else min((r["relative"] or 0.0) for r in m["perturbations"][n]) for n in result["levels"]]
        table.add_row(m["name"], f"{m['clean']:.4g}", f"{m['clean_streaming']:.4g}", *(f"{w:.2f}x" for w in worst))
    console.print(table)
    console.print("(worst level of each perturbation shown; robustness.md has every level; clean: the test "
                  "windows, state reset each; streamed: the whole test series, state carried, as on a device)")
    if len(result["models"]) > 1:
        console.print("verdict (each model at its worst level of each perturbation):")
        for line in R.verdict(result):
            console.print(line, markup=False)
    console.print(f"written to [bold]{out}[/bold]")


ANALYSES = {"trajectory": trajectory, "bounds": bounds, "solvers": solvers, "robustness": robustness}
# --steps when not given: points on the input circle, steps per sequence, solver sequence length
STEPS = {"trajectory": 100, "bounds": 100, "solvers": 50, "robustness": 0}
