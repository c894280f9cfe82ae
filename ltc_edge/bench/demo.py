"""`ltc demo`: the README's main command."""

from __future__ import annotations

from pathlib import Path


def run_demo(out: Path, seed: int = 0) -> dict:
    """Build an NCP-wired LTC (19 neurons, 8 inputs, 4 motor outputs) and an LSTM of the same
    outputs, run one irregularly sampled sequence through both, save both model files and
    print a table of their sizes and outputs."""
    import numpy as np
    import torch
    from rich.console import Console
    from rich.table import Table

    from ..nn import build_model, describe, save

    console = Console()
    out = Path(out)
    torch.manual_seed(seed)
    models = {
        "ltc-ncp": build_model("ltc", 8, 4, wiring="auto-ncp", units=19, seed=seed),
        "lstm": build_model("lstm", 8, 4, units=19, seed=seed),
    }
    rng = np.random.default_rng(seed)
    x = torch.tensor(rng.normal(size=(1, 50, 8)), dtype=torch.float32)
    dt = torch.tensor(rng.uniform(0.05, 1.0, size=(1, 50)), dtype=torch.float32)
    table = Table(title="ltc-edge demo: one 50-step sequence, irregular elapsed times")
    for col in ("model", "neurons", "synapses", "parameters", "state", "file bytes", "y[-1]"):
        table.add_column(col, justify="right" if col not in ("model", "y[-1]") else "left")
    results = {}
    for name, model in models.items():
        path = save(model, out / f"{name}.safetensors")
        with torch.no_grad():
            y, _ = model(x, dt)
        facts = describe(path)
        last = y[0, -1].numpy()
        results[name] = {"facts": facts, "last_output": last.tolist()}
        table.add_row(name, str(facts["neurons"]), str(facts["synapses"] or "-"),
                      str(facts["parameters"]), str(facts["state_size"]), str(facts["file_size_bytes"]),
                      np.array2string(last, precision=3, suppress_small=True))
    console.print(table)
    console.print(f"model files written to [bold]{out}[/bold]; inspect one with "
                  f"[bold]ltc info {out / 'ltc-ncp.safetensors'}[/bold]")
    return results
