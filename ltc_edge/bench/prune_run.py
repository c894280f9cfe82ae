"""`ltc prune`: magnitude-prune an LTC at each sparsity, optionally fine-tune with the mask fixed,
and report synapses, metric and C step time per sparsity (row 0 is the unpruned model)."""

from __future__ import annotations

import json
from pathlib import Path

from ..fileio import atomic_write_bytes


def model_path(model: Path, level: float, out: Path) -> Path:
    """Where the net pruned to `level` goes: OUT itself (a .safetensors), or OUT/pruned-S.safetensors;
    level 0 is the input model, which is never written."""
    if level == 0:
        return Path(model)
    return out if out.suffix == ".safetensors" else out / f"pruned-{level:g}.safetensors"


def report_path(out: Path) -> Path:
    return (out.parent if out.suffix == ".safetensors" else out) / "prune_report.json"


def outputs(model: Path, levels, out: Path) -> list[Path]:
    """Every file `ltc prune` writes."""
    return [model_path(model, s, out) for s in levels] + [report_path(out)]


def _pruned(base, level: float, path: Path, task_data, fine_tune_epochs: int, lr):
    """The pruned model, written to `path` (fine-tuned first when asked)."""
    from ..nn import load, save
    from ..nn.prune import prune_model

    pruned = prune_model(base, level)
    if not fine_tune_epochs:
        save(pruned, path)
        return pruned
    from ..train.loop import TrainOptions, default_lr, train

    options = TrainOptions(epochs=fine_tune_epochs, lr=lr or default_lr(task_data, pruned.kind),
                           batch_size=task_data.defaults.get("batch_size", 16))
    train(task_data, pruned, path, options, progress=True, log=lambda m: None)
    return load(path)


def _row(level: float, path: Path, model, task_data, time_c: bool) -> dict:
    from ..nn.prune import synapse_counts

    row = {"sparsity": level, "file": str(path), **synapse_counts(model.config)}
    if task_data is not None:
        from ..train.loop import evaluate

        row[task_data.metric] = float(evaluate(model, task_data, "test")[task_data.metric])
    if time_c:
        row["c_step_us"] = c_step_us(path)
    return row


def run_prune(model: Path, levels, *, task=None, fine_tune_epochs: int = 0, lr=None, time_c: bool = True,
              out: Path = Path("pruned")) -> dict:
    """Arguments are checked by the command (commands.py); writes the models and the report.
    `task`: a name, or (name, load_task options) as train.stored.model_task gives them."""
    from ..nn import load

    base = load(model)
    task_data = None
    if task:
        from ..train.tasks import load_task

        name, opts = (task, {}) if isinstance(task, str) else task
        task_data, task = load_task(name, **opts), name
    rows = [_row(0.0, Path(model), base, task_data, time_c)]
    for s in levels:
        path = model_path(model, s, out)
        rows.append(_row(s, path, _pruned(base, s, path, task_data, fine_tune_epochs, lr), task_data, time_c))
    report = {"model": str(model), "task": task, "fine_tune_epochs": fine_tune_epochs, "rows": rows}
    atomic_write_bytes(report_path(out), json.dumps(report, indent=2).encode())
    _print(model, rows, report_path(out))
    return report


def _print(model: Path, rows: list[dict], path: Path) -> None:
    from rich.console import Console
    from rich.table import Table

    t = Table(title=f"pruning {model}")
    cols = [k for k in rows[0] if k != "file"]
    for c in cols:
        t.add_column(c)
    for r in rows:
        t.add_row(*(f"{r[c]:.4g}" if isinstance(r.get(c), float) else str(r.get(c)) for c in cols))
    console = Console()
    console.print(t)
    console.print(f"report: [bold]{path}[/bold]")


def c_step_us(path) -> float | None:
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
