"""LTC-NCP-19 vs LSTM-19, GRU-19 and CfC-19 on ARM (issues 13 and 24; models: benchmarks/c_models.py,
the GRU and CfC built the same way as the LSTM): golden check on
aarch64 Linux (qemu-aarch64) and a bare-metal Cortex-M4 (qemu-system-arm -M mps2-an386, -O2,
-mfloat-abi=hard -mfpu=fpv4-sp-d16), with Cortex-M4 instructions per step (SysTick under
-icount shift=0, N vs 2N steps differenced), model flash and RAM (size probes, painted stack),
and aarch64 instructions per step (qemu exec trace, N vs 2N). Every model's default build on the
M4 is its FPv4 step (LTC: cell_ltc_fpv4.c.in; LSTM/GRU/CfC: rnn_fpv4.c.in); the *_portable rows build
the same files with -DLTC_EDGE_PORTABLE_C. Results: benchmarks/results/arm_m4.json, with the
issues' Cortex-M4 targets met or not.

    .venv/bin/python benchmarks/arm.py [OUT.json] [--no-aarch64-count]
        (tools: ltc_edge/bench/arm/setup.sh)
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

from ltc_edge.bench import arm as A  # noqa: E402
from ltc_edge.nn import build_model, save  # noqa: E402

TARGETS = {f"ltc_ncp19{form}_m4_{key}": bound for form in ("", "_loop") for key, bound in
           (("instructions_per_step", ("<=", 10000)), ("flash_bytes", ("<=", 6 * 1024)), ("ram_bytes", ("<=", 1024)))}
TARGETS.update({"lstm19_m4_instructions_per_step": ("<=", 7000),  # issue 24: the baselines with the same care
                "gru19_m4_instructions_per_step": ("<=", 6000)})
M4_ROWS = {"ltc_ncp19": "ncp19", "ltc_ncp19_loop": "ncp19_loop", "ltc_ncp19_portable": "ncp19_portable",
           "lstm19": "lstm19", "lstm19_portable": "lstm19_portable", "gru19": "gru19", "gru19_portable": "gru19_portable",
           "cfc19": "cfc19", "cfc19_portable": "cfc19_portable"}
BASELINES = ("lstm19", "gru19", "cfc19")  # built like the LSTM: ltc_edge's build_model(kind, 8, units=19, seed=0)
KEEP = ("passed", "max_abs_err", "instructions_per_step", "model_flash_bytes", "model_ram_bytes", "step_stack_bytes",
         "state_bytes", "model_object", "opt", "cycles_per_step", "cycles_low", "cycles_high",
         "traced_instructions_per_step", "mix_per_step", "cycles_skipped")


def run_model(path: Path, work: Path, aarch64_count: bool, unroll: str = "auto", targets=("aarch64", "m4"),
              m4_opt: str = "-O2") -> dict:
    res = A.run_all(path, work, steps=100, timing_steps=200, unroll=unroll, targets=targets, m4_opt=m4_opt)
    for t in targets:
        r = res.get(t, {})
        if "skipped" not in r:
            res[t] = {k: r.get(k) for k in KEEP if k in r}
    if aarch64_count and "skipped" not in res.get("aarch64", {"skipped": "not run"}):
        res["aarch64"]["instructions_per_step"] = A.count_aarch64_instructions(work, "ltc_model", n=10)
    return res


def summarize(rows: dict) -> dict:
    ltc, lstm = rows["ncp19"].get("m4", {}), rows["lstm19"].get("m4", {})
    if "skipped" in ltc or "skipped" in lstm:
        return {"skipped": ltc.get("skipped") or lstm.get("skipped")}
    s = {}
    for name, row in M4_ROWS.items():
        r = rows[row].get("m4", {})
        for key, field in (("instructions_per_step", "instructions_per_step"), ("cycles_per_step", "cycles_per_step"),
                           ("flash_bytes", "model_flash_bytes"), ("ram_bytes", "model_ram_bytes")):
            s[f"{name}_m4_{key}"] = r.get(field)
    # like for like: each cell's FPv4 step against the other's, and the portable steps against each other
    for form in ("", "_portable"):
        for other in BASELINES:
            for key in ("instructions_per_step", "cycles_per_step", "flash_bytes"):
                s[f"ltc_over_{other}{form}_m4_{key.split('_')[0]}"] = (
                    s[f"ltc_ncp19{form}_m4_{key}"] / s[f"{other}{form}_m4_{key}"])
    for name in ("ncp19", *BASELINES):
        a64 = rows[name].get("aarch64", {})
        if a64.get("instructions_per_step") is not None:
            s[f"{name}_aarch64_instructions_per_step"] = a64["instructions_per_step"]
    return s


def targets(summary: dict) -> dict:
    out = {}
    for key, (op, bound) in TARGETS.items():
        v = summary.get(key)
        out[key] = {"value": v, "target": f"{op} {bound}",
                    "met": None if v is None else (v <= bound if op == "<=" else v >= bound)}
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", nargs="?", default=str(ROOT / "benchmarks" / "results" / "arm_m4.json"))
    ap.add_argument("--no-aarch64-count", action="store_true", help="skip the (slower) aarch64 instruction count")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="arm-bench-"))
    try:
        files = model_files(work / "models")
        for name in BASELINES[1:]:
            files[name] = save(build_model(name[:-2], 8, units=19, output_size=2, seed=0),
                               work / "models" / f"{name}.safetensors")
        rows = {name: run_model(files[name], work / name, not a.no_aarch64_count) for name in ("ncp19", *BASELINES)}
        # the loop form (--unroll off; on the M4 both forms build the FPv4 step), and the portable C
        # of the default export built for the M4 (-DLTC_EDGE_PORTABLE_C): what the assembly buys
        rows["ncp19_loop"] = run_model(files["ncp19"], work / "ncp19_loop", False, unroll="off", targets=("m4",))
        for name in ("ncp19", *BASELINES):
            rows[f"{name}_portable"] = run_model(files[name], work / f"{name}_portable", False, targets=("m4",),
                                                 m4_opt="-O2 -DLTC_EDGE_PORTABLE_C")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    summary = summarize(rows)
    result = {"what": "Cortex-M4 (qemu-system-arm mps2-an386, -O2 -mfloat-abi=hard -mfpu=fpv4-sp-d16) and aarch64 "
                      "(qemu-aarch64) golden runs of the generated C as it is when this ran",
              "models": {"ncp19": "ncps LTCCell(AutoNCP(19, 2, seed=22222), in_features=8) via from_ncps",
                         "ncp19_loop": "the same, exported with --unroll off (the loop form)",
                         "ncp19_portable": "the default export built with -DLTC_EDGE_PORTABLE_C: its portable C "
                                           "step instead of the FPv4 assembly (cell_ltc_fpv4.c.in)",
                         "lstm19": "ltc_edge LSTM, 19 units, 8 inputs, 2 outputs, seed 0; on the M4 its FPv4 step "
                                   "(rnn_fpv4.c.in: vldm + vfma over packed weights, the LTC gate's 2^t for "
                                   "sigmoid/tanh)",
                         "gru19": "ltc_edge GRU, 19 units, 8 inputs, 2 outputs, seed 0; on the M4 its FPv4 step",
                         "cfc19": "ltc_edge CfC, 19 units, 8 inputs, 2 outputs, seed 0 (default mode, one 128-unit "
                                  "lecun_tanh backbone layer); on the M4 its FPv4 step",
                         "cfc19_portable": "the CfC's export built with -DLTC_EDGE_PORTABLE_C",
                         "lstm19_portable": "the LSTM's export built with -DLTC_EDGE_PORTABLE_C (portable C: "
                                            "dense loops, sigmoid_/tanh_ of math.c.in)",
                         "gru19_portable": "the GRU's export built with -DLTC_EDGE_PORTABLE_C"},
              "notes": {"model_flash_bytes": "probe firmware (reset + one step) minus the same firmware without "
                                             "the model: code + const weights (its own math: no libm)",
                        "model_ram_bytes": "state struct + stack high-water mark of one step + the model's "
                                           ".data/.bss (none)",
                        "cycles_per_step": "Cortex-M4: an estimate, the executed instruction mix (qemu exec trace "
                                           "of 4 steps, N vs 2N) x the Cortex-M4 TRM timings, zero-wait-state "
                                           "memory; cycles_low/high: the TRM's ranges (ltc_edge/bench/arm/cycles.py)",
                        "instructions_per_step": "Cortex-M4: SysTick ticks x 40 under qemu -icount shift=0 "
                                                 "(1 insn = 1 ns, 25 MHz SysTick), (2N - N steps) / N; aarch64: "
                                                 "qemu exec trace, single-stepped, N vs 2N"},
              "summary": summary, "targets": targets(summary), "results": rows}
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(result, indent=1, default=str))
    print(json.dumps({"summary": summary, "targets": {k: (v["value"], v["target"], v["met"])
                                                      for k, v in result["targets"].items()}}, indent=1))


if __name__ == "__main__":
    main()
