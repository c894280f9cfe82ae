"""Integer-only cores under qemu-system-arm: the int8 C step (ltc_edge/codegen/int8.py: LTC, LSTM)
and the fp32 C step (soft-float where the core has no FPU) on Cortex-M0 (-M microbit), Cortex-M3
(-M mps2-an385) and Cortex-M4 (-M mps2-an386, hard float; fp32 is the portable C everywhere, and on
the M4 also the default build, the LTC's FPv4 assembly): golden test, instructions per step
(SysTick under `-icount shift=0`, N vs 2N steps differenced), the step object's flash and the
float helpers it references.

    python -m ltc_edge.bench.arm.cortex_m MODEL.safetensors --out build/cm [--json]

The int8 golden data comes from the same C compiled for the host (ctypes): an integer step is
expected to agree bit for bit. tests/test_c_int8.py and benchmarks/c_int8.py call these.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np

from ... import precision as precisions

FIRMWARE = Path(__file__).resolve().parents[2] / "codegen" / "firmware"
CM = FIRMWARE / "cortex_m"
TARGETS = {
    "cortex-m0": {"machine": "microbit", "ld": "microbit.ld", "ns_per_tick": 62.5,  # nRF51: 16 MHz
                  "cflags": ["-mcpu=cortex-m0", "-mthumb", "-mfloat-abi=soft"]},
    "cortex-m3": {"machine": "mps2-an385", "ld": "mps2.ld", "ns_per_tick": 40.0,  # 25 MHz
                  "cflags": ["-mcpu=cortex-m3", "-mthumb", "-mfloat-abi=soft"]},
    "cortex-m4": {"machine": "mps2-an386", "ld": "mps2.ld", "ns_per_tick": 40.0, "fpv4": True,
                  "cflags": ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]},
}
TOOLS = ["arm-none-eabi-gcc", "arm-none-eabi-size", "arm-none-eabi-nm", "qemu-system-arm"]
# integer helpers an integer-only step may call (Cortex-M0 has no divide instruction)
INTEGER_HELPERS = {"__aeabi_idiv", "__aeabi_uidiv", "__aeabi_idivmod", "__aeabi_uidivmod", "memcpy", "memset"}
COMMON = ["-O2", "-std=c99", "-Wall", "-Werror", "-ffunction-sections", "-fdata-sections"]


def missing_tools() -> list[str]:
    return [t for t in TOOLS if shutil.which(t) is None]


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def prepare_int8(model_file, out: Path, *, prefix: str = "ltc_model", steps: int = 100, timing_steps: int = 50,
                 seed: int = 0, x=None, source: Path | None = None) -> dict:
    """Write the int8 C (generated, calibrated on x; or the files of the int8 C export folder
    `source`), golden_int_data.h (host outputs of the same C) and size_probe_int.c."""
    from ltc_edge.codegen import c as cgen
    from ltc_edge.codegen import int8
    from ltc_edge.nn import functional as F
    from ltc_edge.nn.modelfile import read

    from . import exported_sources

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config, raw = read(model_file)
    n_in, n_out = int(config["input_size"]), int(config["output_size"])
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((steps, n_in)) if x is None else np.asarray(x, np.float64).reshape(-1, n_in)[:steps]
    if source is None:
        gen = int8.generate(config, raw, prefix=prefix, calib_x=x)
    else:
        gen = exported_sources(source, "int8")
        prefix = gen["prefix"]
    for name, text in gen["files"].items():
        _write(out / name, text)
    xq = int8.quantize_inputs(x, gen["info"]["quantization"]["input_frac_bits"])
    (out / "host").mkdir(exist_ok=True)
    lib = cgen.compile_library(out / f"{prefix}.c", out / "host" / f"lib{prefix}.so")
    yq = int8.host_step_q(lib, prefix, xq, n_out, F.state_size(config))
    up = prefix.upper()
    _write(out / "golden_int_data.h", int8.golden_header(prefix, xq, yq, timing_steps=timing_steps))
    _write(out / "size_probe_int.c", f"""/* flash probe: reset + one integer step, or (NO_MODEL) the same I/O without it */
