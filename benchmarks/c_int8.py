"""int8 (integer-only) C vs the fp32 C (issue 14, items 1-2; issue 24 item 1: the LSTM's and GRU's
int8 DSP step): for LTC-NCP-19 (AutoNCP(19, 2), 8 inputs, seed 0, untrained), an LSTM-19 and a
GRU-19 (8 inputs, 2 outputs, seed 0, untrained: the harness's own models), and the trained
cheetah LTC-NCP-32 and LSTM-32 (runs/robustness/ltc_ncp32.safetensors and lstm32.safetensors by
default, the 10-epoch models benchmarks/robustness.py trains; rows for absent files are left out):
  * `ltc export --format c --precision int8` (the exporter: drift-checked) and fp32, both run
    through the runtime's C backend on the test split (cheetah: test MSE of int8 vs fp32); the
    constants' bytes (int8 LTC: by kind), fp32 over int8 (the cheetah LTC-NCP's target: >= 3);
  * Cortex-M0 (qemu -M microbit, soft float), Cortex-M3 (-M mps2-an385, soft float) and
    Cortex-M4 (-M mps2-an386, hard float; fp32: the portable C, and on the M4 also the default
    build, the LTC's FPv4 assembly): golden test (int8: bit-exact with the host build),
    instructions per step (SysTick under -icount shift=0), a cycle estimate per step (the executed
    instruction mix x the core's TRM timings: ltc_edge/bench/arm/cycles.py), flash of the step object
    (arm-none-eabi-size text + data) and linked (with the helpers and libm it pulls in),
    and the float helpers the object references.
Results: benchmarks/results/c_int8.json, with the issue's targets met or not.

    .venv/bin/python benchmarks/c_int8.py [--cheetah MODEL] [--out OUT.json]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from ltc_edge.bench.arm import cortex_m as CM  # noqa: E402

KEEP = ("passed", "instructions_per_step", "cycles_per_step", "cycles_low", "cycles_high", "cycles_skipped",
        "linked_flash_bytes", "step_stack_bytes", "state_bytes", "max_lsb_err", "max_abs_err")


def c_runner(folder):
    from ltc_edge.runtime.c_backend import CBackend

    b = CBackend(folder, batch=1)
    fixed = b.manifest.fixed_dt

    def run(x, h, dt):
        if b.batch != x.shape[0]:
            b.bind(x.shape[0])
        b.x[...], b.h[...] = x, h
        b.dt[...] = fixed if fixed is not None else (b.manifest.default_dt if dt is None else dt)
        b.run()
        return b.y.copy(), b.h_new.copy()

    return run


def exports(model_file, work: Path, ref) -> dict:
    """Export fp32 and int8 C; the test metric of both through the runtime's C backend."""
    from ltc_edge.export import drift as D
    from ltc_edge.export import get_exporter
    from ltc_edge.nn import functional as F
    from ltc_edge.nn.modelfile import load

    model = load(model_file)
    out = {}
    calibration = D.synthetic(model.config) if ref is None else ref  # int8 needs data: the untrained rows' synthetic
    for precision in ("fp32", "int8"):
        man = get_exporter("c")(model, work / precision, precision=precision, calibration=calibration)
        d = man["drift"]
        row = {"drift_max_abs": d.get("max_abs"), "drift_metric": d.get("metric"), "within_budget": d["within_budget"],
               "states_within_bounds": d.get("states_within_bounds"), "fixed_dt": man.get("fixed_dt"),
               "weights_bytes": man.get("weights_bytes"), "source_bytes": man["files"]["source"]["size_bytes"]}
        if man.get("weights_bytes_by_kind"):  # int8 LTC: synapses, neurons, outputs, tables
            row["weights_bytes_by_kind"] = man["weights_bytes_by_kind"]
        data = D.load_reference(ref, model.config, fixed_dt=man.get("fixed_dt"))
        if data.y is not None:
            ys = D.run_sequences(c_runner(work / precision), data.x, data.dt, F.state_size(model.config), batch=64)
            row["test_metric"] = dict(zip(("name", "value"), D.metric(data.task_kind, ys, data.y)))
            row["test_sequences"] = int(len(data.x))
        out[precision] = row
    out["fp32_over_int8_weights_bytes"] = out["fp32"]["weights_bytes"] / out["int8"]["weights_bytes"]
    if "test_metric" in out["int8"]:
        a, b = out["int8"]["test_metric"]["value"], out["fp32"]["test_metric"]["value"]
        out["int8_vs_fp32_test_metric_rel"] = abs(a - b) / abs(b)
    return out


def cortex(model_file, work: Path, x=None) -> dict:
    if CM.missing_tools():
        return {"skipped": f"missing: {', '.join(CM.missing_tools())}"}
    r = CM.measure(model_file, work, timing_steps=20, x=x)
    res = {"int8_quantization": r["int8_info"]["quantization"], "int8_weights_bytes": r["int8_info"]["weights_bytes"]}
    for t in CM.TARGETS:
        row = {k: r[t][k] for k in ("speedup_instructions", "speedup_instructions_vs_fpv4", "speedup_cycles",
                                    "speedup_cycles_vs_fpv4") if k in r[t]}
        for kind in ("int8", "fp32", "fp32_fpv4"):
            if kind not in r[t]:
                continue
            k = r[t][kind]
            row[kind] = {**{f: k[f] for f in KEEP if f in k}, "object_flash_bytes": k["object"]["flash_bytes"],
                         "float_helpers": k["object"]["float_helpers"]}
        res[t] = row
    return res


