#!/usr/bin/env python
"""ARM golden test: generate a model's C, embed golden inputs/outputs from the numpy
runtime, cross-build for aarch64 Linux and a bare-metal Cortex-M4, run both under qemu,
and report the error, flash/RAM and instructions per step.

    python scripts/arm/arm_golden.py MODEL.safetensors --out build/arm/ltc [--json]
    python scripts/arm/arm_golden.py --default ltc19-ncp --out build/arm/ltc   (built-in models)

Needs the toolchains from scripts/arm/setup.sh (the same file lives beside this module).
tests/test_arm.py, benchmarks/arm.py and `ltc bench --target arm64|cortex-m4` call run_all().
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent  # build scripts and C harness live beside this module

TOOLS = {"aarch64": ["aarch64-linux-gnu-gcc", "qemu-aarch64"],
         "m4": ["arm-none-eabi-gcc", "arm-none-eabi-size", "qemu-system-arm"]}


def missing_tools(target: str) -> list[str]:
    missing = [t for t in TOOLS[target] if shutil.which(t) is None]
    if target == "aarch64" and not Path("/usr/aarch64-linux-gnu").exists():
        missing.append("/usr/aarch64-linux-gnu (libc6-dev-arm64-cross)")
    return missing


def default_models(out: Path) -> dict:
    """The benchmark pair: LTC-19 NCP (8 in, 4 out) and an LSTM with about as many parameters."""
    from ltc_edge.nn import build_model, save

    out.mkdir(parents=True, exist_ok=True)
    ltc = build_model("ltc", 8, wiring="auto-ncp", units=19, output_size=4, seed=0)
    ltc.apply_constraints()
    n_ltc = sum(p.numel() for p in ltc.parameters())
    units = min(range(2, 64), key=lambda u: abs(4 * u * (8 + u + 1) + (4 * u + 4) - n_ltc))
    lstm = build_model("lstm", 8, output_size=4, units=units, seed=0)
    return {"ltc19-ncp": save(ltc, out / "ltc19-ncp.safetensors"),
            f"lstm{units}": save(lstm, out / f"lstm{units}.safetensors")}


def exported_sources(source: Path, precision: str) -> dict:
    """{"files": {name: text}, "info": manifest, "prefix"} of a C export folder (`ltc export
    --format c`, flat layout): the .c and .h a target build compiles, as the export wrote them."""
    source = Path(source)
    manifest = json.loads((source / "manifest.json").read_text())
    if manifest.get("format") != "c" or manifest.get("precision") != precision:
        raise ValueError(f"{source} is not a {precision} C export")
    names = [manifest["files"][role]["name"] for role in ("source", "header")]
    return {"files": {n: (source / n).read_text() for n in names}, "info": manifest, "prefix": manifest["prefix"]}


def prepare(model_file, out: Path, *, prefix: str = "ltc_model", steps: int = 100,
            timing_steps: int = 200, tol: float = 1e-4, seed: int = 0, sparse: bool = True,
            unroll: str = "auto", source: Path | None = None) -> dict:
    """Write the model's C (generated, or the files of the fp32 C export folder `source`),
    golden_data.h (numpy-runtime outputs) and size_probe.c into out."""
    from ltc_edge.codegen import c as cgen
    from ltc_edge.nn.modelfile import read
    from ltc_edge.runtime import load

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config, raw = read(model_file)
    if source is None:
        gen = cgen.generate(config, raw, prefix=prefix, sparse=sparse, unroll=unroll)
    else:
        gen = exported_sources(source, "fp32")
        prefix = gen["prefix"]
    for name, text in gen["files"].items():
        (out / name).write_text(text)
    n_in, n_out = config["input_size"], config["output_size"]
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((steps, n_in)).astype(np.float32)
    dts = rng.uniform(0.05, 1.0, steps).astype(np.float32)
    ctrl = load(model_file)
    ys = np.stack([np.array(ctrl.step(x, float(dt))) for x, dt in zip(xs, dts)])
    (out / "golden_data.h").write_text(cgen.golden_header(prefix, xs, dts, ys, tol=tol, timing_steps=timing_steps,
                                                          source="the numpy runtime (ltc_edge.runtime)"))
    (out / "size_probe.c").write_text(f"""/* flash/RAM probe: reset + one step of the model, or (NO_MODEL) the same I/O without it */