#include "{prefix}.h"
volatile int16_t vin[{n_in}];
volatile int16_t vout[{n_out}];
int main(void)
{{
    int16_t x[{n_in}], y[{n_out}];
    int i;
#ifndef NO_MODEL
    {prefix}_state_t s;
    {prefix}_reset(&s);
#endif
    for (i = 0; i < {n_in}; ++i) x[i] = vin[i];
#ifndef NO_MODEL
    {prefix}_step_q(&s, x, y);
#else
    for (i = 0; i < {n_out}; ++i) y[i] = x[i % {n_in}];
#endif
    for (i = 0; i < {n_out}; ++i) vout[i] = y[i];
    return 0;
}}
""")
    return {"config": config, "info": gen["info"], "prefix": prefix, "defines": [f"-D{up}_INTEGER_ONLY"],
            "xq": xq, "yq": yq}


def _run(cmd, cwd, timeout=300) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{cmd[0]} failed: {(r.stderr.strip() or r.stdout.strip())[-600:]}")
    return r


def _cc(target: str) -> list[str]:
    return ["arm-none-eabi-gcc", *TARGETS[target]["cflags"], *COMMON]


def _size(out: Path, *names) -> dict:
    """text/data/bss of files named relative to `out` (the tools run there)."""
    r = _run(["arm-none-eabi-size", *names], out)
    sizes = {}
    for line in r.stdout.splitlines()[1:]:
        p = line.split()
        sizes[Path(p[-1]).name] = {"text": int(p[0]), "data": int(p[1]), "bss": int(p[2])}
    return sizes


def step_object(out: Path, prefix: str, target: str, defines=()) -> dict:
    """The model's object for `target`: size (text + data = flash) and the helpers it calls."""
    obj = f"model_{target}.o"
    _run([*_cc(target), "-pedantic", *defines, "-I.", "-c", "-o", obj, f"{prefix}.c"], out)
    s = _size(out, obj)[obj]
    nm = _run(["arm-none-eabi-nm", "-u", obj], out).stdout.split()
    undefined = sorted(w for w in nm if w != "U")
    return {**s, "flash_bytes": s["text"] + s["data"], "undefined": undefined,
            "float_helpers": [u for u in undefined if u not in INTEGER_HELPERS]}


def _link(out: Path, target: str, elf: str, sources, defines) -> None:
    ld = ["-nostartfiles", "--specs=nosys.specs", "-T", str(CM / TARGETS[target]["ld"]), "-Wl,--gc-sections"]
    _run([*_cc(target), *defines, "-I.", "-o", elf, *map(str, sources), str(CM / "platform_cm.c"),
          str(CM / "startup_cm.c"), *ld, "-lm"], out)


def _kv(text: str) -> dict:
    return dict(re.findall(r"(\w+)=([0-9e\-]+)", text))


def run_golden(out: Path, prefix: str, target: str, kind: str, defines=(), timeout: int = 300) -> dict:
    """Build the golden harness (int8: golden_int_main.c; fp32: golden_main.c) and the size probes
    for `target`, run the harness under qemu with -icount shift=0."""
    main, probe = ((FIRMWARE / "golden_int_main.c", "size_probe_int.c") if precisions.integer_c(kind)
                   else (FIRMWARE / "golden_main.c", "size_probe.c"))
    t = TARGETS[target]
    elf = f"golden_{kind}_{target}.elf"
    _link(out, target, elf, [main, f"{prefix}.c"], defines)
    _link(out, target, f"probe_model_{target}.elf", [probe, f"{prefix}.c"], defines)
    _link(out, target, f"probe_base_{target}.elf", [probe], [*defines, "-DNO_MODEL"])
    r = subprocess.run(["qemu-system-arm", "-M", t["machine"], "-nographic", "-monitor", "none", "-serial", "none",
                        "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel", elf],
                       cwd=out, capture_output=True, text=True, timeout=timeout)
    text = r.stdout + "\n" + r.stderr
    kv = _kv(text)
    res = {"target": target, "machine": t["machine"], "kind": kind, "exit_code": r.returncode,
           "passed": r.returncode == 0 and "GOLDEN PASS" in text,
           "output": "\n".join(x for x in text.splitlines() if "=" in x or "GOLDEN" in x)[-600:]}
    if "systick_ticks_n" in kv:  # the harness's labelled counts (golden_harness.h), ticks of the core clock
        n, one, two = int(kv["timing_steps"]), int(kv["systick_ticks_n"]), int(kv["systick_ticks_2n"])
        res["instructions_per_step"] = (two - one) / n * t["ns_per_tick"]
    for k in ("step_stack_bytes", "state_bytes", "max_lsb_err", "mismatches"):
        if k in kv:
            res[k] = int(kv[k])
    if "max_abs_err" in kv:
        res["max_abs_err"] = int(kv["max_abs_err"].replace("e-9", "")) * 1e-9
    sz = _size(out, f"probe_model_{target}.elf", f"probe_base_{target}.elf")
    pm, pb = sz[f"probe_model_{target}.elf"], sz[f"probe_base_{target}.elf"]
    res["linked_flash_bytes"] = pm["text"] + pm["data"] - pb["text"] - pb["data"]  # + helpers, libm
    if res["passed"]:
        res.update(estimate_cycles(out, prefix, target, kind, defines))
    return res