def cortex_targets(cm: dict, prefix: str) -> dict:
    """The issue's instruction targets for one cortex() result: int8 >= 5x fewer than soft-float
    fp32 on the M0/M3, >= 2x fewer than hard-float fp32 on the M4 (none when skipped)."""
    out = {}
    if "skipped" not in cm:
        for t, need in (("cortex-m0", 5.0), ("cortex-m3", 5.0), ("cortex-m4", 2.0)):
            s = cm[t]["speedup_instructions"]
            out[f"{prefix}{t}_int8_fewer_instructions_x"] = {"value": s, "target": f">= {need}",
                                                             "met": bool(s is not None and s >= need)}
    return out


def targets(rows: dict) -> dict:
    out = {}
    for name, r in rows.items():
        cm = r.get("cortex_m", {})
        out.update(cortex_targets(cm, f"{name}_"))
        if "skipped" not in cm:
            if name == "lstm19":  # issue 24: the int8 DSP step
                i = cm["cortex-m4"]["int8"]["instructions_per_step"]
                out["lstm19_cortex-m4_int8_instructions"] = {"value": i, "target": "<= 4000 (issue 24)",
                                                             "met": bool(i is not None and i <= 4000)}
            if name == "ltc_ncp19":
                f = cm["cortex-m0"]["int8"]["object_flash_bytes"]
                out["ltc_ncp19_int8_flash_bytes"] = {"value": f, "target": "<= 4096", "met": f <= 4096}
        if name == "cheetah_ltc_ncp32":
            x = r["exports"]["fp32_over_int8_weights_bytes"]
            out[f"{name}_int8_weights_x_smaller"] = {"value": x, "target": ">= 3", "met": x >= 3}
        rel = r["exports"].get("int8_vs_fp32_test_metric_rel")
        if rel is not None:
            out[f"{name}_int8_test_metric_rel"] = {"value": rel, "target": "<= 0.05", "met": rel <= 0.05}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cheetah", default=str(ROOT / "runs" / "robustness" / "ltc_ncp32.safetensors"))
    ap.add_argument("--cheetah-lstm", default=str(ROOT / "runs" / "robustness" / "lstm32.safetensors"))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "c_int8.json"))
    a = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from ltc_edge.export import drift as D
    from ltc_edge.nn import build_model, save
    from ltc_edge.train import load_task

    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        m = build_model("ltc", 8, wiring="auto-ncp", units=19, output_size=2, seed=0)
        m.apply_constraints()
        ncp19 = save(m, tmp / "ltc_ncp19.safetensors")
        rows["ltc_ncp19"] = {"model": "AutoNCP(19, 2), 8 inputs, seed 0, untrained (synthetic drift data)",
                             "exports": exports(ncp19, tmp / "e19", None), "cortex_m": cortex(ncp19, tmp / "cm19")}
        lstm19 = save(build_model("lstm", 8, units=19, output_size=2, seed=0), tmp / "lstm19.safetensors")
        rows["lstm19"] = {"model": "LSTM 19 units, 8 inputs, 2 outputs, seed 0, untrained (synthetic drift data)",
                          "exports": exports(lstm19, tmp / "l19", None), "cortex_m": cortex(lstm19, tmp / "cml19")}
        gru19 = save(build_model("gru", 8, units=19, output_size=2, seed=0), tmp / "gru19.safetensors")
        rows["gru19"] = {"model": "GRU 19 units, 8 inputs, 2 outputs, seed 0, untrained (synthetic drift data)",
                         "exports": exports(gru19, tmp / "g19", None), "cortex_m": cortex(gru19, tmp / "cmg19")}
        ref = D.from_task(load_task("cheetah"), "cheetah")
        for name, path in (("cheetah_ltc_ncp32", a.cheetah), ("cheetah_lstm32", a.cheetah_lstm)):
            if Path(path).exists():
                rows[name] = {"model": path, "exports": exports(path, tmp / name, ref),
                              "cortex_m": cortex(path, tmp / f"cm-{name}", x=ref.x[0])}
    res = {"issue": "14, 24", "rows": rows, "targets": targets(rows),
           "method": "instructions: qemu-system-arm -icount shift=0, SysTick ticks x ns per tick (microbit 62.5, "
                     "mps2 40; checked on a 2M-instruction loop), N vs 2N steps differenced, -O2; int8 LSTM/GRU "
                     "on the M4: the DSP step (LDM + SMLAD kernel); fp32 = the float "
                     "C generator's portable form (-DLTC_EDGE_PORTABLE_C, its own exp2/sigmoid; soft float on "
                     "M0/M3); fp32_fpv4 (M4) = its default build there, the FPv4 step (LTC: issue 13; LSTM, "
                     "GRU: issue 24); "
                     "flash: arm-none-eabi-size text+data of the step object (int8 built with "
                     "<PREFIX>_INTEGER_ONLY); cycles_per_step: an estimate, the executed instruction mix (qemu "
                     "exec trace of 4 steps, N vs 2N) x the core's TRM timings, zero-wait-state memory, "
                     "cycles_low/high: the TRM's ranges (ltc_edge/bench/arm/cycles.py)"}
    Path(a.out).write_text(json.dumps(res, indent=1, default=str) + "\n")
    print(json.dumps(res["targets"], indent=1))


if __name__ == "__main__":
    main()
