"""Instructions per step of a generated C model (valgrind callgrind, steady state).

    .venv/bin/python scripts/callgrind_step.py            # the issue-13 models, both flag sets

`instructions_per_step(c_dir, prefix, flags)` compiles `<c_dir>/<prefix>.c` with a small driver
that steps the model N and 2N times on varying inputs, runs both under callgrind and returns
(Ir(2N) - Ir(N)) / N: the instructions of one step with start-up and the driver's set-up
removed (the driver's per-step input update, ~10 instructions, is counted). `differenced(exe, n)`
does the same for any program whose first argument is the step count; benchmarks/c_speed.py
imports it (with scripts/ on sys.path).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's ltc_edge

DRIVER = r"""
#include <stdlib.h>
#include "$PREFIX.h"
int main(int argc, char **argv)
{
    long steps = argc > 1 ? atol(argv[1]) : 1000, t;
    static $PREFIX_state_t s;
    float x[$UPPER_INPUTS], y[$UPPER_OUTPUTS];
    volatile float sink = 0.0f;
    int i;
    for (i = 0; i < $UPPER_INPUTS; ++i) x[i] = 0.1f * (float)(i + 1);
    $PREFIX_reset(&s);
    for (t = 0; t < steps; ++t) {
        x[t % $UPPER_INPUTS] = (float)(t % 17) * 0.05f - 0.4f;
        $PREFIX_step(&s, x, 0.1f, y);
        sink += y[0];
    }
    return 0;
}
"""

FLAGS = {"O2": ["-O2"], "O3-fast-v3": ["-O3", "-ffast-math", "-march=x86-64-v3"]}


def build(c_dir, prefix: str = "ltc_model", flags=("-O2",), exe=None, cc: str = "cc") -> Path:
    c_dir = Path(c_dir)
    exe = Path(exe) if exe else c_dir / f"{prefix}_step_bench"
    (c_dir / f"{prefix}_driver.c").write_text(DRIVER.replace("$PREFIX", prefix).replace("$UPPER", prefix.upper()))
    subprocess.run([cc, *flags, "-std=c99", "-I", str(c_dir), "-o", str(exe), str(c_dir / f"{prefix}_driver.c"),
                    str(c_dir / f"{prefix}.c")], check=True)
    return exe


def total_instructions(exe, steps: int, *args: str) -> int:
    """Callgrind's instruction total of `exe steps *args`; RuntimeError when the run fails."""
    with tempfile.TemporaryDirectory() as d:
        out = Path(d) / "cg.out"
        r = subprocess.run(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", str(exe), str(steps),
                            *args], capture_output=True, text=True)
        if r.returncode != 0 or not out.exists():
            raise RuntimeError(f"callgrind failed: {r.stderr.strip()[-300:]}")
        for line in out.read_text().splitlines():
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise RuntimeError("no callgrind totals")


def differenced(exe, n: int, *args: str) -> dict:
    """Instructions of one steady-state step of a program `exe STEPS *args` that runs STEPS steps:
    {"per_step": (Ir(2n) - Ir(n)) / n, "steps_n", "total_n", "total_2n"}."""
    if shutil.which("valgrind") is None:
        raise RuntimeError("valgrind is not installed")
    a, b = total_instructions(exe, n, *args), total_instructions(exe, 2 * n, *args)
    return {"per_step": (b - a) / n, "steps_n": n, "total_n": a, "total_2n": b}


def instructions_per_step(c_dir, prefix: str = "ltc_model", flags=("-O2",), n: int = 500) -> float:
    """Callgrind instructions of one steady-state step: (Ir(2n) - Ir(n)) / n."""
    return differenced(build(c_dir, prefix, list(flags)), n)["per_step"]


def text_bytes(c_dir, prefix: str = "ltc_model", flags=("-O2",)) -> int:
    """x86 .text of the model's object file (code + constants)."""
    obj = Path(c_dir) / f"{prefix}.o"
    subprocess.run(["cc", *flags, "-std=c99", "-c", "-o", str(obj), str(Path(c_dir) / f"{prefix}.c")], check=True)
    out = subprocess.run(["size", str(obj)], capture_output=True, text=True, check=True).stdout
    return int(out.splitlines()[1].split()[0])


def issue13_models():
    """{name: (config, raw)}: ncps LTCCell(AutoNCP(19, 2, seed=22222), 8 inputs), the fully
    connected LTC-19 of the same sizes, and an LSTM-19 beside them."""
    import torch
    from ncps.torch import LTCCell
    from ncps.wirings import AutoNCP, FullyConnected

    from ltc_edge.nn import build_model, from_ncps

    torch.manual_seed(0)
    models = {"ltc_ncp19": from_ncps(LTCCell(AutoNCP(19, 2, seed=22222), in_features=8)),
              "ltc_full19": from_ncps(LTCCell(FullyConnected(19, 2), in_features=8)),
              "lstm19": build_model("lstm", 8, units=19, output_size=2, seed=0)}
    return {k: (m.config, {n: v.detach().numpy() for n, v in m.state_dict().items()}) for k, m in models.items()}


def main():
    from ltc_edge.codegen import c as cgen

    for name, (config, raw) in issue13_models().items():
        for unroll in ("on", "off") if config["cell"]["kind"] == "ltc" else ("off",):
            with tempfile.TemporaryDirectory() as d:
                gen = cgen.generate(config, raw, unroll=unroll)
                for f, text in gen["files"].items():
                    (Path(d) / f).write_text(text)
                res = {k: instructions_per_step(d, flags=f) for k, f in FLAGS.items()}
                size = text_bytes(d)
            info = gen["info"]
            syn = f" {info['synapses']}+{info['sensory_synapses']} synapses" if "synapses" in info else ""
            print(f"{name:11s} unroll={unroll:3s}{syn}: " + ", ".join(f"{k} {v:,.0f}" for k, v in res.items())
                  + f" instructions/step; .text {size} B (-O2)", flush=True)


if __name__ == "__main__":
    main()
