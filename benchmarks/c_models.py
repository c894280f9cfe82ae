"""The models of issue 13's C benchmarks (benchmarks/c_speed.py, benchmarks/arm.py), built the
same way in both:

  ncp19   ncps LTCCell(AutoNCP(19, 2, seed=22222), in_features=8) through ltc_edge.nn.from_ncps
          (47 recurrent + 40 sensory synapses, 6 unfolds)
  fc19    ncps LTCCell(FullyConnected(19, 2), in_features=8): every synapse real
  lstm19  ltc_edge LSTM, 19 units, 8 inputs, 2 outputs

Parameters: torch.manual_seed(0) before each ncps cell, seed 0 for the LSTM.
"""

from __future__ import annotations

from pathlib import Path


def ncps_cells() -> dict:
    import torch
    from ncps.torch import LTCCell
    from ncps.wirings import AutoNCP, FullyConnected

    torch.manual_seed(0)
    ncp = LTCCell(AutoNCP(19, 2, seed=22222), in_features=8)
    torch.manual_seed(0)
    fc = LTCCell(FullyConnected(19, 2), in_features=8)
    return {"ncp19": ncp, "fc19": fc}


def model_files(out: Path, cells: dict | None = None) -> dict:
    """{name: .safetensors path} of the three models (cells: from ncps_cells(), reused)."""
    from ltc_edge.nn import build_model, from_ncps, save

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    cells = cells or ncps_cells()
    files = {name: save(from_ncps(cell), out / f"{name}.safetensors") for name, cell in cells.items()}
    files["lstm19"] = save(build_model("lstm", 8, units=19, output_size=2, seed=0), out / "lstm19.safetensors")
    return files
