"""Firmware-facing parts of the C export: the stack use of the step (host compiler,
-fstack-usage + -fcallgraph-info), golden vectors, and the folder layouts

  flat     <prefix>.h, <prefix>.c (+ lib<prefix>.so): what `ltc export --format c` always wrote
  cmake    the same sources + CMakeLists.txt (a static library target `<prefix>`, a golden test
           run by ctest), toolchain files cmake/arm-none-eabi.cmake (Cortex-M4F),
           cmake/cortex-m0.cmake, cmake/cortex-m3.cmake, and the golden harness (golden/: main,
           its shared header golden_harness.h, host platform, Cortex-M startup/semihosting/linker
           scripts: the test runs under qemu-system-arm, microbit for the M0, mps2-an385/an386
           for the M3/M4). fp32: reference outputs of the torch model; int8: the integer step's
           inputs and the outputs of the host build of the same C (every core must match them
           bit for bit), and an option <PREFIX>_INTEGER_ONLY (on for the M0/M3)
  arduino  an Arduino library: library.properties, src/<prefix>.h, src/<prefix>.c,
           examples/<prefix>_demo/<prefix>_demo.ino

Every file goes into the manifest under its role (FILE_ROLES), sha256 and all.
"""

from __future__ import annotations

import platform
import re
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from .. import precision as precisions
from ..codegen import c as cgen

LAYOUTS = ("flat", "cmake", "arduino")
GOLDEN_STEPS = 64

