"""Cortex-M cycle estimate per step, from the executed instruction mix (an estimate, not a
measurement: qemu counts instructions, not cycles).

Route: the model's step runs in a timing-only harness (golden_harness.h's GOLDEN_MEASURE: N
steps, then 2N, each between two platform_count() calls) under qemu-system-arm single-stepping
with an exec trace (`-singlestep -d exec,nochain`: one line, the PC, per executed instruction).
The PCs between the 1st and 2nd and between the 3rd and 4th entries into platform_count are the
instructions of N and of 2N steps; arm-none-eabi-objdump of the ELF names each; (2N - N) / N is
one step, as the harness's SysTick instruction count differences it. Each executed instruction
is costed with its core's Technical Reference Manual timings (TIMINGS below); whether a branch
was taken is told from the next PC.

Assumptions: zero-wait-state memory (flash and SRAM at core speed, no cache, no bus
contention), no interrupts, no stalls beyond the TRM's figures (FPU register hazards ignored).
Where the TRM gives a range, `cycles_per_step` takes the middle and `cycles_low` /
`cycles_high` the ends: P, the pipeline refill after a taken branch, 1..3 (2) on the M3/M4 and
2 on the M0; SDIV/UDIV 2..12 (7: early termination depends on the operands); the M3's long
multiplies 3..5 / 4..7. M3/M4: a single load or store right after a single load pipelines to
1 cycle ("neighbouring load and store single instructions can pipeline"; nothing pipelines
after a store); VLDR/VSTR are counted 2, unpipelined. M0: a 1-cycle multiplier. IT counts 1
(the core may fold it into the previous 16-bit instruction: 0).

    python -m ltc_edge.bench.arm.cycles ELF --target cortex-m4 --steps N [--machine mps2-an386]
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tempfile
import threading
from collections import Counter
from pathlib import Path

from ... import precision as precisions

COND = {"eq", "ne", "cs", "cc", "hs", "lo", "mi", "pl", "vs", "vc", "hi", "ls", "ge", "lt", "gt", "le", "al"}
MULTI = {"ldm", "ldmia", "ldmdb", "ldmfd", "stm", "stmia", "stmdb", "stmea", "push", "pop",
         "vldm", "vldmia", "vldmdb", "vstm", "vstmia", "vstmdb", "vpush", "vpop"}  # 1 + N words
SINGLE_LOADS = {"ldr", "ldrb", "ldrh", "ldrsb", "ldrsh", "ldrt", "ldrbt", "ldrht", "ldrex"}
SINGLE_STORES = {"str", "strb", "strh", "strt", "strbt", "strht"}
RANGE = tuple[float, float, float]  # (low, middle, high)

_ARMV7M = {  # Cortex-M3/M4 TRM instruction set summary (integer); unlisted: 1
    **{m: 2 for m in SINGLE_LOADS | SINGLE_STORES}, "ldrd": 3, "strd": 3, "strex": 2,  # LDRD/STRD: 1 + 2
    "sdiv": (2, 7, 12), "udiv": (2, 7, 12), "tbb": 2, "tbh": 2, "msr": 2, "mrs": 2,
    "dmb": 4, "dsb": 4, "isb": 4,  # 1 + B (B: the barrier; here as for the M0)
}
TIMINGS = {  # base cycles per mnemonic; MULTI: 1 + words; a taken branch (next PC not the next
    # instruction): + P. Cortex-M0 TRM (ARM DDI 0432C) table 3-1; Cortex-M3 TRM (DDI 0337) table
    # 18-1; Cortex-M4 TRM (DDI 0439B) table 3-1 and FPU table 7-1 (single precision)
    "cortex-m0": {"P": (2, 2, 2), "pipelined_loads": False, "table": {
        **{m: 2 for m in SINGLE_LOADS | SINGLE_STORES}, "bl": 2, "mrs": 4, "msr": 4,
        "dmb": 4, "dsb": 4, "isb": 4}},
    "cortex-m3": {"P": (1, 2, 3), "pipelined_loads": True, "table": {
        **_ARMV7M, "mla": 2, "mls": 2, "smull": (3, 4, 5), "umull": (3, 4, 5),
        "smlal": (4, 5.5, 7), "umlal": (4, 5.5, 7)}},
    "cortex-m4": {"P": (1, 2, 3), "pipelined_loads": True, "table": {
        **_ARMV7M,  # MUL/MLA/MLS/SMULL/UMULL/SMLAL/UMLAL and the DSP instructions: 1
        "vdiv": 14, "vsqrt": 14, "vldr": 2, "vstr": 2,
        "vmla": 3, "vmls": 3, "vnmla": 3, "vnmls": 3, "vfma": 3, "vfms": 3, "vfnma": 3, "vfnms": 3}},
}
KNOWN = ({m for t in TIMINGS.values() for m in t["table"]} | MULTI | SINGLE_LOADS | SINGLE_STORES
         | {"mov", "mvn", "add", "adc", "sub", "sbc", "rsb", "and", "orr", "orn", "eor", "bic", "cmp", "cmn", "tst",
            "lsl", "lsr", "asr", "ror", "mul", "mla", "vmov", "vadd", "vsub", "vmul", "vneg", "vabs", "vcmp",
            "vcvt", "uxtb", "uxth", "sxtb", "sxth", "ubfx", "sbfx", "bfi", "clz", "nop"})
_LINE = re.compile(r"^\s*([0-9a-f]+):\t([0-9a-f]{4}(?: [0-9a-f]{4})?)\s*\t(\S+)\s*([^;@<]*)")
_REG = re.compile(r"([rsd])(\d+)(?:-[rsd](\d+))?")


def base_mnemonic(word: str) -> str:
    """'ldr.w' -> 'ldr', 'bne.n' -> 'b', 'bleq' -> 'bl', 'addseq' -> 'add', 'movs' -> 'mov',
    'vmoveq.f32' -> 'vmov'; a condition or an S suffix is dropped only where what is left is a
    known mnemonic ('mls', 'vmrs', 'teq' stay)."""
    m = word.split(".")[0].lower()
    for branch in ("blx", "bx", "bl", "b"):
        if m == branch or (m.startswith(branch) and m[len(branch):] in COND):
            return branch
    if m[-2:] in COND and (m[:-2] in KNOWN or m[:-3] in KNOWN and m[-3] == "s"):
        m = m[:-2]
    if m.endswith("s") and m[:-1] in KNOWN:
        m = m[:-1]
    return m


def _words(operands: str) -> int:
    """Words a register list moves: {r4, r5, lr} -> 3, {s16-s23} -> 8, {d8-d9} -> 4."""
    inner = operands[operands.find("{") + 1:operands.find("}")]
    n = 0
    for part in inner.split(","):
        r = _REG.search(part.strip())
        width = 2 if r and r.group(1) == "d" else 1
        n += width * (int(r.group(3)) - int(r.group(2)) + 1 if r and r.group(3) else 1)
    return n


def disassemble(elf: Path) -> dict:
    """{pc: (base mnemonic, operands, size in bytes)} of every Thumb instruction in the ELF."""
    text = subprocess.run(["arm-none-eabi-objdump", "-d", str(elf)], capture_output=True, text=True,
                          check=True).stdout
    return {int(m.group(1), 16): (base_mnemonic(m.group(3)), m.group(4).strip(), 2 * len(m.group(2).split()))
            for m in map(_LINE.match, text.splitlines()) if m}


def base_cycles(mnemonic: str, operands: str, core: str) -> RANGE:
    """The TRM cycles of one instruction, not taken, not pipelined."""
    c = TIMINGS[core]["table"].get(mnemonic, 1)
    if mnemonic in MULTI:
        c = 1 + _words(operands)
    elif mnemonic in ("vldr", "vstr") and re.match(r"\s*d\d", operands):
        c = 3  # .64: 3 (the M4's FPU table)
    elif mnemonic == "vmov" and len(re.findall(r"\b(?:r\d+|ip|lr|fp|sl)\b", operands)) == 2:
        c = 2  # two core registers to or from two singles or a double
    return c if isinstance(c, tuple) else (c, c, c)


def _marker_pc(elf: Path, symbol: str) -> int:
    out = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True, check=True).stdout
    for line in out.splitlines():
        p = line.split()
        if len(p) == 3 and p[2] == symbol:
            return int(p[0], 16) & ~1
    raise RuntimeError(f"{elf}: no symbol {symbol}")


def trace_windows(elf: Path, machine: str, marker: str = "platform_count", timeout: int = 600) -> list[Counter]:
    """Run the ELF single-stepped under qemu-system-arm; [Counter of (previous pc, pc, next pc)]
    for the instructions between the 1st and 2nd and between the 3rd and 4th entries into
    `marker` (qemu is stopped after the 4th)."""
    mark = _marker_pc(elf, marker)
    windows = [Counter(), Counter()]
    with tempfile.TemporaryDirectory(prefix="ltc-cycles-") as tmp:
        fifo = Path(tmp) / "exec.log"
        os.mkfifo(fifo)
        proc = subprocess.Popen(["qemu-system-arm", "-M", machine, "-nographic", "-monitor", "none", "-serial",
                                 "none", "-semihosting-config", "enable=on,target=native", "-singlestep",
                                 "-d", "exec,nochain", "-D", str(fifo), "-kernel", str(elf)],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        guard = threading.Thread(target=_end_after, args=(proc, fifo, timeout), daemon=True)
        guard.start()
        try:
            hits = _read_trace(fifo, mark, windows)
        finally:
            proc.kill()
            guard.join()
    if hits < 4:
        raise RuntimeError(f"{elf}: the trace entered {marker} {hits} times, not 4 (a harness without GOLDEN_MEASURE?)")
    return windows


def _end_after(proc, fifo: Path, timeout: float) -> None:
    """qemu done (or killed after `timeout` s): open the log's write end once, so a reader still
    waiting in open() (qemu never opened it: a bad board or ELF) gets end-of-file, not a hang."""
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:  # no reader waiting (it has finished): nothing to unblock
        pass


def _read_trace(fifo: Path, mark: int, windows: list) -> int:
    hits, p2, p1, w1 = 0, None, None, -1
    with open(fifo, "rb") as log:
        for line in log:
            if not line.startswith(b"Trace"):
                continue
            pc = int(line.split(b"/", 2)[1], 16)
            if w1 in (0, 2):  # p1 ran inside a window: cost it with its neighbours
                windows[w1 // 2][(p2, p1, pc)] += 1
            if pc == mark:
                hits += 1
                if hits > 4:
                    break
            p2, p1, w1 = p1, pc, hits - 1
    return hits


def cost_window(window: Counter, insns: dict, core: str) -> dict:
    """Instructions, cycles (low, mid, high), taken branches and the mix of one window."""
    t = TIMINGS[core]
    cycles, mix, taken_n, n = [0.0, 0.0, 0.0], Counter(), 0, 0
    unknown = set()
    for (prev, pc, nxt), count in window.items():
        if pc not in insns:
            unknown.add(hex(pc))
            continue
        mnem, ops, size = insns[pc]
        c = base_cycles(mnem, ops, core)
        if t["pipelined_loads"] and (mnem in SINGLE_LOADS or mnem in SINGLE_STORES) \
                and prev in insns and insns[prev][0] in SINGLE_LOADS:
            c = (1, 1, 1)
        taken = nxt != pc + size
        for i in range(3):
            cycles[i] += count * (c[i] + (t["P"][i] if taken else 0))
        taken_n += count * taken
        n += count
        mix[mnem] += count
    if unknown:
        raise RuntimeError(f"executed PCs not in the disassembly: {sorted(unknown)[:5]}")
    return {"instructions": n, "cycles": cycles, "taken_branches": taken_n, "mix": mix}


def per_step(windows: list, insns: dict, core: str, steps: int) -> dict:
    """(window of 2N steps - window of N steps) / N."""
    a, b = (cost_window(w, insns, core) for w in windows)
    mix = {k: (b["mix"][k] - a["mix"][k]) / steps for k in b["mix"]}
    cyc = [(y - x) / steps for x, y in zip(a["cycles"], b["cycles"])]
    top = dict(sorted(((k, v) for k, v in mix.items() if v), key=lambda kv: -kv[1])[:12])
    return {"traced_instructions_per_step": (b["instructions"] - a["instructions"]) / steps,
            "cycles_per_step": cyc[1], "cycles_low": cyc[0], "cycles_high": cyc[2],
            "taken_branches_per_step": (b["taken_branches"] - a["taken_branches"]) / steps,
            "mix_per_step": top, "cycles_note": NOTE[core]}


FIELDS = ("cycles_per_step", "cycles_low", "cycles_high")  # what a bench row carries
NOTE = {core: ("estimate from the executed instruction mix (qemu trace) x the " + core.upper().replace("CORTEX-", "Cortex-")
               + " TRM cycle timings; zero-wait-state memory; range of the TRM's variable timings in "
               "cycles_low/high (ltc_edge/bench/arm/cycles.py)") for core in TIMINGS}


def estimate(elf: Path, target: str, steps: int, machine: str) -> dict:
    """Cycle estimate per step of an ELF built from a GOLDEN_MEASURE harness with
    GOLDEN_TIMING_STEPS = steps, for `target` ('cortex-m0' | 'cortex-m3' | 'cortex-m4'), run on
    the qemu board `machine`."""
    windows = trace_windows(Path(elf), machine)
    return per_step(windows, disassemble(Path(elf)), target, steps)


def try_estimate(elf: Path, target: str, steps: int, machine: str) -> dict:
    """estimate(), or {"cycles_skipped": why} (a row keeps its other figures)."""
    try:
        return estimate(elf, target, steps, machine)
    except (RuntimeError, subprocess.SubprocessError, OSError) as e:
        return {"cycles_skipped": str(e).splitlines()[0][:200]}


STEPS = 4  # timed steps of the traced build (N; the trace runs 1 + 3N steps)
TIMING_MAIN = """/* cycle-estimate harness (ltc_edge/bench/arm/cycles.py): reset, then only the golden harness's
 * timed loops (N and 2N steps between platform_count() calls), traced under qemu */
