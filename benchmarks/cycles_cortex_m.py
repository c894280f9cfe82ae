"""Estimated cycles beside instructions on Cortex-M0, M3 and M4 (issue 24 item 3), int8 and fp32,
for the LTC-NCP-19 and LSTM-19 of benchmarks/c_models.py: ltc_edge.bench.arm.cortex_m.measure
(golden test, SysTick instructions per step under -icount, and the cycle estimate of
ltc_edge/bench/arm/cycles.py: the executed instruction mix of a qemu single-step trace x the core's
TRM timings, zero-wait-state memory; cycles_low/high: the TRM's ranges). fp32 = the portable C
(soft float on M0/M3); on the M4 also the default build (the FPv4 step). int8 calibrated on
standard-normal inputs (seed 0). Results: benchmarks/results/cycles_cortex_m.json.

    .venv/bin/python benchmarks/cycles_cortex_m.py [--out OUT.json]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from c_models import model_files  # noqa: E402

from ltc_edge.bench.arm import cortex_m as CM  # noqa: E402
from ltc_edge.bench.arm import cycles  # noqa: E402

FIELDS = ("passed", "instructions_per_step", "traced_instructions_per_step", *cycles.FIELDS, "cycles_skipped",
          "mix_per_step")


def rows(model_file: Path, work: Path) -> dict:
    r = CM.measure(model_file, work, timing_steps=20)
    out = {}
    for target in CM.TARGETS:
        row = {k: v for k, v in r[target].items() if k.startswith("speedup_")}
        for kind in ("int8", "fp32", "fp32_fpv4"):
            if kind in r[target]:
                res = r[target][kind]
                row[kind] = {k: res[k] for k in FIELDS if k in res}
                if res.get("cycles_per_step"):
                    row[kind]["cycles_per_instruction"] = res["cycles_per_step"] / res["traced_instructions_per_step"]
        out[target] = row
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cycles_cortex_m.json"))
    a = ap.parse_args()
    if CM.missing_tools():
        sys.exit(f"missing: {', '.join(CM.missing_tools())} (ltc_edge/bench/arm/setup.sh)")
    work = Path(tempfile.mkdtemp(prefix="cycles-cm-"))
    try:
        files = model_files(work / "models")
        res = {name: rows(files[name], work / name) for name in ("ncp19", "lstm19")}
    finally:
        shutil.rmtree(work, ignore_errors=True)
    out = {"what": "instructions (SysTick, -icount, N vs 2N) and estimated cycles per step on the Cortex-M0 "
                   "(qemu microbit), M3 (mps2-an385), M4 (mps2-an386), -O2, of the generated C as it is when this ran",
           "models": {"ncp19": "ncps LTCCell(AutoNCP(19, 2, seed=22222), in_features=8) via from_ncps",
                      "lstm19": "ltc_edge LSTM, 19 units, 8 inputs, 2 outputs, seed 0"},
           "cycles_note": "an estimate: the executed instruction mix (qemu single-step trace of 4 steps, N vs 2N) x "
                          "the core's Technical Reference Manual timings, zero-wait-state memory, no interrupts; "
                          "cycles_per_step takes the middle of the TRM's ranges (taken branch 1 + P, P = 2; "
                          "sdiv/udiv 7), cycles_low/high their ends (ltc_edge/bench/arm/cycles.py)",
           "results": res}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1) + "\n")
    for name, r in res.items():
        for target, row in r.items():
            print(name, target, {k: (v.get("instructions_per_step"), v.get("cycles_per_step"))
                                 for k, v in row.items() if isinstance(v, dict)})


if __name__ == "__main__":
    main()
