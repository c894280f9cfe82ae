"""`ltc control`: run a model as a controller in a gymnasium environment."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer


def register(command):
    @command("control")
    def control(
        model: Path = typer.Argument(..., help="A model: .safetensors, .onnx, .tflite, a compiled C library "
                                               "(.so with manifest.json), or an export folder."),
        env: str = typer.Option("Pendulum-v1", "--env", help="gymnasium environment id."),
        backend: str = typer.Option("auto", "--backend", "-b", help="auto, numpy (np), onnxruntime (onnx, ort), "
                                                                    "tflite (litert), c or tflm (tflite-micro)."),
        episodes: int = typer.Option(3, "--episodes", "-k", help="Episodes, >= 1 (seeds seed, seed+1, ...)."),
        seed: int = typer.Option(0, help="Seed of the first episode."),
        max_steps: Optional[int] = typer.Option(None, help="Cut episodes at this many steps."),
        dt: Optional[float] = typer.Option(None, help="Elapsed time per step, > 0 (default: the env's dt)."),
        nonfinite: str = typer.Option("raise", help="NaN/inf observations: raise, hold or zero."),
        as_json: bool = typer.Option(False, "--json", help="Print the results as JSON (instead of the table)."),
        json_out: Optional[Path] = typer.Option(None, "--json-out", help="Also write the results as JSON to this file."),
    ):
        """Run MODEL as a closed-loop controller in a gymnasium env and print the episode returns."""
        import json

        from rich.console import Console

        from ..fileio import atomic_write_bytes, check_output, check_writable_target
        from . import load
        from .control import check_episode_options, run_episodes

        check_episode_options(episodes, seed, max_steps, dt)
        if json_out is not None:  # checked before the episodes run, not after
            check_output(json_out, *_model_files(model), what="--json-out")
            check_writable_target(json_out)
        ctrl = load(model, backend=backend, nonfinite=nonfinite)
        res = run_episodes(ctrl, env, episodes=episodes, seed=seed, max_steps=max_steps, dt=dt)
        if as_json:
            typer.echo(json.dumps(res))
        else:
            Console().print(_returns_table(res, env, model, ctrl.backend_name, seed))
        if json_out is not None:
            atomic_write_bytes(json_out, json.dumps(res, indent=1).encode())


def _model_files(model: Path) -> list[Path]:
    """What loading MODEL reads: the file and the manifest beside it, or an export folder's files."""
    if model.is_dir():
        return [p for p in model.iterdir() if p.is_file()]
    return [model, model.with_name("manifest.json")]


def _returns_table(res: dict, env: str, model: Path, backend: str, seed: int):
    from rich.table import Table

    table = Table(title=f"{env} · {model.name} · backend {backend} · dt {res['dt']:g}")
    for col in ("episode", "seed", "steps", "return"):
        table.add_column(col, justify="right")
    for i, (r, n) in enumerate(zip(res["returns"], res["steps"])):
        table.add_row(str(i), str(seed + i), str(n), f"{r:.3f}")
    table.add_row("mean", "", "", f"{res['return_mean']:.3f} ± {res['return_std']:.3f}", style="bold")
    return table