def estimate_cycles(out: Path, prefix: str, target: str, kind: str, defines=()) -> dict:
    """The cycle estimate (cycles.py) of the model C in out: the same C in a timing-only harness,
    traced under qemu; or {"cycles_skipped": why}."""
    from . import cycles

    main = cycles.write_timing_main(out, kind)
    elf = f"cycles_{kind}_{target}.elf"
    try:
        _link(out, target, elf, [main, f"{prefix}.c"], [*defines, f"-DGOLDEN_TIMING_STEPS={cycles.STEPS}",
                                                        f"-I{FIRMWARE}"])
    except RuntimeError as e:
        return {"cycles_skipped": str(e).splitlines()[0][:200]}
    return cycles.try_estimate(out / elf, target, cycles.STEPS, TARGETS[target]["machine"])


def estimate_snippet(asm: str, target: str, out: Path) -> dict:
    """cycles.py's estimate of one copy of a Thumb assembly snippet on `target` (its check on
    straight-line code with known counts)."""
    from . import cycles

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    _link(out, target, "snippet.elf", [cycles.write_snippet_main(out, asm)], [])
    return cycles.estimate(out / "snippet.elf", target, 1, TARGETS[target]["machine"])


def measure(model_file, out, *, targets=tuple(TARGETS), prefix: str = "ltc_model", steps: int = 100,
            timing_steps: int = 20, x=None) -> dict:
    """int8 and fp32 on each target: golden test, instructions per step, flash; the ratios."""
    from ltc_edge.bench import arm as A

    out = Path(out)
    q = prepare_int8(model_file, out / "int8", prefix=prefix, steps=steps, timing_steps=timing_steps, x=x)
    A.prepare(model_file, out / "fp32", prefix=prefix, steps=steps, timing_steps=timing_steps)
    res = {"model": str(model_file), "units": int(q["config"]["cell"]["units"]), "int8_info": q["info"]}
    portable = ("-DLTC_EDGE_PORTABLE_C",)  # fp32: the portable C on every core (issue 14's baseline)
    for target in targets:
        row = {"int8": {"object": step_object(out / "int8", prefix, target, q["defines"]),
                        **run_golden(out / "int8", prefix, target, "int8", q["defines"])},
               "fp32": {"object": step_object(out / "fp32", prefix, target, portable),
                        **run_golden(out / "fp32", prefix, target, "fp32", portable)}}
        if TARGETS[target].get("fpv4"):  # and the default fp32 build there: the LTC's FPv4 assembly
            row["fp32_fpv4"] = {"object": step_object(out / "fp32", prefix, target),
                                **run_golden(out / "fp32", prefix, target, "fp32")}
        for unit, field in (("instructions", "instructions_per_step"), ("cycles", "cycles_per_step")):
            i8 = row["int8"].get(field)
            for kind, key in (("fp32", f"speedup_{unit}"), ("fp32_fpv4", f"speedup_{unit}_vs_fpv4")):
                if kind in row:
                    f32 = row[kind].get(field)
                    row[key] = (f32 / i8) if i8 and f32 else None
        res[target] = row
    return res


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("--out", default="build/cortex-m")
    ap.add_argument("--targets", default=",".join(TARGETS))
    a = ap.parse_args()
    print(json.dumps(measure(a.model, a.out, targets=a.targets.split(",")), indent=1, default=str))


if __name__ == "__main__":
    main()