#include "{data}"
#include "golden_harness.h"
#define STEP_AT(k) {step}
int main(void)
{{
    GOLDEN_STATE_T s;
    {ytype} y[GOLDEN_OUTPUTS];
    platform_init();
    GOLDEN_RESET(&s);
    GOLDEN_MEASURE(STEP_AT, (unsigned long)sizeof(s));
    return golden_verdict(1);
}}
"""


def write_timing_main(out: Path, kind: str) -> Path:
    """cycles_main_<kind>.c in out, beside golden_data.h (fp32) or golden_int_data.h (int8): build
    it with the model's C, -DGOLDEN_TIMING_STEPS=STEPS and the firmware folder on the include path."""
    data, step, ytype = (("golden_int_data.h", "GOLDEN_STEP_Q(&s, golden_xq[k], y)", "int16_t") if precisions.integer_c(kind)
                         else ("golden_data.h", "GOLDEN_STEP(&s, golden_x[k], golden_dt[k], y)", "float"))
    path = Path(out) / f"cycles_main_{kind}.c"
    path.write_text(TIMING_MAIN.format(data=data, step=step, ytype=ytype))
    return path


SNIPPET_MAIN = """/* a straight-line snippet once between two platform_count() calls, then twice: the trace's
 * difference is one copy of it (cycles.py: the check on known counts) */
unsigned long platform_count(void);
void platform_init(void);
void platform_exit(int code);
#define SNIP __asm__ volatile({asm} ::: "r0", "r1", "r2", "r3", "memory")
int main(void)
{{
    platform_init();
    platform_count(); SNIP; platform_count();
    platform_count(); SNIP; SNIP; platform_count();
    platform_exit(0);
    return 0;
}}
"""


def write_snippet_main(out: Path, asm: str) -> Path:
    """snippet.c in out: Thumb assembly (lines joined by newlines; it may use r0-r3, s0-s15 and
    the stack, and must fall through) placed for estimate(..., steps=1)."""
    path = Path(out) / "snippet.c"
    path.write_text(SNIPPET_MAIN.format(asm=json.dumps(asm + "\n")))
    return path


def main():
    import argparse

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("elf")
    ap.add_argument("--target", choices=list(TIMINGS), default="cortex-m4")
    ap.add_argument("--steps", type=int, required=True, help="the ELF's GOLDEN_TIMING_STEPS")
    ap.add_argument("--machine", default="mps2-an386", help="qemu board (mps2-an386: M4, mps2-an385: M3, "
                                                             "microbit: M0)")
    a = ap.parse_args()
    print(json.dumps(estimate(Path(a.elf), a.target, a.steps, a.machine), indent=1))


if __name__ == "__main__":
    main()
