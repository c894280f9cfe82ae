"""Firmware-facing parts of the C export: the stack use of the step (host compiler,
-fstack-usage + -fcallgraph-info), golden vectors, and the folder layouts

  flat     <prefix>.h, <prefix>.c (+ lib<prefix>.so): what `ltc export --format c` always wrote
  cmake    the same sources + CMakeLists.txt (a static library target `<prefix>`, a golden test
           run by ctest), cmake/arm-none-eabi.cmake (Cortex-M4F toolchain file) and the golden
           harness (golden/: main, its shared header golden_harness.h, host platform, Cortex-M
           startup/semihosting/linker script for a Cortex-M4 under qemu mps2-an386)
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

from ..codegen import c as cgen

LAYOUTS = ("flat", "cmake", "arduino")
GOLDEN_STEPS = 64

# role -> path in the folder, per layout ({p} = prefix); header and source first
FILE_ROLES = {
    "flat": {"header": "{p}.h", "source": "{p}.c"},
    "cmake": {"header": "{p}.h", "source": "{p}.c", "cmake": "CMakeLists.txt",
              "cmake_toolchain": "cmake/arm-none-eabi.cmake", "golden_data": "golden/golden_data.h",
              "golden_main": "golden/golden_main.c", "golden_harness": "golden/golden_harness.h",
              "golden_platform_host": "golden/platform_host.c",
              "golden_platform_m4": "golden/cortex_m4/platform_m4.c",
              "golden_startup_m4": "golden/cortex_m4/startup_m4.c",
              "golden_linker_m4": "golden/cortex_m4/mps2_an386.ld"},
    "arduino": {"header": "src/{p}.h", "source": "src/{p}.c", "arduino_properties": "library.properties",
                "arduino_example": "examples/{p}_demo/{p}_demo.ino"},
}


def check_layout(layout: str) -> str:
    if layout not in LAYOUTS:
        raise cgen.CodegenError(f"unknown C layout {layout!r}; choose one of {', '.join(LAYOUTS)}")
    return layout


def paths(layout: str, prefix: str) -> dict:
    return {role: p.format(p=prefix) for role, p in FILE_ROLES[layout].items()}


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


def write_layout(folder: Path, layout: str, prefix: str, gen_files: dict, golden=None, version: str = "") -> dict:
    """Write the layout's files into folder; {role: path}."""
    where = paths(layout, prefix)
    texts = {"header": gen_files[f"{prefix}.h"], "source": gen_files[f"{prefix}.c"]}
    if layout == "cmake":
        fw = cgen.FIRMWARE
        texts.update({"cmake": CMAKE.replace("@P@", prefix).replace("@UP@", prefix.upper()),
                      "cmake_toolchain": TOOLCHAIN,
                      "golden_data": cgen.golden_header(prefix, *golden, source="the torch model (export drift check)"),
                      "golden_main": (fw / "golden_main.c").read_text(),
                      "golden_harness": (fw / "golden_harness.h").read_text(),
                      "golden_platform_host": (fw / "platform_linux.c").read_text(),
                      "golden_platform_m4": (fw / "cortex_m" / "platform_cm.c").read_text(),
                      "golden_startup_m4": (fw / "cortex_m" / "startup_cm.c").read_text(),
                      "golden_linker_m4": (fw / "cortex_m" / "mps2.ld").read_text()})
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
#       (the golden test then runs on a Cortex-M4 under qemu-system-arm -M mps2-an386)
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

if(CMAKE_SOURCE_DIR STREQUAL CMAKE_CURRENT_SOURCE_DIR)
  option(@UP@_GOLDEN_TEST "build the golden test (reference inputs/outputs of the exported model)" ON)
else()
  option(@UP@_GOLDEN_TEST "build the golden test (reference inputs/outputs of the exported model)" OFF)
endif()
if(@UP@_GOLDEN_TEST)
  enable_testing()
  set(G ${CMAKE_CURRENT_SOURCE_DIR}/golden)
  if(CMAKE_SYSTEM_PROCESSOR STREQUAL "cortex-m4")
    add_executable(@P@_golden ${G}/golden_main.c ${G}/cortex_m4/platform_m4.c ${G}/cortex_m4/startup_m4.c)
    target_compile_definitions(@P@_golden PRIVATE PLATFORM_COUNT_SCALE=40u)  # SysTick 25 MHz: instructions
    target_link_options(@P@_golden PRIVATE -nostartfiles --specs=nosys.specs
                        -T${G}/cortex_m4/mps2_an386.ld -Wl,--gc-sections)
    find_program(@UP@_QEMU qemu-system-arm)
    if(@UP@_QEMU)
      add_test(NAME @P@_golden COMMAND ${@UP@_QEMU} -M mps2-an386 -nographic -monitor none -serial none
               -semihosting-config enable=on,target=native -icount shift=0 -kernel $<TARGET_FILE:@P@_golden>)
    endif()
  else()
    add_executable(@P@_golden ${G}/golden_main.c ${G}/platform_host.c)
    add_test(NAME @P@_golden COMMAND @P@_golden)
  endif()
  target_include_directories(@P@_golden PRIVATE ${G})
  target_link_libraries(@P@_golden PRIVATE @P@)
  set_tests_properties(@P@_golden PROPERTIES PASS_REGULAR_EXPRESSION "GOLDEN PASS" TIMEOUT 120)
endif()
"""

TOOLCHAIN = """# arm-none-eabi-gcc for a Cortex-M4 with a single-precision FPU (hard float).
#   cmake -B build-m4 -DCMAKE_TOOLCHAIN_FILE=cmake/arm-none-eabi.cmake
set(CMAKE_SYSTEM_NAME Generic)
set(CMAKE_SYSTEM_PROCESSOR cortex-m4)
set(CMAKE_C_COMPILER arm-none-eabi-gcc)
set(CMAKE_TRY_COMPILE_TARGET_TYPE STATIC_LIBRARY)
set(CMAKE_C_FLAGS_INIT "-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 -ffunction-sections -fdata-sections")
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
