"""LTC-19 NCP vs an LSTM of about the same parameter count on ARM: golden check on aarch64
Linux (qemu-aarch64) and a bare-metal Cortex-M4 (qemu-system-arm mps2-an386), model flash /
RAM (arm-none-eabi-size, size probes, painted stack) and instructions per step (SysTick
under -icount shift=0, N vs 2N steps differenced). Results: benchmarks/results/arm_m4.json.

    .venv/bin/python benchmarks/arm.py        (tools: scripts/arm/setup.sh)
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ltc_edge.bench import arm as A  # noqa: E402


def main():
    out = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "benchmarks" / "results" / "arm_m4.json"
    work = Path(tempfile.mkdtemp(prefix="arm-bench-"))
    models = A.default_models(work / "models")
    rows = {}
    for name, path in models.items():
        res = A.run_all(path, work / name, steps=100, timing_steps=200)
        os.environ["OPT"] = "-Os"
        if "skipped" not in res["m4"]:
            os_res = A.run_m4(work / name, "ltc_model", opt="-Os")
            res["m4_Os"] = {k: os_res.get(k) for k in ("passed", "instructions_per_step", "model_flash_bytes",
                                                       "model_ram_bytes", "step_stack_bytes", "model_object")}
        os.environ.pop("OPT", None)
        for t in ("aarch64", "m4"):
            res.get(t, {}).pop("output", None)
            res.get(t, {}).pop("stderr", None)
        rows[name] = res
    ltc = rows["ltc19-ncp"]["m4"]
    lstm_name = next(k for k in rows if k.startswith("lstm"))
    lstm = rows[lstm_name]["m4"]
    summary = {}
    if "skipped" not in ltc:
        summary = {
            "ltc19_ncp_flash_bytes": ltc["model_flash_bytes"], "ltc19_ncp_ram_bytes": ltc["model_ram_bytes"],
            "ltc19_ncp_instructions_per_step": ltc["instructions_per_step"],
            f"{lstm_name}_flash_bytes": lstm["model_flash_bytes"], f"{lstm_name}_ram_bytes": lstm["model_ram_bytes"],
            f"{lstm_name}_instructions_per_step": lstm["instructions_per_step"],
            "ltc_budget_met": ltc["model_flash_bytes"] <= 16384 and ltc["model_ram_bytes"] <= 2048,
        }
    result = {"what": "Cortex-M4 (-O2 unless noted; -mfloat-abi=hard -mfpu=fpv4-sp-d16) and aarch64 golden runs",
              "notes": {"model_flash_bytes": "probe firmware (reset + one step) minus the same firmware without "
                                             "the model: code + const weights + the libm functions it pulls",
                        "model_ram_bytes": "state struct + stack high-water mark of one step (no .data/.bss)",
                        "instructions_per_step": "SysTick ticks x 40 under qemu -icount shift=0 (1 insn = 1 ns, "
                                                 "25 MHz SysTick), (2N - N steps) / N"},
              "summary": summary, "models": rows}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps(summary, indent=1))


if __name__ == "__main__":
    main()
