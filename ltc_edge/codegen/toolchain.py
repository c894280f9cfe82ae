"""The host toolchain and the golden-test harness of the generated C: the project's compiler
flags (CFLAGS), finding a compiler, compiling a shared library atomically, and the golden data
header for the firmware harnesses in ltc_edge/codegen/firmware/.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from ltc_edge.codegen.cliterals import CodegenError, c_array, c_identifier, c_text, flit
from ltc_edge.fileio import set_umask_mode

# the project's flags; the generated code is also clean under these warnings (tested)
CFLAGS = ["-O2", "-std=c99", "-Wall", "-Wextra", "-Werror", "-pedantic", "-Wconversion", "-Wdouble-promotion"]

FIRMWARE = Path(__file__).with_name("firmware")  # golden-test harnesses, host and Cortex-M platforms


def golden_header(prefix: str, xs, dts, ys, *, tol: float = 1e-4, timing_steps: int = 200, source: str = "") -> str:
    """golden_data.h for firmware/golden_main.c: inputs, dts and the reference outputs."""
    prefix = c_identifier(prefix)
    xs, dts, ys = (np.asarray(a, dtype=np.float32) for a in (xs, dts, ys))
    steps = len(xs)
    return (f"/* golden data: {steps} steps of {c_text(source) or 'the reference model'} */\n"
            f'#include "{prefix}.h"\n'
            f"#define GOLDEN_STEPS {steps}\n#ifndef GOLDEN_TIMING_STEPS\n#define GOLDEN_TIMING_STEPS {int(timing_steps)}\n#endif\n"
            f"#define GOLDEN_OUTPUTS {ys.shape[1]}\n#define GOLDEN_TOL {flit(tol)}\n"
            f"#define GOLDEN_STATE_T {prefix}_state_t\n#define GOLDEN_STEP {prefix}_step\n"
            f"#define GOLDEN_RESET {prefix}_reset\n"
            f"static const float golden_x[{steps}][{xs.shape[1]}] = {c_array(xs)};\n"
            f"static const float golden_dt[{steps}] = {c_array(dts)};\n"
            f"static const float golden_y[{steps}][{ys.shape[1]}] = {c_array(ys)};\n")




def find_cc() -> str | None:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    return None


def compile_library(c_file, lib_file=None, *, cc: str | None = None, flags=None, libs=()) -> Path:
    """Compile a generated .c into a shared library (atomically); returns its path. libs: linker
    arguments after the source (e.g. -lm)."""
    c_file = Path(c_file)
    cc = cc or find_cc()
    if cc is None:
        raise CodegenError("no C compiler found (set CC, or install gcc)")
    lib_file = Path(lib_file) if lib_file else c_file.with_name(f"lib{c_file.stem}.so")
    flags = list(CFLAGS if flags is None else flags)
    fd, tmp = tempfile.mkstemp(prefix=f".{lib_file.name}.", suffix=".tmp", dir=lib_file.parent)
    os.close(fd)
    try:
        r = subprocess.run([cc, *flags, "-shared", "-fPIC", "-o", tmp, str(c_file), *libs],
                           capture_output=True, text=True)
        if r.returncode != 0:
            first = (r.stderr.strip().splitlines() or ["?"])[0]
            raise CodegenError(f"compiling {c_file.name} failed: {first}")
        set_umask_mode(tmp)
        os.replace(tmp, lib_file)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return lib_file