#include "{prefix}.h"
volatile float vin[{n_in}];
volatile float vout[{n_out}];
volatile float vdt = 0.1f;
int main(void)
{{
    float x[{n_in}], y[{n_out}];
    int i;
#ifndef NO_MODEL
    {prefix}_state_t s;
    {prefix}_reset(&s);
#endif
    for (i = 0; i < {n_in}; ++i) x[i] = vin[i];
#ifndef NO_MODEL
    {prefix}_step(&s, x, vdt, y);
#else
    for (i = 0; i < {n_out}; ++i) y[i] = x[i % {n_in}] * vdt;
#endif
    for (i = 0; i < {n_out}; ++i) vout[i] = y[i];
    return 0;
}}
""")
    return {"config": config, "info": gen["info"], "prefix": prefix}


def _kv(text: str) -> dict:
    return {k: v for k, v in re.findall(r"(\w+)=([0-9e\-]+)", text)}


def _err(v: str) -> float:
    return int(v.replace("e-9", "")) * 1e-9


def run_aarch64(out: Path, prefix: str) -> dict:
    r = subprocess.run(["bash", str(HERE / "build_aarch64.sh"), str(out), prefix, "--run"],
                       capture_output=True, text=True, timeout=300)
    text = r.stdout + r.stderr
    kv = _kv(text)
    return {"exit_code": r.returncode, "passed": r.returncode == 0 and "GOLDEN PASS" in text,
            "max_abs_err": _err(kv["max_abs_err"]) if "max_abs_err" in kv else None,
            "output": r.stdout.strip()[-400:], "stderr": r.stderr.strip()[-400:]}


def count_aarch64_instructions(out: Path, prefix: str, n: int = 10) -> float:
    """Instructions per step on aarch64: the harness built with N and 2N timing steps runs under
    qemu-aarch64 single-stepping with an exec trace (one line per instruction); the harness runs
    N + 2N timing steps, so the difference of the two totals is 3N steps. Deterministic."""
    import os
    import tempfile

    totals = []
    for k in (n, 2 * n):
        env = dict(os.environ, EXTRA_CFLAGS=f"-DGOLDEN_TIMING_STEPS={k}")
        subprocess.run(["bash", str(HERE / "build_aarch64.sh"), str(out), prefix], check=True,
                       capture_output=True, text=True, timeout=300, env=env)
        with tempfile.TemporaryDirectory() as tmp:
            log = Path(tmp) / "exec.log"
            subprocess.run(["qemu-aarch64", "-L", "/usr/aarch64-linux-gnu", "-singlestep", "-d", "exec,nochain",
                            "-D", str(log), str(out / "golden_aarch64")], capture_output=True, timeout=600)
            with open(log, "rb") as f:
                totals.append(sum(1 for line in f if line.startswith(b"Trace")))
    subprocess.run(["bash", str(HERE / "build_aarch64.sh"), str(out), prefix], check=True, capture_output=True,
                   timeout=300)  # leave the default build in place
    return (totals[1] - totals[0]) / (3 * n)


def _sizes(text: str) -> dict:
    out = {}
    for line in text.splitlines()[1:]:
        parts = line.split()
        if len(parts) >= 6:
            out[Path(parts[-1]).name] = {"text": int(parts[0]), "data": int(parts[1]), "bss": int(parts[2])}
    return out


def run_m4(out: Path, prefix: str, opt: str = "-O2") -> dict:
    import os

    from . import cycles

    env = dict(os.environ, OPT=opt, CYCLES_STEPS=str(cycles.STEPS))
    cycles.write_timing_main(out, "fp32")  # build_m4.sh builds it too: cycles_m4.elf
    r = subprocess.run(["bash", str(HERE / "build_m4.sh"), str(out), prefix, "--run"],
                       capture_output=True, text=True, timeout=300, env=env)
    text = r.stdout + "\n" + r.stderr  # semihosting output goes to qemu's stderr
    kv = _kv(text)
    sizes = _sizes(r.stdout)
    res = {"exit_code": r.returncode, "passed": r.returncode == 0 and "GOLDEN PASS" in text,
           "max_abs_err": _err(kv["max_abs_err"]) if "max_abs_err" in kv else None,
           "output": "\n".join(l for l in text.splitlines() if "=" in l or "GOLDEN" in l)[-600:],
           "stderr": r.stderr.strip()[-400:], "opt": opt}
    if "instructions_n" in kv:  # the harness's labelled counts (golden_harness.h; PLATFORM_COUNT_SCALE=40u)
        n = int(kv["timing_steps"])
        one, two = int(kv["instructions_n"]), int(kv["instructions_2n"])
        res["instructions_per_step"] = (two - one) / n  # N vs 2N steps, differenced
        res["instructions_per_step_direct"] = one / n
    if "step_stack_bytes" in kv:
        res["step_stack_bytes"] = int(kv["step_stack_bytes"])
        res["state_bytes"] = int(kv["state_bytes"])
    if {"probe_model.elf", "probe_base.elf", "model_m4.o"} <= set(sizes):
        pm, pb, mo = sizes["probe_model.elf"], sizes["probe_base.elf"], sizes["model_m4.o"]
        res["model_flash_bytes"] = pm["text"] + pm["data"] - pb["text"] - pb["data"]  # code + weights + libm it pulls
        res["model_object"] = mo  # the model's own object file (text = code + const weights)
        res["model_ram_bytes"] = res.get("state_bytes", 0) + res.get("step_stack_bytes", 0) + mo["data"] + mo["bss"]
        res["harness_sizes"] = sizes.get("golden_m4.elf")
    if res["passed"]:  # cycles: the same C traced under qemu, costed with the TRM's timings
        res.update(cycles.try_estimate(Path(out) / "cycles_m4.elf", "cortex-m4", cycles.STEPS, "mps2-an386"))
    return res


def run_all(model_file, out: Path, *, prefix: str = "ltc_model", targets=("aarch64", "m4"), m4_opt: str = "-O2",
            **kw) -> dict:
    """prepare() (kw) then the golden run on each target; m4_opt: the Cortex-M4 build's -O flag (and any
    -D flags, e.g. -DLTC_EDGE_PORTABLE_C)."""
    out = Path(out)
    prep = prepare(model_file, out, prefix=prefix, **kw)
    cell = prep["config"]["cell"]
    result = {"model": str(model_file), "kind": cell["kind"], "units": cell["units"],
              "parameters": int(sum(np.size(v) for v in __import__("ltc_edge.nn.modelfile", fromlist=["read"])
                                    .read(model_file)[1].values())),
              "weights_bytes": prep["info"]["weights_bytes"],
              **{k: prep["info"][k] for k in ("synapses", "sensory_synapses") if k in prep["info"]}}
    for t in targets:
        miss = missing_tools(t)
        if miss:
            result[t] = {"skipped": f"missing: {', '.join(miss)} (run scripts/arm/setup.sh)"}
        else:
            result[t] = run_aarch64(out, prefix) if t == "aarch64" else run_m4(out, prefix, opt=m4_opt)
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model", nargs="?", help="a .safetensors model file")
    ap.add_argument("--default", choices=["ltc19-ncp", "lstm"], help="use a built-in benchmark model")
    ap.add_argument("--out", default="build/arm", help="build folder")
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--json", action="store_true", help="print the result as JSON")
    a = ap.parse_args()
    out = Path(a.out)
    if a.model:
        model = Path(a.model)
    elif a.default:
        models = default_models(out / "models")
        model = next(p for k, p in models.items() if k.startswith(a.default[:4]))
    else:
        ap.error("give a model file or --default")
    res = run_all(model, out, steps=a.steps)
    print(json.dumps(res, indent=1) if a.json else
          "\n".join(f"{k}: {v}" for k, v in res.items()))
    ok = all(res[t].get("passed") for t in ("aarch64", "m4") if "skipped" not in res[t])
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
