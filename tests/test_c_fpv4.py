"""The LTC's FPv4 step (cell_ltc_fpv4.c.in: the gates in Cortex-M4F assembly), run under qemu
(mps2-an386, -icount): its gate against double precision over the float range, NaN/inf inputs,
golden outputs vs the numpy runtime over 1000 steps, at every optimisation level, and the
issue's budget for ncps's LTC-NCP-19 (instructions, flash, RAM). Marked qemu; skips only when
the ARM tools are absent (scripts/arm/setup.sh)."""

import subprocess
from pathlib import Path

import pytest

from ltc_edge.bench import arm as A
from ltc_edge.codegen import c as cgen

pytestmark = pytest.mark.qemu
ROOT = Path(__file__).resolve().parents[1]
FW = ROOT / "ltc_edge" / "codegen" / "firmware"
M4F = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]

# the sweeps include the generated model (to reach its static functions) and golden_harness.h
# (printing); put_num prints a labelled count, nonfinite_checks steps the model once from the reset
# state with x[1] = NaN (every state NaN?) and once with -inf (every state finite?)
SWEEP_COMMON = r"""
#include "ltc_model.c"
#include <math.h>
#define GOLDEN_TIMING_STEPS 1
#include "golden_harness.h"

static void put_num(const char *key, unsigned long v)
{
    platform_puts(key);
    put_ulong(v);
    platform_puts("\n");
}

static void nonfinite_checks(void)
{
    union { uint32_t u; float f; } b;
    int i, ok_nan = 1, ok_inf = 1;
    ltc_model_state_t s;
    float x[LTC_MODEL_INPUTS], y[LTC_MODEL_OUTPUTS];
    for (i = 0; i < LTC_MODEL_INPUTS; ++i)
        x[i] = 0.5f;
    ltc_model_reset(&s);
    b.u = 0x7fc00000u;
    x[1] = b.f;
    ltc_model_step(&s, x, 0.1f, y);
    for (i = 0; i < LTC_MODEL_STATE_SIZE; ++i)
        ok_nan &= s.h[i] != s.h[i];
    ltc_model_reset(&s);
    b.u = 0xff800000u;
    x[1] = b.f;
    ltc_model_step(&s, x, 0.1f, y);
    for (i = 0; i < LTC_MODEL_STATE_SIZE; ++i)
        ok_inf &= s.h[i] == s.h[i] && s.h[i] - s.h[i] == 0.0f;
    put_num("nan_all=", (unsigned long)ok_nan);
    put_num("inf_finite=", (unsigned long)ok_inf);
}
"""

# sweeps t = a*1 + 0 through fv_sensory (record {a, 0, 1, 0}: den = g(t)) and compares with
# 1/(1 + 2^t) in double precision
SWEEP_MAIN = SWEEP_COMMON + r"""

static double worst = 0.0;
static float worst_t = 0.0f;

static void gate_at(float t, const float *vb)
{
    float rec[4] = {0.0f, 0.0f, 1.0f, 0.0f}, num = 0.0f, den = 0.0f;
    const float *r = rec;
    const uint8_t idx = 6, *p = &idx;
    double err;
    rec[0] = t;
    fv_sensory(1u, &r, &p, vb, &num, &den);
    err = fabs((double)den - 1.0 / (1.0 + exp2((double)t)));
    if (!(err <= worst)) {
        worst = err;
        worst_t = t;
    }
}

int main(void)
{
    float vb[7];
    union { uint32_t u; float f; } b;
    uint32_t u;
    int i;
    platform_init();
    for (i = 0; i < 6; ++i)
        vb[i] = FV_POLY[i];
    vb[6] = 1.0f;
    for (u = 0; u < 0x7f800000u; u += 1u << 13) { /* every 8192th float of either sign */
        b.u = u;
        gate_at(b.f, vb);
        gate_at(-b.f, vb);
    }
    b.u = 0x7f800000u;
    gate_at(b.f, vb);
    gate_at(-b.f, vb);
    for (i = -80 * 4096; i <= 80 * 4096; ++i) /* densely where g moves: |t| <= 80 */
        gate_at((float)i / 4096.0f, vb);
    put_num("max_err_e12=", (unsigned long)(worst * 1e12));
    put_num("worst_t_x1000=", (unsigned long)(fabs((double)worst_t) * 1000.0));
    nonfinite_checks();
    platform_exit(0);
    return 0;
}
"""


