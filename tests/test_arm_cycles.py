"""The Cortex-M cycle estimate (ltc_edge/bench/arm/cycles.py): mnemonic parsing and costing on
the host, and straight-line assembly snippets with known TRM counts traced under qemu."""

import pytest

from ltc_edge.bench.arm import cycles
from ltc_edge.bench.arm import cortex_m as CM


@pytest.mark.parametrize("word, base", [
    ("ldr.w", "ldr"), ("bne.n", "b"), ("bls", "b"), ("blt.n", "b"), ("bleq", "bl"), ("bxeq", "bx"),
    ("addseq", "add"), ("movs", "mov"), ("lsls", "lsl"), ("bics", "bic"), ("vmoveq.f32", "vmov"),
    ("ldrbeq", "ldrb"), ("pople", "pop"), ("mls", "mls"), ("vmrs", "vmrs"), ("teq", "teq"), ("vnmls.f32", "vnmls")])
def test_base_mnemonic(word, base):
    assert cycles.base_mnemonic(word) == base


def test_base_cycles_from_the_trm_tables():
    assert cycles.base_cycles("vdiv", "s0, s1, s2", "cortex-m4") == (14, 14, 14)
    assert cycles.base_cycles("vldmia", "r0!, {s0-s3}", "cortex-m4") == (5, 5, 5)  # 1 + N
    assert cycles.base_cycles("vpush", "{d8-d9}", "cortex-m4") == (5, 5, 5)  # two words per d register
    assert cycles.base_cycles("pop", "{r4, r5, r6, pc}", "cortex-m0") == (5, 5, 5)  # + P when taken: 4 + N
    assert cycles.base_cycles("sdiv", "r0, r1, r2", "cortex-m4") == (2, 7, 12)
    assert cycles.base_cycles("umull", "r0, r1, r2, r3", "cortex-m3") == (3, 4, 5)
    assert cycles.base_cycles("umull", "r0, r1, r2, r3", "cortex-m4") == (1, 1, 1)
    assert cycles.base_cycles("bl", "", "cortex-m0") == (2, 2, 2)  # + P (2): 4
    assert cycles.base_cycles("vldr", "d8, [r0, #8]", "cortex-m4") == (3, 3, 3)
    assert cycles.base_cycles("vldr", "s8, [r0, #8]", "cortex-m4") == (2, 2, 2)
    assert cycles.base_cycles("vmov", "r0, r1, d0", "cortex-m4") == (2, 2, 2)
    assert cycles.base_cycles("vmov", "r0, s1", "cortex-m4") == (1, 1, 1)


SNIPPETS = [  # (target, assembly, instructions, (low, middle, high) cycles of one copy)
    ("cortex-m4", "\n".join(["vdiv.f32 s0, s1, s2"] * 10), 10, (140, 140, 140)),
    ("cortex-m4", "vldmia sp, {s0-s3}", 1, (5, 5, 5)),
    ("cortex-m4", "vpush {s16-s19}\nvpop {s16-s19}", 2, (10, 10, 10)),
    ("cortex-m4", "vfma.f32 s0, s1, s2\nvmla.f32 s0, s1, s2\nvsqrt.f32 s0, s1\nvadd.f32 s0, s1, s2", 4, (21, 21, 21)),
    # neighbouring single loads pipeline (the copy before ends in a load too); a load after an ALU op: 2
    ("cortex-m4", "ldr r1, [sp]\nldr r2, [sp, #4]\nldr r3, [sp]\nldr r1, [sp]", 4, (4, 4, 4)),
    ("cortex-m4", "ldr r1, [sp]\nadd r2, r2, #1\nldr r1, [sp]\nadd r2, r2, #1", 4, (6, 6, 6)),
    ("cortex-m4", "push {r4, r5, lr}\npop {r4, r5}\npop {r1}", 3, (9, 9, 9)),
    ("cortex-m4", "b 1f\nnop\n1:", 1, (2, 3, 4)),  # taken: 1 + P, P = 1..3
    ("cortex-m4", "cmp r0, r0\nbne 1f\nnop\n1:", 3, (3, 3, 3)),  # not taken: 1
    ("cortex-m4", "bl 2f\nb 3f\n2: bx lr\n3:", 3, (6, 9, 12)),
    ("cortex-m4", "sdiv r0, r1, r2", 1, (2, 7, 12)),
    ("cortex-m4", "cmp r0, r0\nit eq\naddeq r0, r0, #1", 3, (3, 3, 3)),
    ("cortex-m4", "vmov s0, s1, r0, r1\nvmov r2, s0\nvldr d0, [sp]", 3, (6, 6, 6)),
    ("cortex-m3", "umull r0, r1, r2, r3\nmla r0, r1, r2, r3", 2, (5, 6, 7)),
    ("cortex-m0", ".syntax unified\nldr r1, [sp]\nldr r2, [sp]\nmuls r1, r2, r1\nb 1f\nnop\n1:", 4, (8, 8, 8)),
]


@pytest.mark.qemu
@pytest.mark.parametrize("target, asm, insns, expect", SNIPPETS, ids=[f"{t}-{i}" for i, (t, *_) in enumerate(SNIPPETS)])
def test_snippet_cycles_under_qemu(tmp_path, target, asm, insns, expect):
    if CM.missing_tools():
        pytest.skip(f"missing: {CM.missing_tools()}")
    r = CM.estimate_snippet(asm, target, tmp_path)
    assert r["traced_instructions_per_step"] == insns
    assert (r["cycles_low"], r["cycles_per_step"], r["cycles_high"]) == expect


@pytest.mark.qemu
def test_model_row_has_cycles_beside_instructions(tmp_path):
    """The Cortex-M4 golden run of a model carries the estimate: its traced instruction count
    agrees with the SysTick count, and its vdivs alone cost 14 cycles each."""
    from ltc_edge.bench import arm as A
    from ltc_edge.nn import build_model, save

    if A.missing_tools("m4"):
        pytest.skip(f"missing: {A.missing_tools('m4')}")
    model = build_model("ltc", 5, wiring="auto-ncp", units=10, output_size=2, seed=0)
    A.prepare(save(model, tmp_path / "m.safetensors"), tmp_path / "m4", steps=20, timing_steps=8)
    r = A.run_m4(tmp_path / "m4", "ltc_model")
    assert r["passed"] and "cycles_skipped" not in r, r
    assert r["traced_instructions_per_step"] == pytest.approx(r["instructions_per_step"], rel=0.02)
    assert r["cycles_low"] <= r["cycles_per_step"] <= r["cycles_high"]
    vdiv = r["mix_per_step"]["vdiv"]
    assert vdiv > 0 and r["cycles_low"] >= r["traced_instructions_per_step"] + 13 * vdiv


@pytest.mark.qemu
def test_a_trace_that_cannot_run_is_a_skipped_field_not_a_hang(tmp_path):
    if CM.missing_tools():
        pytest.skip(f"missing: {CM.missing_tools()}")
    CM.estimate_snippet("nop", "cortex-m4", tmp_path)  # builds snippet.elf
    r = cycles.try_estimate(tmp_path / "snippet.elf", "cortex-m4", 1, "no-such-board")
    assert "entered platform_count 0 times" in r["cycles_skipped"]
