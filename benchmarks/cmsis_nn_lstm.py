"""An outside anchor (issue 24 item 2): CMSIS-NN's int8 LSTM on the same emulated Cortex-M4 as
this project's LSTM-19, with the same harness.

CMSIS-NN is not part of this repository: pass a checkout of the public ARM-software/CMSIS-NN
repository with --cmsis-nn DIR (its sources are compiled from there, never copied here).

What runs: `arm_lstm_unidirectional_s8` (TFLite's int8x8_16 LSTM: int8 input, hidden state and
weights, int16 gates and cell, int32 bias) one time step per call, time_steps = 1, the hidden and
cell state kept between calls in its cmsis_nn_lstm_context; 8 inputs, 19 units: the weights of
the project's LSTM-19 (benchmarks/c_models.py, seed 0), quantised as TFLite does (per-tensor
symmetric int8 weights per gate matrix, asymmetric int8 input and hidden state, a power-of-two
int16 cell scale), calibrated on the same inputs the project's int8 row uses (standard normal,
seed 0, 100 steps). The layer only: the project's step also computes its 19 -> 2 readout
(38 multiply-adds), CMSIS-NN's LSTM does not.

Same harness as ltc_edge.bench.arm.cortex_m: arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb
-mfpu=fpv4-sp-d16 -mfloat-abi=hard -O2 (CMSIS-NN takes its SMLAD paths from __ARM_FEATURE_DSP),
qemu-system-arm -M mps2-an386 -icount shift=0, SysTick instructions of N and 2N steps
differenced (golden_harness.h); the cycle estimate of ltc_edge/bench/arm/cycles.py (a qemu
single-step trace of the same build x the Cortex-M4 TRM timings, zero-wait-state memory); flash:
a probe firmware (reset + one step) minus the same firmware without the model (arm-none-eabi-size:
CMSIS-NN's kernels + the weights + its parameters); RAM: the state + scratch buffers (.data/.bss
added by the model) + the stack high-water mark of one step.

Correctness: every step's int8 hidden state against a numpy model of the same integer math
(float sigmoid/tanh and float requantisation instead of CMSIS-NN's table and fixed-point
rounding), and against the fp32 LSTM, in LSBs of the hidden state's scale.

The project's own LSTM-19 rows (int8, fp32 FPv4, fp32 portable) are measured in the same run
(ltc_edge.bench.arm.cortex_m.measure on the same model and inputs).

    .venv/bin/python benchmarks/cmsis_nn_lstm.py --cmsis-nn /path/to/CMSIS-NN [--out OUT.json]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ltc_edge.bench.arm import cortex_m as CM  # noqa: E402
from ltc_edge import fileio  # noqa: E402
from ltc_edge.bench.arm import cycles  # noqa: E402
from ltc_edge.errors import LtcEdgeError, UnsafeFileError  # noqa: E402

TARGET = "cortex-m4"
UNITS, INPUTS, STEPS, TIMING_STEPS = 19, 8, 100, 20
GATES = ("input", "forget", "cell", "output")  # torch's row order of weight_ih / weight_hh
# the CMSIS-NN sources the LSTM layer needs (found by linking); relative to DIR/Source
SOURCES = ["LSTMFunctions/arm_lstm_unidirectional_s8.c", "NNSupportFunctions/arm_nn_lstm_step_s8.c",
           "NNSupportFunctions/arm_nn_lstm_calculate_gate_s8_s16.c",
           "NNSupportFunctions/arm_nn_vec_mat_mul_result_acc_s8_s16.c", "NNSupportFunctions/arm_nntables.c",
           "ActivationFunctions/arm_nn_activation_s16.c", "BasicMathFunctions/arm_elementwise_mul_s16.c",
           "BasicMathFunctions/arm_elementwise_mul_acc_s16.c", "BasicMathFunctions/arm_elementwise_mul_s16_s8.c"]
CFLAGS = [*CM.TARGETS[TARGET]["cflags"], "-O2", "-ffunction-sections", "-fdata-sections"]


def check_cmsis_dir(path) -> Path | None:
    """DIR if it looks like a CMSIS-NN checkout (the LSTM's sources and Include/), else None."""
    d = Path(path).expanduser()
    ok = (d / "Include" / "arm_nnfunctions.h").is_file() and all((d / "Source" / s).is_file() for s in SOURCES)
    return d.resolve() if ok else None


# --------------------------------------------------------------------------------------
# quantisation (TFLite's int8x8_16 LSTM scheme) and the numpy references


def quantize_multiplier(scale: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: scale = m / 2^31 * 2^shift, m in [2^30, 2^31)."""
    frac, exp = math.frexp(scale)
    m = round(frac * (1 << 31))
    if m == 1 << 31:
        m, exp = m // 2, exp + 1
    return int(m), int(exp)


def asymmetric(lo: float, hi: float) -> tuple[float, int]:
    """int8 scale and zero point covering [lo, hi] (and 0)."""
    lo, hi = min(lo, 0.0), max(hi, 0.0)
    scale = (hi - lo) / 255.0
    return scale, int(np.clip(round(-128 - lo / scale), -128, 127))


def fp32_lstm(raw: dict, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The LSTM layer in float64 (torch LSTMCell semantics): hidden and cell states per step."""
    wi, wh, b = (np.asarray(raw[k], np.float64) for k in ("cell.weight_ih", "cell.weight_hh", "cell.bias"))
    h, c, hs, cs = np.zeros(UNITS), np.zeros(UNITS), [], []
    sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
    for xt in x:
        z = wi @ xt + wh @ h + b
        i, f, g, o = np.split(z, 4)
        c = sig(f) * c + sig(i) * np.tanh(g)
        h = sig(o) * np.tanh(c)
        hs.append(h)
        cs.append(c)
    return np.array(hs), np.array(cs)


def quantize(raw: dict, x: np.ndarray) -> dict:
    """Every integer the C needs, calibrated on x through the fp32 LSTM."""
    hs, cs = fp32_lstm(raw, x)
    s_x, zp_x = asymmetric(float(x.min()), float(x.max()))
    s_h, zp_h = asymmetric(float(hs.min()), float(hs.max()))
    cell_power = math.ceil(math.log2(max(float(np.abs(cs).max()), 1e-6))) - 15  # cell scale 2^cell_power
    wi, wh, b = (np.asarray(raw[k], np.float64) for k in ("cell.weight_ih", "cell.weight_hh", "cell.bias"))
    q = {"s_x": s_x, "zp_x": zp_x, "s_h": s_h, "zp_h": zp_h, "cell_power": cell_power, "gates": {}}
    for k, name in enumerate(GATES):
        rows = slice(k * UNITS, (k + 1) * UNITS)
        g = {}
        for part, w, s_in in (("input", wi[rows], s_x), ("hidden", wh[rows], s_h)):
            s_w = float(np.abs(w).max()) / 127.0
            g[f"{part}_w"] = np.clip(np.round(w / s_w), -127, 127).astype(np.int8)
            g[f"{part}_scale"] = s_in * s_w / 2.0 ** -12  # the accumulator to the Q3.12 gate input
            g[f"{part}_mult"], g[f"{part}_shift"] = quantize_multiplier(g[f"{part}_scale"])
        bias = np.round(b[rows] / (s_x * float(np.abs(wi[rows]).max()) / 127.0)).astype(np.int64)
        g["bias"] = bias.astype(np.int32)
        # effective biases: the zero points folded in (arm_vector_sum_s8's job, done here once)
        g["input_eff_bias"] = (bias - zp_x * g["input_w"].astype(np.int64).sum(1)).astype(np.int32)
        g["hidden_eff_bias"] = (-zp_h * g["hidden_w"].astype(np.int64).sum(1)).astype(np.int32)
        q["gates"][name] = g
    q["forget_to_cell"] = quantize_multiplier(2.0 ** -15)
    q["input_to_cell"] = quantize_multiplier(2.0 ** -30 / 2.0 ** cell_power)
    q["output"] = quantize_multiplier(2.0 ** -30 / s_h)
    q["xq"] = np.clip(np.round(x / s_x) + zp_x, -128, 127).astype(np.int8)
    return q


def int8_reference(q: dict) -> np.ndarray:
    """The same integer LSTM in numpy, float-rounded: int8 hidden state per step."""
    h = np.full(UNITS, q["zp_h"], np.int64)
    c = np.zeros(UNITS)
    out = []
    for xt in q["xq"].astype(np.int64):
        pre = {}
        for name, g in q["gates"].items():
            acc_x = g["input_w"].astype(np.int64) @ xt + g["input_eff_bias"]
            acc_h = g["hidden_w"].astype(np.int64) @ h + g["hidden_eff_bias"]
            z = np.clip(np.round(acc_x * g["input_scale"]), -32768, 32767)
            z = np.clip(z + np.round(acc_h * g["hidden_scale"]), -32768, 32767) / 4096.0  # Q3.12
            act = np.tanh(z) if name == "cell" else 1.0 / (1.0 + np.exp(-z))
            pre[name] = np.clip(np.round(act * 32768.0), -32768, 32767)  # Q0.15
        cell_scale = 2.0 ** q["cell_power"]
        c = np.round(pre["forget"] * c / 32768.0) + np.round(pre["input"] * pre["cell"] * 2.0 ** -30 / cell_scale)
        c = np.clip(c, -32767, 32767)
        t = np.clip(np.round(np.tanh(c * cell_scale) * 32768.0), -32768, 32767)
        h = np.clip(np.round(pre["output"] * t * 2.0 ** -30 / q["s_h"]) + q["zp_h"], -128, 127).astype(np.int64)
        out.append(h)
    return np.array(out)


# --------------------------------------------------------------------------------------
# the C: the layer's constants, the harness, the flash probe


def _array(ctype: str, name: str, values) -> str:
    return f"static const {ctype} {name}[{len(values)}] = {{{', '.join(str(int(v)) for v in values)}}};\n"


def model_c(q: dict) -> str:
    """cnn_lstm.c: the quantised weights and cmsis_nn_lstm_params as constants (flash), the
    state kept between calls, and cnn_step = one arm_lstm_unidirectional_s8 call."""
    text = ["/* CMSIS-NN arm_lstm_unidirectional_s8 on the LSTM-19 (benchmarks/cmsis_nn_lstm.py, generated) */\n",
            '#include "arm_nnfunctions.h"\n#include "cnn_lstm.h"\n\n']
    inits = {}
    for name, g in q["gates"].items():
        for part in ("input", "hidden"):
            text.append(_array("int8_t", f"{name}_{part}_w", g[f"{part}_w"].ravel()))
            text.append(_array("int32_t", f"{name}_{part}_eff_bias", g[f"{part}_eff_bias"]))
        act = "ARM_TANH" if name == "cell" else "ARM_SIGMOID"
        inits[name] = (f"{{{g['input_mult']}, {g['input_shift']}, {name}_input_w, {name}_input_eff_bias, "
                       f"{g['hidden_mult']}, {g['hidden_shift']}, {name}_hidden_w, {name}_hidden_eff_bias, "
                       f"NULL, {act}}}")  # bias: folded into input_eff_bias (the s8 step never reads it)
    (fm, fs), (im, is_), (om, os_) = q["forget_to_cell"], q["input_to_cell"], q["output"]
    text.append(f"""
static const cmsis_nn_lstm_params params = {{
    1, 1, 1, {INPUTS}, {UNITS}, /* time major, batch, time steps, inputs, units */
    {-q['zp_x']}, {fm}, {fs}, {im}, {is_}, 32767, {q['cell_power']}, /* input offset, forget/input to cell, clip */
    {om}, {os_}, {q['zp_h']}, /* hidden state: multiplier, shift, zero point */
    {inits['forget']},
    {inits['input']},
    {inits['cell']},
    {inits['output']}}};

static int16_t scratch1[{UNITS}], scratch2[{UNITS}]; /* the layer's temp buffers */

void cnn_reset(cnn_state_t *s)
{{
    int i;
    for (i = 0; i < {UNITS}; ++i) {{
        s->cell[i] = 0;
        s->hidden[i] = (int8_t)({q['zp_h']}); /* a real 0 */
    }}
}}

void cnn_step(cnn_state_t *s, const int8_t *x, int8_t *h)
{{
    cmsis_nn_lstm_context ctx = {{scratch1, scratch2, s->cell, s->hidden}}; /* state in, state out */
    arm_lstm_unidirectional_s8(x, h, &params, &ctx);
}}
""")
    return "".join(text)


HEADER = f"""#include <stdint.h>
typedef struct {{
    int16_t cell[{UNITS}];
    int8_t hidden[{UNITS}];
}} cnn_state_t;
void cnn_reset(cnn_state_t *s);
void cnn_step(cnn_state_t *s, const int8_t *x, int8_t *h);
"""

MAIN = f"""/* golden run (every step's hidden state, printed) and golden_harness.h's timing (N, 2N) */
#include "cnn_data.h"
#include "golden_harness.h"
#include "cnn_lstm.h"
static cnn_state_t s;
static int8_t y[{UNITS}];
#define STEP_AT(k) cnn_step(&s, golden_x[k], y)
int main(void)
{{
    platform_init();
#ifndef TIMING_ONLY
    {{
        int t, i;
        cnn_reset(&s);
        for (t = 0; t < GOLDEN_STEPS; ++t) {{
            cnn_step(&s, golden_x[t], y);
            platform_puts("h=");
            for (i = 0; i < {UNITS}; ++i) {{
                put_ulong((unsigned long)(y[i] + 128));
                platform_puts(i + 1 < {UNITS} ? "," : "\\n");
            }}
        }}
    }}
#endif
    cnn_reset(&s);
    GOLDEN_MEASURE(STEP_AT, (unsigned long)sizeof(s));
    return golden_verdict(1);
}}
"""

PROBE = f"""/* flash probe: reset + one step, or (NO_MODEL) the same I/O without it */
#include "cnn_lstm.h"
volatile int8_t vin[{INPUTS}];
volatile int8_t vout[{UNITS}];
int main(void)
{{
    int8_t x[{INPUTS}], y[{UNITS}];
    int i;
#ifndef NO_MODEL
    cnn_state_t s;
    cnn_reset(&s);
#endif
    for (i = 0; i < {INPUTS}; ++i) x[i] = vin[i];
#ifndef NO_MODEL
    cnn_step(&s, x, y);
#else
    for (i = 0; i < {UNITS}; ++i) y[i] = x[i % {INPUTS}];
#endif
    for (i = 0; i < {UNITS}; ++i) vout[i] = y[i];
    return 0;
}}
"""


def _run(cmd, cwd, timeout=600) -> subprocess.CompletedProcess:
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"{Path(cmd[0]).name} failed: {(r.stderr.strip() or r.stdout.strip())[-600:]}")
    return r


def build(cmsis: Path, q: dict, out: Path) -> None:
    """The sources in out, CMSIS-NN's objects in out/libcmsisnn.a, and four ELFs: the golden run,
    the traced timing build, the probe with and without the model."""
    (out / "cnn_lstm.c").write_text(model_c(q))
    (out / "cnn_lstm.h").write_text(HEADER)
    (out / "cnn_main.c").write_text(MAIN)
    (out / "probe.c").write_text(PROBE)
    rows = ",\n".join("{" + ", ".join(str(int(v)) for v in r) + "}" for r in q["xq"])
    (out / "cnn_data.h").write_text(f"#include <stdint.h>\n#define GOLDEN_STEPS {len(q['xq'])}\n"
                                    f"#define GOLDEN_OUTPUTS {UNITS}\n"
                                    f"static const int8_t golden_x[GOLDEN_STEPS][{INPUTS}] = {{\n{rows}}};\n")
    inc = ["-I.", f"-I{cmsis / 'Include'}", f"-I{CM.FIRMWARE}"]
    objs = []
    for src in SOURCES:
        obj = Path(src).with_suffix(".o").name
        _run(["arm-none-eabi-gcc", *CFLAGS, *inc, "-c", "-o", obj, str(cmsis / "Source" / src)], out)
        objs.append(obj)
    _run(["arm-none-eabi-ar", "rcs", "libcmsisnn.a", *objs], out)
    ld = ["-nostartfiles", "--specs=nosys.specs", "-T", str(CM.CM / CM.TARGETS[TARGET]["ld"]), "-Wl,--gc-sections"]
    platform = [str(CM.CM / "platform_cm.c"), str(CM.CM / "startup_cm.c")]
    for elf, srcs, defs in (("cnn_golden.elf", ["cnn_main.c", "cnn_lstm.c"], [f"-DGOLDEN_TIMING_STEPS={TIMING_STEPS}"]),
                            ("cnn_cycles.elf", ["cnn_main.c", "cnn_lstm.c"],
                             [f"-DGOLDEN_TIMING_STEPS={cycles.STEPS}", "-DTIMING_ONLY"]),
                            ("probe_model.elf", ["probe.c", "cnn_lstm.c"], []),
                            ("probe_base.elf", ["probe.c"], ["-DNO_MODEL"])):
        _run(["arm-none-eabi-gcc", *CFLAGS, *defs, *inc, "-o", elf, *srcs, "libcmsisnn.a", *platform, *ld, "-lm"], out)


def instructions_by_function(elf: Path) -> dict:
    """Instructions per step in each function of the traced timing build (the same qemu trace as
    the cycle estimate: window of 2N steps - window of N, over N): where CMSIS-NN's step goes."""
    nm = _run(["arm-none-eabi-nm", "-n", "-S", str(elf)], elf.parent).stdout.split("\n")
    funcs = [(int(p[0], 16) & ~1, int(p[1], 16), p[3]) for p in map(str.split, nm)
             if len(p) == 4 and p[2] in "tTwW"]
    starts = [f[0] for f in funcs]
    per = {}
    for sign, window in zip((-1, 1), cycles.trace_windows(elf, CM.TARGETS[TARGET]["machine"])):
        for (_, pc, _), count in window.items():
            k = int(np.searchsorted(starts, pc, side="right")) - 1
            name = funcs[k][2] if k >= 0 and pc < funcs[k][0] + funcs[k][1] else "?"
            per[name] = per.get(name, 0) + sign * count
    return {k: v / cycles.STEPS for k, v in sorted(per.items(), key=lambda kv: -kv[1]) if v}


def measure_cmsis(cmsis: Path, q: dict, out: Path) -> dict:
    """Build, run under qemu -icount, trace for the cycle estimate, size the probes."""
    out.mkdir(parents=True, exist_ok=True)
    build(cmsis, q, out)
    t = CM.TARGETS[TARGET]
    r = subprocess.run(["qemu-system-arm", "-M", t["machine"], "-nographic", "-monitor", "none", "-serial", "none",
                        "-semihosting-config", "enable=on,target=native", "-icount", "shift=0", "-kernel",
                        "cnn_golden.elf"], cwd=out, capture_output=True, text=True, timeout=600)
    text = r.stdout + "\n" + r.stderr
    hq = np.array([[int(v) - 128 for v in m.split(",")] for m in re.findall(r"^h=([0-9,]+)$", text, re.M)])
    kv = dict(re.findall(r"(\w+)=(\d+)", text))
    if r.returncode != 0 or "GOLDEN PASS" not in text or len(hq) != len(q["xq"]) or "systick_ticks_n" not in kv:
        raise RuntimeError(f"the CMSIS-NN run failed (exit {r.returncode}): {text.strip()[-400:]}")
    n = int(kv["timing_steps"])
    res = {"instructions_per_step": (int(kv["systick_ticks_2n"]) - int(kv["systick_ticks_n"])) / n * t["ns_per_tick"],
           "step_stack_bytes": int(kv["step_stack_bytes"]), "state_bytes": int(kv["state_bytes"])}
    res.update(cycles.try_estimate(out / "cnn_cycles.elf", TARGET, cycles.STEPS, t["machine"]))
    res["instructions_by_function"] = instructions_by_function(out / "cnn_cycles.elf")
    sizes = {}
    for line in _run(["arm-none-eabi-size", "probe_model.elf", "probe_base.elf"], out).stdout.splitlines()[1:]:
        p = line.split()
        sizes[p[-1]] = (int(p[0]), int(p[1]), int(p[2]))
    (mt, md, mb), (bt, bd, bb) = sizes["probe_model.elf"], sizes["probe_base.elf"]
    res["linked_flash_bytes"] = mt + md - bt - bd
    res["static_ram_bytes"] = md + mb - bd - bb  # the scratch buffers (and any .data/.bss of the kernels)
    res["ram_bytes"] = res["state_bytes"] + res["static_ram_bytes"] + res["step_stack_bytes"]
    return res, hq


# --------------------------------------------------------------------------------------
# the run


ROW_FIELDS = ("passed", "instructions_per_step", "traced_instructions_per_step", *cycles.FIELDS, "cycles_skipped",
              "linked_flash_bytes", "state_bytes", "step_stack_bytes", "static_ram_bytes", "ram_bytes", "mix_per_step",
              "instructions_by_function")


def _row(res: dict) -> dict:
    row = {k: res[k] for k in ROW_FIELDS if k in res}
    if "ram_bytes" not in row and "state_bytes" in res:
        row["ram_bytes"] = res["state_bytes"] + res.get("step_stack_bytes", 0)  # the model adds no .data/.bss
    return row


def agreement(hq: np.ndarray, q: dict, raw: dict, x: np.ndarray) -> dict:
    """CMSIS-NN's int8 hidden states against the numpy int8 model and against the fp32 LSTM, in
    LSBs of the hidden state's scale."""
    ref = int8_reference(q)
    fp = fp32_lstm(raw, x)[0] / q["s_h"] + q["zp_h"]
    d = np.abs(hq - ref)
    return {"steps": int(len(hq)), "values": int(hq.size),
            "vs_numpy_int8_max_lsb": int(d.max()), "vs_numpy_int8_mean_lsb": float(d.mean()),
            "vs_numpy_int8_exact_fraction": float((d == 0).mean()),
            "vs_fp32_max_lsb": float(np.abs(hq - fp).max()), "vs_fp32_mean_lsb": float(np.abs(hq - fp).mean()),
            "hidden_lsb": q["s_h"], "tolerance_lsb": 2, "passed": bool(d.max() <= 2)}


def project_rows(model_file: Path, work: Path) -> dict:
    """The project's LSTM-19 on the M4 in this run: int8, fp32 (FPv4 step), fp32 portable C."""
    r = CM.measure(model_file, work, targets=(TARGET,), timing_steps=TIMING_STEPS)[TARGET]
    return {"lstm19_int8": _row(r["int8"]), "lstm19_fp32_fpv4": _row(r["fp32_fpv4"]),
            "lstm19_fp32_portable": _row(r["fp32"])}


def run(cmsis: Path, work: Path, with_project: bool = True) -> dict:
    from ltc_edge.nn import build_model, save
    from ltc_edge.nn.modelfile import read

    model_file = save(build_model("lstm", INPUTS, units=UNITS, output_size=2, seed=0), work / "lstm19.safetensors")
    raw = {k: np.asarray(v) for k, v in read(model_file)[1].items()}
    x = np.random.default_rng(0).standard_normal((STEPS, INPUTS))  # as cortex_m.prepare_int8's default
    q = quantize(raw, x)
    res, hq = measure_cmsis(cmsis, q, work / "cmsis")
    rows = {"cmsis_nn_lstm19_int8": {"passed": True, **_row(res)}}
    rows["cmsis_nn_lstm19_int8"]["constants_bytes"] = sum(  # int8 weights + int32 effective biases
        g[f"{p}_w"].size + 4 * g[f"{p}_eff_bias"].size for g in q["gates"].values() for p in ("input", "hidden"))
    check = agreement(hq, q, raw, x)
    rows["cmsis_nn_lstm19_int8"]["passed"] = check["passed"]
    if with_project:
        rows.update(project_rows(model_file, work / "project"))
    c = rows["cmsis_nn_lstm19_int8"]
    ratios = {f"cmsis_over_{k}_{u}": c[f] / rows[k][f] for k in rows if k != "cmsis_nn_lstm19_int8"
              for u, f in (("instructions", "instructions_per_step"), ("cycles", "cycles_per_step"),
                           ("flash", "linked_flash_bytes"), ("ram", "ram_bytes")) if c.get(f) and rows[k].get(f)}
    return {"rows": rows, "correctness": check, "ratios": ratios,
            "quantisation": {"input_scale": q["s_x"], "input_zero_point": q["zp_x"], "hidden_scale": q["s_h"],
                             "hidden_zero_point": q["zp_h"], "cell_scale_power": q["cell_power"]}}


def cmsis_version(cmsis: Path) -> dict:
    """The checkout's commit (when DIR is a git checkout) and its pack description's release."""
    r = subprocess.run(["git", "-C", str(cmsis), "log", "-1", "--format=%H %cs"], capture_output=True, text=True)
    pdsc = cmsis / "ARM.CMSIS-NN.pdsc"
    m = re.search(r'<release version="([^"]+)"', pdsc.read_text()) if pdsc.is_file() else None
    return {"commit": r.stdout.strip() if r.returncode == 0 else "unknown (not a git checkout)",
            "pdsc_release": m.group(1) if m else "unknown"}


def document(res: dict, cmsis: Path) -> dict:
    """The JSON record: what ran, how each figure is counted, the rows."""
    return {"what": "CMSIS-NN arm_lstm_unidirectional_s8 (one time step per call, state kept in its context) on the "
                   "emulated Cortex-M4 (qemu-system-arm mps2-an386, -O2 -mfpu=fpv4-sp-d16 -mfloat-abi=hard, DSP), "
                   "beside this project's LSTM-19 measured in the same run; qemu instructions and estimated cycles, "
                   "not a board",
           "cmsis_nn": {**cmsis_version(cmsis), "sources": SOURCES,
                        "cflags": " ".join(["arm-none-eabi-gcc", *CFLAGS])},
           "model": f"ltc_edge LSTM, {UNITS} units, {INPUTS} inputs, seed 0 (benchmarks/c_models.py's lstm19); "
                    f"inputs: standard normal, seed 0, {STEPS} steps, each row quantised its own way (CMSIS-NN: int8 "
                    "asymmetric; the project: its int16 input format)",
           "notes": {"scope": "CMSIS-NN: the LSTM layer only; the project's rows also compute the 19 -> 2 readout "
                              "(38 multiply-adds)",
                     "optimisation": "-O2 as the project's rows; CMSIS-NN at -O3 (= -Ofast here) took 16,636 "
                                     "instructions/step, at -Os 20,710 (this script with CFLAGS' -O2 swapped, "
                                     "same commit, checked once by hand)",
                     "instructions_per_step": "SysTick ticks x 40 under qemu -icount shift=0, (2N - N steps) / N, "
                                              f"N = {TIMING_STEPS}",
                     "cycles_per_step": cycles.NOTE[TARGET],
                     "linked_flash_bytes": "probe firmware (reset + one step) minus the same without the model: "
                                           "kernels + weights + parameters (+ memcpy/memset where the model pulls "
                                           "them in)",
                     "ram_bytes": "state + the model's .data/.bss (CMSIS-NN: two int16 scratch buffers) + the stack "
                                  "high-water mark of one step",
                     "correctness": "CMSIS-NN's int8 hidden state every step vs a numpy model of the same integer "
                                    "math (float sigmoid/tanh and requantisation instead of CMSIS-NN's LUT and "
                                    "fixed-point rounding) and vs the fp32 LSTM, in LSBs of the hidden scale"},
           **res}


def check_out(out: Path) -> None:
    """Refuse an --out that cannot be written before the run, in one line."""
    fileio.check_writable_target(out)
    parent = next(p for p in out.absolute().parents if p.exists())
    if not os.access(parent, os.W_OK) or (out.parent.exists() and not out.parent.is_dir()):
        raise UnsafeFileError(f"--out {out}: cannot write there")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cmsis-nn", metavar="DIR", help="a checkout of github.com/ARM-software/CMSIS-NN")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "cmsis_nn_lstm.json"))
    ap.add_argument("--no-project", action="store_true", help="only the CMSIS-NN row (skip the project's rows)")
    a = ap.parse_args()
    cmsis = check_cmsis_dir(a.cmsis_nn) if a.cmsis_nn else None
    if cmsis is None:
        sys.exit(f"error: --cmsis-nn DIR must be a checkout of github.com/ARM-software/CMSIS-NN (with Include/ and "
                 f"Source/LSTMFunctions/); got {a.cmsis_nn or 'none'}")
    if CM.missing_tools():
        sys.exit(f"error: missing {', '.join(CM.missing_tools())} (ltc_edge/bench/arm/setup.sh)")
    work = Path(tempfile.mkdtemp(prefix="cmsis-nn-lstm-"))
    try:
        check_out(Path(a.out))
        res = run(cmsis, work, with_project=not a.no_project)
        fileio.atomic_write_bytes(a.out, (json.dumps(document(res, cmsis), indent=1) + "\n").encode())
    except (LtcEdgeError, RuntimeError, subprocess.SubprocessError, OSError) as e:
        sys.exit(f"error: {str(e).splitlines()[0][:300]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, row in res["rows"].items():
        print(f"{name:24s} instructions/step {row.get('instructions_per_step')}  est. cycles/step "
              f"{row.get('cycles_per_step')}  flash {row.get('linked_flash_bytes')} B  RAM {row.get('ram_bytes')} B")
    c = res["correctness"]
    print(f"CMSIS-NN vs numpy int8: max {c['vs_numpy_int8_max_lsb']} LSB, {c['vs_numpy_int8_exact_fraction']:.1%} "
          f"exact; vs fp32: max {c['vs_fp32_max_lsb']:.2f} LSB -> {a.out}")


if __name__ == "__main__":
    main()