def _need():
    miss = A.missing_tools("m4")
    if miss:
        pytest.skip(f"ARM tools missing: {', '.join(miss)} (run scripts/arm/setup.sh)")


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    pytest.importorskip("ncps")
    import sys

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from c_models import model_files

    return model_files(tmp_path_factory.mktemp("fpv4-models"))


def _link(elf: Path, cpu, sources, *flags) -> None:
    """A bare-metal MPS2 firmware from sources + the Cortex-M platform (semihosting)."""
    cm = FW / "cortex_m"
    subprocess.run(["arm-none-eabi-gcc", *cpu, "-O2", "-std=c99", *flags, "-o", str(elf), *map(str, sources),
                    str(cm / "platform_cm.c"), str(cm / "startup_cm.c"), "-nostartfiles", "--specs=nosys.specs",
                    "-T", str(cm / "mps2.ld"), "-lm"], check=True, capture_output=True, text=True)


def _qemu(elf: Path, machine: str = "mps2-an386") -> str:
    r = subprocess.run(["qemu-system-arm", "-M", machine, "-nographic", "-monitor", "none", "-serial", "none",
                        "-semihosting-config", "enable=on,target=native", "-kernel", str(elf)],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout + r.stderr


def test_fpv4_gate_error_bound_and_nonfinite_inputs(models, tmp_path):
    _need()
    A.prepare(models["ncp19"], tmp_path, steps=2)
    assert f"#if {cgen.FPV4_TEST}" in (tmp_path / "ltc_model.c").read_text()
    (tmp_path / "sweep.c").write_text(SWEEP_MAIN)
    _link(tmp_path / "sweep.elf", M4F, [tmp_path / "sweep.c"], "-Wall", "-Werror", "-Wno-unused-function",
          "-I", str(tmp_path), "-I", str(FW))
    kv = dict(line.split("=", 1) for line in _qemu(tmp_path / "sweep.elf").split() if "=" in line)
    err = int(kv["max_err_e12"]) * 1e-12
    assert 1e-9 < err <= 1.5e-7, kv  # the bound the template states (and a sweep that really compares)
    assert kv["nan_all"] == "1" and kv["inf_finite"] == "1", kv


@pytest.mark.parametrize("name,opt", [("ncp19", "-O2"), ("fc19", "-O2"), ("ncp19", "-Os"), ("ncp19", "-Og"),
                                      ("ncp19", "-O0")])
def test_fpv4_golden_1000_steps(models, tmp_path, name, opt):
    """The FPv4 step reproduces the numpy runtime to 1e-5 over 1000 steps at -O2 (200 at -Os and
    -Og: the assembly's register operands hold there too; -O0 builds the portable form)."""
    _need()
    A.prepare(models[name], tmp_path, steps=1000 if opt == "-O2" else 200, timing_steps=20, tol=1e-5)
    r = A.run_m4(tmp_path, "ltc_model", opt=opt)
    assert r["passed"] and r["max_abs_err"] <= 1e-5, r


def test_fpv4_meets_the_cortex_m4_budget(models, tmp_path):
    """Issue 13's budget for ncps's LTC-NCP-19 on a Cortex-M4 (-O2, hard float, qemu -icount):
    <= 10,000 instructions per step, flash <= 6 KB with its math, RAM <= 1 KB; the portable form
    (-DLTC_EDGE_PORTABLE_C) of the same file still builds and passes."""
    _need()
    A.prepare(models["ncp19"], tmp_path, steps=100, timing_steps=200)
    r = A.run_m4(tmp_path, "ltc_model")
    assert r["passed"], r
    assert 5000 < r["instructions_per_step"] <= 10_000, r["instructions_per_step"]
    assert r["model_flash_bytes"] <= 6 * 1024 and r["model_ram_bytes"] <= 1024, r
    portable = A.run_m4(tmp_path, "ltc_model", opt="-O2 -DLTC_EDGE_PORTABLE_C")
    assert portable["passed"] and portable["instructions_per_step"] > 1.5 * r["instructions_per_step"], portable


def test_fpv4_step_runs_on_a_cortex_m7(models, tmp_path):
    """The same file on a Cortex-M7 (FPv5, double-precision FPU; qemu mps2-an500): the FPv4 step
    builds there too and passes the golden test."""
    _need()
    A.prepare(models["ncp19"], tmp_path, steps=100, timing_steps=20, tol=1e-5)
    _check_m7(tmp_path, "fv_unfold")


def _check_m7(work: Path, fpv4_symbol: str) -> None:
    """ltc_model.c in work builds for a Cortex-M7 under the strict flags with its FPv4 step (the
    object holds fpv4_symbol), and its golden test passes under qemu mps2-an500."""
    m7 = ["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-d16"]
    subprocess.run(["arm-none-eabi-gcc", *m7, "-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic",
                    "-Wconversion", "-Wdouble-promotion", "-c", "-o", str(work / "m7.o"),
                    str(work / "ltc_model.c")], check=True)
    assert fpv4_symbol in subprocess.run(["arm-none-eabi-nm", str(work / "m7.o")], capture_output=True,
                                         text=True, check=True).stdout
    _link(work / "m7.elf", m7, [FW / "golden_main.c", work / "ltc_model.c"], "-I", str(work))
    assert "GOLDEN PASS" in _qemu(work / "m7.elf", "mps2-an500")


# --------------------------------------------------------------------------------------
# the LSTM's and GRU's FPv4 steps (rnn_fpv4.c.in, cell_lstm_fpv4.c.in, cell_gru_fpv4.c.in)

# sweeps t through fr_sigmoid and fr_tanh against 1/(1 + 2^t) and (1 - 2^t)/(1 + 2^t) =
# -tanh(t ln2 / 2) in double precision; a NaN t must make the NaN flag (st.sq) NaN
RNN_SWEEP_MAIN = SWEEP_COMMON + r"""
static double worst_s = 0.0, worst_t = 0.0;

static void acts_at(float t)
{
    fr_acts_t st = {0.0f, 0x3f800000u};
    const double es = fabs((double)fr_sigmoid(t, &st) - 1.0 / (1.0 + exp2((double)t)));
    const double et = fabs((double)fr_tanh(t, &st) + tanh((double)t * 0.34657359027997264));
    worst_s = es <= worst_s ? worst_s : es; /* a NaN error counts as the worst */
    worst_t = et <= worst_t ? worst_t : et;
}

int main(void)
{
    union { uint32_t u; float f; } b;
    fr_acts_t st = {0.0f, 0x3f800000u};
    uint32_t u;
    int i;
    platform_init();
    for (u = 0; u < 0x7f800000u; u += 1u << 13) { /* every 8192th float of either sign */
        b.u = u;
        acts_at(b.f);
        acts_at(-b.f);
    }
    b.u = 0x7f800000u;
    acts_at(b.f);
    acts_at(-b.f);
    for (i = -80 * 4096; i <= 80 * 4096; ++i) /* densely where they move: |t| <= 80 */
        acts_at((float)i / 4096.0f);
    put_num("sigmoid_err_e12=", (unsigned long)(worst_s * 1e12));
    put_num("tanh_err_e12=", (unsigned long)(worst_t * 1e12));
    b.u = 0x7fc00000u;
    (void)fr_tanh(b.f, &st);
    put_num("nan_flagged=", (unsigned long)(st.sq != st.sq));
    nonfinite_checks();
    platform_exit(0);
    return 0;
}
"""


@pytest.fixture(scope="module")
def rnn_models(tmp_path_factory):
    """LSTM-19, GRU-19 and CfC-19 (8 inputs, 2 outputs; seed 0; the CfC's default 128-unit
    backbone), as benchmarks/arm.py builds them, and a small no_gate CfC with two tanh backbone
    layers."""
    from ltc_edge.nn import build_model, save

    out = tmp_path_factory.mktemp("fpv4-rnn-models")
    models = {k: save(build_model(k, 8, units=19, output_size=2, seed=0), out / f"{k}19.safetensors")
              for k in ("lstm", "gru", "cfc")}
    models["cfc_no_gate"] = save(build_model("cfc", 3, units=7, output_size=2, backbone_units=13, backbone_layers=2,
                                             activation="tanh", mode="no_gate", seed=4), out / "cfc7.safetensors")
    return models


@pytest.mark.parametrize("kind", ["lstm", "gru", "cfc"])
def test_rnn_fpv4_activation_error_bound_and_nonfinite_inputs(rnn_models, tmp_path, kind):
    """The bounds rnn_fpv4.c.in states, over a sweep of the float range under qemu: sigmoid
    <= 1.5e-7, tanh <= 3e-7 (absolute, vs double precision); NaN in -> every state NaN."""
    _need()
    A.prepare(rnn_models[kind], tmp_path, steps=2)
    src = (tmp_path / "ltc_model.c").read_text()
    assert f"#if {cgen.FPV4_TEST}" in src and ("fr_heads" if kind == "cfc" else "fr_mac") in src
    (tmp_path / "sweep.c").write_text(RNN_SWEEP_MAIN)
    _link(tmp_path / "sweep.elf", M4F, [tmp_path / "sweep.c"], "-Wall", "-Werror", "-Wno-unused-function",
          "-I", str(tmp_path), "-I", str(FW))
    kv = dict(line.split("=", 1) for line in _qemu(tmp_path / "sweep.elf").split() if "=" in line)
    sig, tanh = int(kv["sigmoid_err_e12"]) * 1e-12, int(kv["tanh_err_e12"]) * 1e-12
    assert 1e-9 < sig <= 1.5e-7 and 1e-9 < tanh <= 3e-7, kv  # the bounds stated, and a sweep that compares
    assert kv["nan_flagged"] == "1" and kv["nan_all"] == "1" and kv["inf_finite"] == "1", kv


@pytest.mark.parametrize("kind,opt", [("lstm", "-O2"), ("gru", "-O2"), ("cfc", "-O2"), ("cfc_no_gate", "-O2"),
                                      ("lstm", "-Os"), ("lstm", "-Og"), ("gru", "-Os"), ("gru", "-Og"),
                                      ("cfc", "-Os"), ("cfc_no_gate", "-Og"), ("lstm", "-O0")])
def test_rnn_fpv4_golden(rnn_models, tmp_path, kind, opt):
    """The FPv4 steps reproduce the numpy runtime to 1e-5 over 1000 steps at -O2 (200 at -Os, -Og;
    -O0 builds the portable step)."""
    _need()
    if kind.startswith("cfc") and opt != "-O0":
        A.prepare(rnn_models[kind], tmp_path, steps=2)
        assert "fr_heads" in (tmp_path / "ltc_model.c").read_text()  # the CfC has its FPv4 step
    A.prepare(rnn_models[kind], tmp_path, steps=1000 if opt == "-O2" else 200, timing_steps=20, tol=1e-5)
    r = A.run_m4(tmp_path, "ltc_model", opt=opt)
    assert r["passed"] and r["max_abs_err"] <= 1e-5, r


@pytest.mark.parametrize("kind,budget", [("lstm", 7000), ("gru", 6000), ("cfc", 25000)])
def test_rnn_fpv4_meets_the_cortex_m4_budget(rnn_models, tmp_path, kind, budget):
    """Issue 24's budgets on a Cortex-M4 (-O2, hard float, qemu -icount): LSTM-19 <= 7,000 and
    GRU-19 <= 6,000 instructions per step (CfC-19 with its 128-unit backbone: 21.8k measured, held
    to <= 25,000); the portable step of the same file (-DLTC_EDGE_PORTABLE_C) still passes, and
    takes over 2x as many."""
    _need()
    A.prepare(rnn_models[kind], tmp_path, steps=100, timing_steps=200)
    r = A.run_m4(tmp_path, "ltc_model")
    assert r["passed"], r
    assert 2000 < r["instructions_per_step"] <= budget, r["instructions_per_step"]
    portable = A.run_m4(tmp_path, "ltc_model", opt="-O2 -DLTC_EDGE_PORTABLE_C")
    assert portable["passed"] and portable["instructions_per_step"] > 2 * r["instructions_per_step"], portable


@pytest.mark.parametrize("kind", ["lstm", "gru", "cfc"])
def test_rnn_fpv4_step_runs_on_a_cortex_m7(rnn_models, tmp_path, kind):
    """The same files on a Cortex-M7 (fpv5-d16, strict flags; qemu mps2-an500): the FPv4 step
    builds and passes the golden test."""
    _need()
    A.prepare(rnn_models[kind], tmp_path, steps=100, timing_steps=20, tol=1e-5)
    _check_m7(tmp_path, "fr_heads" if kind == "cfc" else "fr_mac")
