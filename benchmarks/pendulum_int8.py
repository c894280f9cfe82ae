"""The pendulum clone in int8 (issue 14): the demo's Pendulum-v1 clone (`ltc demo` writes it as
pendulum.safetensors; `ltc_edge.train.dagger.clone_pendulum`) exported as fp32 C, int8 C and an
int8 TFLite for TFLite-Micro (`int8-tflm`), each flown closed loop on the evaluation seeds (0..9,
the demo's) beside the model itself and the expert; the int8 C step on Cortex-M0/M3/M4 under qemu
(instructions per step vs the fp32 C, as benchmarks/c_int8.py does for the cheetah).
Results: benchmarks/results/pendulum_int8.json, with the issue's targets met or not
(closed-loop return within 10% of the fp32 model's; M0/M3 >= 5x, M4 >= 2x fewer instructions).

    .venv/bin/python benchmarks/pendulum_int8.py MODEL [--out OUT.json] [--episodes 10]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from c_int8 import cortex, cortex_targets  # noqa: E402

EXPORTS = {"c_fp32": ("c", "fp32", "c"), "c_int8": ("c", "int8", "c"), "tflite_int8_tflm": ("tflite", "int8-tflm", "tflm")}


def export_all(model_file: Path, work: Path, ref) -> dict:
    from ltc_edge.export import get_exporter
    from ltc_edge.nn.modelfile import load

    model = load(model_file)
    out = {}
    for name, (fmt, precision, _) in EXPORTS.items():
        t = time.time()
        man = get_exporter(fmt)(model, work / name, precision=precision, calibration=ref)
        d = man["drift"]
        out[name] = {"seconds": round(time.time() - t, 1), "within_budget": d["within_budget"],
                     "drift_metric": d.get("metric"), "states_within_bounds": d.get("states_within_bounds"),
                     "weights_bytes": man.get("weights_bytes"),
                     "quantization_scheme": (man.get("quantization") or {}).get("scheme")}
    return out


def closed_loop(model_file: Path, work: Path, episodes: int) -> dict:
    from ltc_edge.runtime import load
    from ltc_edge.runtime.control import run_episodes
    from ltc_edge.train.pendulum import Expert, evaluate_pendulum

    rows = {"model_numpy": run_episodes(load(model_file), "Pendulum-v1", episodes, 0)}
    for name, (_, _, backend) in EXPORTS.items():
        rows[name] = run_episodes(load(work / name, backend=backend), "Pendulum-v1", episodes, 0)
    rows["expert"] = evaluate_pendulum(Expert(), episodes, 0)
    return {k: {"return_mean": v["return_mean"], "returns": [round(float(r), 2) for r in v["returns"]]}
            for k, v in rows.items()}


def targets(res: dict) -> dict:
    out = {}
    ref = res["closed_loop"]["model_numpy"]["return_mean"]
    for name in ("c_int8", "tflite_int8_tflm"):
        r = res["closed_loop"][name]["return_mean"]
        rel = abs(r - ref) / abs(ref)
        out[f"{name}_return_rel_to_fp32"] = {"value": rel, "target": "<= 0.10", "met": rel <= 0.10}
    out.update(cortex_targets(res.get("cortex_m", {}), ""))
    out["states_within_bounds"] = {"value": res["exports"]["c_int8"]["states_within_bounds"], "target": "true",
                                   "met": bool(res["exports"]["c_int8"]["states_within_bounds"])}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", help="the pendulum clone (.safetensors; its stored task is pendulum)")
    ap.add_argument("--episodes", type=int, default=10)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "pendulum_int8.json"))
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from ltc_edge.artifact import model_sha256
    from ltc_edge.nn.modelfile import read
    from ltc_edge.export import drift as D
    from ltc_edge.train import load_task

    ref = D.from_task(load_task("pendulum"), "pendulum")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        res = {"issue": 14, "model": str(a.model), "model_sha256": model_sha256(*read(a.model)),
               "exports": export_all(Path(a.model), tmp, ref)}
        res["closed_loop"] = closed_loop(Path(a.model), tmp, a.episodes)
        res["cortex_m"] = cortex(a.model, tmp / "cm", x=ref.x[0])
    res["targets"] = targets(res)
    res["method"] = ("closed loop: Pendulum-v1, seeds 0.., the runtime's controller per backend (C: the export's "
                     "library; int8-tflm: TFLite-Micro's interpreter), the expert on the same seeds; calibration "
                     "and drift data: the pendulum task's demonstrations; Cortex-M as benchmarks/c_int8.py")
    Path(a.out).write_text(json.dumps(res, indent=1, default=str) + "\n")
    print(json.dumps({"closed_loop": {k: v["return_mean"] for k, v in res["closed_loop"].items()},
                      "targets": res["targets"]}, indent=1))


if __name__ == "__main__":
    main()