# role -> path in the folder, per layout ({p} = prefix); header and source first. The role names
# "*_m4" predate the M0/M3 targets: the files serve every Cortex-M core.
FILE_ROLES = {
    "flat": {"header": "{p}.h", "source": "{p}.c"},
    "cmake": {"header": "{p}.h", "source": "{p}.c", "cmake": "CMakeLists.txt",
              "cmake_toolchain": "cmake/arm-none-eabi.cmake", "cmake_toolchain_m0": "cmake/cortex-m0.cmake",
              "cmake_toolchain_m3": "cmake/cortex-m3.cmake", "golden_data": "golden/golden_data.h",
              "golden_main": "golden/golden_main.c", "golden_harness": "golden/golden_harness.h",
              "golden_platform_host": "golden/platform_host.c",
              "golden_platform_m4": "golden/cortex_m/platform_cm.c",
              "golden_startup_m4": "golden/cortex_m/startup_cm.c",
              "golden_linker_m4": "golden/cortex_m/mps2.ld", "golden_linker_m0": "golden/cortex_m/microbit.ld"},
    "arduino": {"header": "src/{p}.h", "source": "src/{p}.c", "arduino_properties": "library.properties",
                "arduino_example": "examples/{p}_demo/{p}_demo.ino"},
}
# toolchain role -> (CMAKE_SYSTEM_PROCESSOR, what, float flags)
CORES = {"cmake_toolchain": ("cortex-m4", "a Cortex-M4 with a single-precision FPU (hard float)",
                             "-mfloat-abi=hard -mfpu=fpv4-sp-d16"),
         "cmake_toolchain_m0": ("cortex-m0", "a Cortex-M0 (no FPU: soft float; int8: integer-only)", "-mfloat-abi=soft"),
         "cmake_toolchain_m3": ("cortex-m3", "a Cortex-M3 (no FPU: soft float; int8: integer-only)", "-mfloat-abi=soft")}


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise cgen.CodegenError(f"unknown C layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    return layout


def paths(layout: str, prefix: str, precision: str = "fp32") -> dict:
    roles = {**FILE_ROLES[layout], **precisions.file_roles(precision, "c", layout)}  # int8 cmake: its golden files
    return {role: p.format(p=prefix) for role, p in roles.items()}


# --------------------------------------------------------------------------------------
# stack use (host)


def stack_usage(c_file: Path, prefix: str, cc: str | None) -> dict:
    """{"<prefix>_step": bytes, ...}: the deepest call chain from each exported function
    through the model's own code (frames from gcc -fstack-usage, edges from
    -fcallgraph-info=su); calls into libm are not counted. Host compiler, project flags."""
    if cc is None:
        return {"skipped": "no host C compiler"}
    with tempfile.TemporaryDirectory() as d:
        obj = Path(d) / "model.o"
        r = subprocess.run([cc, *cgen.CFLAGS, "-fstack-usage", "-fcallgraph-info=su", "-c", str(c_file),
                            "-o", str(obj)], capture_output=True, text=True, cwd=d)
        ci = obj.with_suffix(".ci")
        if r.returncode != 0 or not ci.exists():
            return {"skipped": f"{Path(cc).name} has no -fstack-usage / -fcallgraph-info (gcc >= 10 has)"}
        frames, edges = _callgraph(ci.read_text())
    out = {}
    for name in sorted(frames):
        if name.startswith(f"{prefix}_"):
            out[name] = _deepest(name, frames, edges, ())
    return out


def _callgraph(text: str):
    frames, edges = {}, {}
    for title, label in re.findall(r'node: \{ title: "([^"]+)" label: "([^"]*)"', text):
        m = re.search(r"\\n(\d+) bytes", label)
        frames[title] = int(m.group(1)) if m else 0  # external (libm): not counted
    for src, dst in re.findall(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"', text):
        edges.setdefault(src, set()).add(dst)
    return frames, edges


def _deepest(node, frames, edges, seen) -> int:
    if node in seen:  # recursion: the generated code has none; do not loop
        return 0
    return frames.get(node, 0) + max((_deepest(c, frames, edges, seen + (node,)) for c in edges.get(node, ())),
                                     default=0)


def stack_note(cc: str | None) -> str:
    return (f"host {platform.machine()} {Path(cc or 'cc').name} {' '.join(cgen.CFLAGS)}: bytes of the deepest "
            "call chain through the model's code (-fstack-usage frames; libm calls not counted); "
            "a Cortex-M build differs (benchmarks/arm.py measures it)")


# --------------------------------------------------------------------------------------
# golden vectors and layouts


def golden_vectors(runner, n_in: int, state_size: int, fixed_dt, steps: int = GOLDEN_STEPS, seed: int = 0):
    """(xs, dts, ys) of `steps` steps of the reference runner (x, state, dt) -> (y, state)."""
    rng = np.random.default_rng(seed)
    xs = rng.standard_normal((steps, n_in)).astype(np.float32)
    dts = (np.full(steps, fixed_dt) if fixed_dt is not None else rng.uniform(0.05, 1.0, steps)).astype(np.float32)
    h = np.zeros((1, state_size), np.float32)
    ys = []
    for x, dt in zip(xs, dts):
        y, h = runner(x[None], h, np.full((1, 1), dt, np.float32))
        ys.append(np.asarray(y, np.float32)[0])
    return xs, dts, np.stack(ys)


def golden_int(gen: dict, prefix: str, x, n_out: int, n_state: int, cc: str | None) -> str:
    """golden_int_data.h of the int8 cmake layout: the first GOLDEN_STEPS rows of x (raw inputs)
    in the step's input formats and the outputs of the host build of the same C."""
    from ..codegen import int8

    if cc is None:
        raise cgen.CodegenError("the int8 cmake layout's golden outputs come from a host build of the C: "
                                "no C compiler found (set CC, or install gcc), or use --layout flat")
    xq = int8.quantize_inputs(np.asarray(x, np.float64)[:GOLDEN_STEPS], gen["info"]["quantization"]["input_frac_bits"])
    with tempfile.TemporaryDirectory() as d:
        for name, text in gen["files"].items():
            (Path(d) / name).write_text(text)
        lib = cgen.compile_library(Path(d) / f"{prefix}.c", Path(d) / f"lib{prefix}.so", cc=cc)
        yq = int8.host_step_q(lib, prefix, xq, n_out, n_state)
    return int8.golden_header(prefix, xq, yq, source="the host build of the same C at export")


def write_layout(folder: Path, layout: str, prefix: str, gen_files: dict, golden: str | None = None,
                 version: str = "", precision: str = "fp32") -> dict:
    """Write the layout's files into folder; {role: path}. golden: the cmake layout's golden data
    header (fp32: cgen.golden_header of golden_vectors; int8: golden_int)."""
    where = paths(layout, prefix, precision)
    texts = {"header": gen_files[f"{prefix}.h"], "source": gen_files[f"{prefix}.c"]}
    if layout == "cmake":
        fw, integer = cgen.FIRMWARE, precisions.integer_c(precision)
        texts.update({role: TOOLCHAIN.format(cpu=cpu, what=what, fpu=fpu, file=Path(where[role]).name)
                      for role, (cpu, what, fpu) in CORES.items()})
        texts.update({"cmake": CMAKE.replace("@MAIN@", Path(where["golden_main"]).name)
                      .replace("@INTEGER_ONLY@", INTEGER_ONLY if integer else "")
                      .replace("@P@", prefix).replace("@UP@", prefix.upper()),
                      "golden_data": golden,
                      "golden_main": (fw / Path(where["golden_main"]).name).read_text(),  # the precision's harness
                      "golden_harness": (fw / "golden_harness.h").read_text(),
                      "golden_platform_host": (fw / "platform_linux.c").read_text(),
                      "golden_platform_m4": (fw / "cortex_m" / "platform_cm.c").read_text(),
                      "golden_startup_m4": (fw / "cortex_m" / "startup_cm.c").read_text(),
                      "golden_linker_m4": (fw / "cortex_m" / "mps2.ld").read_text(),
                      "golden_linker_m0": (fw / "cortex_m" / "microbit.ld").read_text()})
    elif layout == "arduino":
        texts["arduino_properties"] = ARDUINO_PROPERTIES.format(p=prefix, v=version or "0.0.0")
        texts["arduino_example"] = ARDUINO_DEMO.replace("@P@", prefix).replace("@UP@", prefix.upper())
    out = {}
    for role, rel in where.items():
        path = folder / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(texts[role])
        out[role] = path
    return out


CMAKE = """# Generated by ltc-edge: the model as a static library target `@P@`, and a golden test.
#   cmake -B build && cmake --build build && ctest --test-dir build
#   cmake -B build-m4 -DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi.cmake && cmake --build build-m4
#       (then ctest runs the golden test on a Cortex-M4 under qemu-system-arm -M mps2-an386;
#       cmake/cortex-m0.cmake: a Cortex-M0 under -M microbit, cmake/cortex-m3.cmake: a Cortex-M3
#       under -M mps2-an385)
# In your firmware: add_subdirectory(<this folder>) and target_link_libraries(app PRIVATE @P@).
cmake_minimum_required(VERSION 3.13)
project(@P@ C)
set(CMAKE_C_STANDARD 99)
set(CMAKE_C_STANDARD_REQUIRED ON)
set(CMAKE_C_EXTENSIONS OFF)
if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release)
endif()

add_library(@P@ STATIC @P@.c)
target_include_directories(@P@ PUBLIC ${CMAKE_CURRENT_SOURCE_DIR})
if(CMAKE_C_COMPILER_ID MATCHES "GNU|Clang")
  target_compile_options(@P@ PRIVATE -Wall -Wextra -pedantic)
endif()
if(NOT MSVC)
  target_link_libraries(@P@ PUBLIC m)  # libm (glibc, newlib)
endif()
@INTEGER_ONLY@
if(CMAKE_SOURCE_DIR STREQUAL CMAKE_CURRENT_SOURCE_DIR)
  option(@UP@_GOLDEN_TEST "build the golden test (reference inputs/outputs of the exported model)" ON)
else()
  option(@UP@_GOLDEN_TEST "build the golden test (reference inputs/outputs of the exported model)" OFF)
endif()
if(@UP@_GOLDEN_TEST)
  enable_testing()
  set(G ${CMAKE_CURRENT_SOURCE_DIR}/golden)
  # a bare-metal core: its qemu board, linker script and SysTick clock (instructions per tick
  # under -icount shift=0; the microbit's 16 MHz gives 62.5: the harness prints SysTick ticks)
  set(@UP@_BOARD "")
  if(CMAKE_SYSTEM_PROCESSOR STREQUAL "cortex-m0")
    set(@UP@_BOARD microbit)
    set(@UP@_LD microbit.ld)
    set(@UP@_SCALE "")
  elseif(CMAKE_SYSTEM_PROCESSOR STREQUAL "cortex-m3")
    set(@UP@_BOARD mps2-an385)
    set(@UP@_LD mps2.ld)
    set(@UP@_SCALE PLATFORM_COUNT_SCALE=40u)
  elseif(CMAKE_SYSTEM_PROCESSOR STREQUAL "cortex-m4")
    set(@UP@_BOARD mps2-an386)
    set(@UP@_LD mps2.ld)
    set(@UP@_SCALE PLATFORM_COUNT_SCALE=40u)
  endif()
  if(@UP@_BOARD)
    add_executable(@P@_golden ${G}/@MAIN@ ${G}/cortex_m/platform_cm.c ${G}/cortex_m/startup_cm.c)
    if(@UP@_SCALE)
      target_compile_definitions(@P@_golden PRIVATE ${@UP@_SCALE})  # SysTick 25 MHz: instructions
    endif()
    target_link_options(@P@_golden PRIVATE -nostartfiles --specs=nosys.specs
                        -T${G}/cortex_m/${@UP@_LD} -Wl,--gc-sections)
    find_program(@UP@_QEMU qemu-system-arm)
    if(@UP@_QEMU)
      add_test(NAME @P@_golden COMMAND ${@UP@_QEMU} -M ${@UP@_BOARD} -nographic -monitor none -serial none
               -semihosting-config enable=on,target=native -icount shift=0 -kernel $<TARGET_FILE:@P@_golden>)
    endif()
  else()
    add_executable(@P@_golden ${G}/@MAIN@ ${G}/platform_host.c)
    add_test(NAME @P@_golden COMMAND @P@_golden)
  endif()
  target_include_directories(@P@_golden PRIVATE ${G})
  target_link_libraries(@P@_golden PRIVATE @P@)
  set_tests_properties(@P@_golden PROPERTIES PASS_REGULAR_EXPRESSION "GOLDEN PASS" TIMEOUT 120)
endif()
"""

INTEGER_ONLY = """
# the integer-only build (no float function, no soft-float helper): on by default for a core
# without an FPU (Cortex-M0/M0+/M3) or with -DLTC_MODEL_INTEGER_ONLY=ON (the documented switch,
# whatever the prefix); the golden test then checks the integer step bit for bit
if(CMAKE_SYSTEM_PROCESSOR MATCHES "^cortex-m(0|0plus|3)$" OR LTC_MODEL_INTEGER_ONLY)
  set(@UP@_NO_FPU ON)
else()
  set(@UP@_NO_FPU OFF)
endif()
option(@UP@_INTEGER_ONLY "integer-only build (for a core without an FPU)" ${@UP@_NO_FPU})
if(@UP@_INTEGER_ONLY)
  target_compile_definitions(@P@ PUBLIC @UP@_INTEGER_ONLY)
endif()
"""

TOOLCHAIN = """# arm-none-eabi-gcc for {what}.
#   cmake -B build-{cpu} -DCMAKE_TOOLCHAIN_FILE=cmake/{file}
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR {cpu})
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_C_FLAGS_INIT "-mcpu={cpu} -mthumb {fpu} -ffunction-sections -fdata-sections")
set(CMAKE_C_FLAGS_RELEASE_INIT "-O2")
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
"""

ARDUINO_PROPERTIES = """name={p}
version={v}
author=ltc-edge export
maintainer=ltc-edge export
sentence=The {p} model exported by ltc-edge: one control step in C99, no malloc.
paragraph=See src/{p}.h for the inputs, outputs, training dt, state bounds and the model sha256.
category=Data Processing
url=https://github.com/
architectures=*
includes={p}.h
"""

ARDUINO_DEMO = """/* @P@ demo: steps the exported model once per loop and prints its outputs. */
#include <@P@.h>

static @P@_state_t state;

void setup()
{
  Serial.begin(115200);
  @P@_reset(&state);
}

void loop()
{
  float x[@UP@_INPUTS] = {0};  /* read your sensors here, in raw units (see @P@.h) */
  float y[@UP@_OUTPUTS];
  int i;
  /* dt: the time since the last step, in the training data's time unit (DEFAULT_DT: its median) */
  @P@_step(&state, x, @UP@_DEFAULT_DT, y);
  for (i = 0; i < @UP@_OUTPUTS; ++i) {
    Serial.print(@P@_output_names[i]);
    Serial.print('=');
    Serial.println(y[i], 6);
  }
  delay(100);
}
"""
