"""An outside anchor (issue 24 item 2), the route a user would take instead of this project's C:
TensorFlow Lite for Microcontrollers on the same emulated Cortex-M4 as the project's rows, with
the same harness.

TFLite-Micro is not part of this repository: pass checkouts of the public repositories it builds
from (compiled from there, never copied here): --tflm DIR (tensorflow/tflite-micro), --flatbuffers
DIR (google/flatbuffers at the version TFLM's schema_generated.h names), --gemmlowp DIR
(google/gemmlowp), --ruy DIR (google/ruy); optional --cmsis-nn DIR (ARM-software/CMSIS-NN): with
it TFLM's CMSIS-NN kernels (kernels/cmsis_nn/: FULLY_CONNECTED, ADD, MUL,
UNIDIRECTIONAL_SEQUENCE_LSTM ...), without it the reference kernels; the JSON says which.

What runs, each one Invoke per step (no TFLM Makefile: its downloads need the internet; the
sources a model needs are listed below and compiled by this script into a temp folder):
  (a) this project's own `ltc export MODEL --format tflite --precision int8-tflm --fixed-dt 1`
      of the LTC-NCP-19 and of the LSTM-19 (benchmarks/c_models.py, 8 inputs, seed 0),
      calibrated on the inputs below; float32 x and state in, the new state copied back into the
      state input after each Invoke (the graph is stateless).
  (b) TFLite's own int8 LSTM op, UNIDIRECTIONAL_SEQUENCE_LSTM (int8x8_16: int8 input, hidden
      state and weights, int16 cell, int32 bias), one time step per Invoke, the state kept in its
      variable tensors: the LSTM-19's weights quantised as benchmarks/cmsis_nn_lstm.py does,
      written as a .tflite with the flatbuffers object API of ai_edge_litert's schema (no
      TensorFlow: the file is built tensor by tensor, not converted).
Inputs: standard normal, seed 0, 100 steps (as cortex_m.prepare_int8 and the CMSIS-NN script).

Same harness as ltc_edge.bench.arm.cortex_m: arm-none-eabi-g++/gcc -mcpu=cortex-m4 -mthumb
-mfpu=fpv4-sp-d16 -mfloat-abi=hard -O2 (TFLM's own flags: -std=c++17 -fno-rtti -fno-exceptions
-DTF_LITE_STATIC_MEMORY, its `release` build: -DNDEBUG -DTF_LITE_STRIP_ERROR_STRINGS), the
project's start-up, linker script and golden_harness.h; qemu-system-arm -M mps2-an386 -icount
shift=0, SysTick instructions of N and 2N Invokes differenced; the cycle estimate of
ltc_edge/bench/arm/cycles.py; flash: a probe firmware (set-up + one Invoke) minus the same firmware
without TFLM and the model (arm-none-eabi-size: TFLM's interpreter, allocator, the kernels of the
model's ops, the .tflite); RAM: the tensor arena actually used (MicroInterpreter::
arena_used_bytes) + TFLM's own .data/.bss (the interpreter and op resolver objects included, the
arena's unused rest not) + the stack high-water mark of one Invoke.

Correctness: every step's outputs on the M4 (the raw bits of each output tensor) against the host's
TFLite interpreter (ai_edge_litert) and the host's TFLite-Micro (the tflite-micro Python package,
reference kernels) on the same .tflite and the same inputs: float outputs in absolute error,
int8 outputs in LSBs.

The project's own rows of the same models (its C: int8, fp32 FPv4, fp32 portable) are measured in
the same run (ltc_edge.bench.arm.cortex_m.measure).

    .venv/bin/python benchmarks/tflm_m4.py --tflm DIR --flatbuffers DIR --gemmlowp DIR --ruy DIR \\
        [--cmsis-nn DIR] [--out OUT.json] [--no-project] [--build DIR]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

from ltc_edge import fileio  # noqa: E402
from ltc_edge.bench.arm import cortex_m as CM  # noqa: E402
from ltc_edge.bench.arm import cycles  # noqa: E402
from ltc_edge.errors import LtcEdgeError  # noqa: E402

import cmsis_nn_lstm as CN  # noqa: E402

TARGET = "cortex-m4"
INPUTS, STEPS, TIMING_STEPS = 8, 100, 20
MICRO = "tensorflow/lite/micro"
ARCH = CM.TARGETS[TARGET]["cflags"]
COMMON = [*ARCH, "-O2", "-ffunction-sections", "-fdata-sections", "-fno-unwind-tables",
          "-fno-asynchronous-unwind-tables", "-fsigned-char", "-DTF_LITE_STATIC_MEMORY", "-DTF_LITE_DISABLE_X86_NEON",
          "-DNDEBUG", "-DTF_LITE_STRIP_ERROR_STRINGS", "-DARM_NN_ENABLE_F16=0", "-DARM_NN_ENABLE_F32=0"]
CXXFLAGS = ["-std=c++17", "-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics"]
# the interpreter, allocator, planner and the TFLite code they share (TFLM's sources.inc, less tests)
CORE = [f"{MICRO}/{n}.cc" for n in (
    "debug_log", "flatbuffer_utils", "memory_helpers", "micro_allocation_info", "micro_allocator", "micro_context",
    "micro_interpreter", "micro_interpreter_context", "micro_interpreter_graph", "micro_log", "micro_op_resolver",
    "micro_profiler", "micro_resource_variable", "micro_time", "micro_utils", "system_setup",
    "arena_allocator/non_persistent_arena_buffer_allocator", "arena_allocator/persistent_arena_buffer_allocator",
    "arena_allocator/single_arena_buffer_allocator", "memory_planner/greedy_memory_planner",
    "memory_planner/linear_memory_planner", "memory_planner/non_persistent_buffer_planner_shim",
    "tflite_bridge/flatbuffer_conversions_bridge", "tflite_bridge/micro_error_reporter",
    "kernels/kernel_util", "kernels/micro_tensor_utils")] + [
    "tensorflow/compiler/mlir/lite/core/api/error_reporter.cc", "tensorflow/compiler/mlir/lite/schema/schema_utils.cc",
    "tensorflow/lite/core/api/flatbuffer_conversions.cc", "tensorflow/lite/core/api/tensor_utils.cc",
    "tensorflow/lite/core/c/common.cc", "tensorflow/lite/kernels/internal/common.cc",
    "tensorflow/lite/kernels/internal/portable_tensor_utils.cc", "tensorflow/lite/kernels/internal/quantization_util.cc",
    "tensorflow/lite/kernels/internal/reference/portable_tensor_utils.cc",
    "tensorflow/lite/kernels/internal/runtime_shape.cc", "tensorflow/lite/kernels/internal/tensor_ctypes.cc",
    "tensorflow/lite/kernels/internal/tensor_utils.cc", "tensorflow/lite/kernels/kernel_util.cc"]
# op -> (MicroMutableOpResolver method, kernel sources under kernels/; a name TFLM also has in
# kernels/cmsis_nn/ is taken from there when --cmsis-nn is given)
OPS = {"ADD": ("AddAdd", ["add", "add_common"]), "MUL": ("AddMul", ["mul", "mul_common"]),
       "SUB": ("AddSub", ["sub", "sub_common"]), "DIV": ("AddDiv", ["div"]),
       "FULLY_CONNECTED": ("AddFullyConnected", ["fully_connected", "fully_connected_common"]),
       "LOGISTIC": ("AddLogistic", ["logistic", "logistic_common"]), "TANH": ("AddTanh", ["tanh"]),
       "DEQUANTIZE": ("AddDequantize", ["dequantize", "dequantize_common"]),
       "QUANTIZE": ("AddQuantize", ["quantize", "quantize_common"]),
       "CONCATENATION": ("AddConcatenation", ["concatenation"]), "SLICE": ("AddSlice", ["slice"]),
       "RESHAPE": ("AddReshape", ["reshape", "reshape_common"]),
       "UNIDIRECTIONAL_SEQUENCE_LSTM": ("AddUnidirectionalSequenceLSTM",
                                        ["unidirectional_sequence_lstm", "lstm_eval", "lstm_eval_common",
                                         "fully_connected_common"])}  # lstm_eval_common's FC parameters
# the CMSIS-NN source folders TFLM's kernels of OPS call into (TFLM compiles all of Source/; the
# linker keeps the same functions either way)
CMSIS_NN_DIRS = ("ActivationFunctions", "BasicMathFunctions", "ConvolutionFunctions", "FullyConnectedFunctions",
                 "LSTMFunctions", "NNSupportFunctions")  # FULLY_CONNECTED int8 may call arm_convolve_1x1_s8_fast
CPP_TYPES = {np.float32: 4, np.int8: 1, np.int16: 2, np.int32: 4}


def check_sources(a) -> dict:
    """{name: Path} of the checkouts, or a one-line reason (str) why they do not fit."""
    need = {"tflm": (a.tflm, f"{MICRO}/micro_interpreter.h", "tensorflow/tflite-micro"),
            "flatbuffers": (a.flatbuffers, "include/flatbuffers/base.h", "google/flatbuffers"),
            "gemmlowp": (a.gemmlowp, "fixedpoint/fixedpoint.h", "google/gemmlowp"),
            "ruy": (a.ruy, "ruy/profiler/instrumentation.h", "google/ruy")}
    if a.cmsis_nn:
        need["cmsis_nn"] = (a.cmsis_nn, "Include/arm_nnfunctions.h", "ARM-software/CMSIS-NN")
    dirs = {}
    for name, (path, probe, repo) in need.items():
        d = Path(path).expanduser() if path else None
        if d is None or not (d / probe).is_file():
            return (f"--{name.replace('_', '-')} DIR must be a checkout of github.com/{repo} (with {probe}); "
                    f"got {path or 'none'}")
        dirs[name] = d.resolve()
    want = re.findall(r"FLATBUFFERS_VERSION_(MAJOR|MINOR|REVISION) == (\d+)",
                      (dirs["tflm"] / "tensorflow/lite/schema/schema_generated.h").read_text())
    have = dict(re.findall(r"#define FLATBUFFERS_VERSION_(MAJOR|MINOR|REVISION) (\d+)",
                           (dirs["flatbuffers"] / "include/flatbuffers/base.h").read_text()))
    if any(have.get(k) != v for k, v in want):
        return (f"--flatbuffers: TFLM's schema_generated.h needs flatbuffers {'.'.join(v for _, v in want)}, "
                f"the checkout is {'.'.join(have.get(k, '?') for k, _ in want)} (git checkout v{'.'.join(v for _, v in want)})")
    return dirs


# --------------------------------------------------------------------------------------
# the models: the project's int8-tflm exports and TFLite's int8 LSTM op


def project_exports(work: Path, x: np.ndarray) -> dict:
    """{name: (model file, .tflite bytes, manifest)} of the LTC-NCP-19 and LSTM-19, exported
    int8-tflm with dt fixed at 1, calibrated on x."""
    from c_models import model_files

    from ltc_edge.export import get_exporter

    files = model_files(work / "models")
    calib = work / "calibration.npz"
    np.savez(calib, x=x[None].astype(np.float32))
    out = {}
    for name in ("ncp19", "lstm19"):
        folder = work / f"tflite_{name}"
        manifest = get_exporter("tflite")(files[name], folder, precision="int8-tflm", calibration=str(calib),
                                          fixed_dt=1.0)
        out[name] = (files[name], (folder / "model.tflite").read_bytes(), manifest)
    return out


def _tensor(schema, name, shape, ttype, buffer, scale=None, zero_point=0, variable=False):
    t = schema.TensorT()
    t.name, t.shape, t.type, t.buffer, t.isVariable = name.encode(), list(shape), ttype, buffer, variable
    if scale is not None:
        t.quantization = schema.QuantizationParametersT()
        t.quantization.scale, t.quantization.zeroPoint = [float(scale)], [int(zero_point)]
    return t


def lstm_tflite(raw: dict, x: np.ndarray) -> tuple[bytes, dict]:
    """A .tflite of one UNIDIRECTIONAL_SEQUENCE_LSTM (int8x8_16, batch major, one time step per
    Invoke, the state in its variable tensors), the LSTM-19 quantised as cmsis_nn_lstm.quantize
    does; and that quantisation."""
    import flatbuffers
    from ai_edge_litert import schema_py_generated as S

    q = CN.quantize(raw, x)
    U, T = CN.UNITS, S.TensorType
    buffers, tensors = [S.BufferT()], []  # buffer 0: the empty one

    def add(name, shape, ttype, data=None, **quant):
        b = 0
        if data is not None:
            buffers.append(S.BufferT())
            buffers[-1].data = list(np.ascontiguousarray(data).tobytes())
            b = len(buffers) - 1
        tensors.append(_tensor(S, name, shape, ttype, b, **quant))
        return len(tensors) - 1

    s_x, s_h, s_c = q["s_x"], q["s_h"], 2.0 ** q["cell_power"]
    ins = [add("x", (1, 1, INPUTS), T.INT8, scale=s_x, zero_point=q["zp_x"])]
    gates = [q["gates"][g] for g in ("input", "forget", "cell", "output")]  # TFLite's order: i, f, c(g), o
    for part, s_in, n in (("input", s_x, INPUTS), ("hidden", s_h, U)):
        for g, name in zip(gates, "ifco"):
            ins.append(add(f"{part}_to_{name}_w", (U, n), T.INT8, g[f"{part}_w"],
                           scale=g[f"{part}_scale"] * 2.0 ** -12 / s_in))
    ins += [-1, -1, -1]  # no peepholes
    for g, name in zip(gates, "ifco"):
        w_scale = g["input_scale"] * 2.0 ** -12 / s_x
        ins.append(add(f"{name}_bias", (U,), T.INT32, g["bias"], scale=s_x * w_scale))
    ins += [-1, -1]  # no projection
    ins.append(add("hidden_state", (1, U), T.INT8, scale=s_h, zero_point=q["zp_h"], variable=True))
    ins.append(add("cell_state", (1, U), T.INT16, scale=s_c, variable=True))
    ins += [-1, -1, -1, -1]  # no layer norm
    # TFLite's integer kernel reads 5 intermediates' scales (the gates' 2^-12, unused without layer
    # norm; the hidden one, unused without projection); TFLM allocates none: zero elements
    inter = [add(f"gate_{k}", (0,), T.INT16, scale=2.0 ** -12) for k in range(4)]
    inter.append(add("hidden", (0,), T.INT8, scale=s_h, zero_point=q["zp_h"]))
    out = add("h", (1, 1, U), T.INT8, scale=s_h, zero_point=q["zp_h"])
    op = S.OperatorT()
    op.opcodeIndex, op.inputs, op.outputs, op.intermediates = 0, ins, [out], inter
    op.builtinOptionsType = S.BuiltinOptions.UnidirectionalSequenceLSTMOptions
    op.builtinOptions = S.UnidirectionalSequenceLSTMOptionsT()
    op.builtinOptions.fusedActivationFunction = S.ActivationFunctionType.TANH
    op.builtinOptions.cellClip = float(32767 * s_c)  # CMSIS-NN clamps the cell to +-clip: the whole int16 range
    op.builtinOptions.timeMajor = False
    code = S.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = S.BuiltinOperator.UNIDIRECTIONAL_SEQUENCE_LSTM
    code.version = 1
    sg = S.SubGraphT()
    sg.tensors, sg.inputs, sg.outputs, sg.operators, sg.name = tensors, [0], [out], [op], b"main"
    m = S.ModelT()
    m.version, m.operatorCodes, m.subgraphs, m.buffers, m.description = 3, [code], [sg], buffers, b"ltc-edge lstm19"
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output()), q


def io_specs(content: bytes) -> dict:
    """The main subgraph's inputs and outputs: [{name, dtype, size, scale, zero_point}] each, in
    TFLM's index order, and the op names the resolver needs."""
    from ai_edge_litert import schema_py_generated as S

    m = S.ModelT.InitFromPackedBuf(content, 0)
    sg = m.subgraphs[0]
    names = {v: k for k, v in vars(S.BuiltinOperator).items() if not k.startswith("_")}
    dtypes = {S.TensorType.FLOAT32: np.float32, S.TensorType.INT8: np.int8, S.TensorType.INT16: np.int16,
              S.TensorType.INT32: np.int32}

    signature = {}  # tensor index -> the serving signature's name (x, state, y, new_state)
    for sd in m.signatureDefs or []:
        signature.update({tm.tensorIndex: tm.name.decode() for tm in (sd.inputs or []) + (sd.outputs or [])})

    def spec(i):
        t = sg.tensors[i]
        qp = t.quantization
        return {"name": signature.get(i, t.name.decode()), "dtype": dtypes[t.type], "size": int(np.prod(t.shape)),
                "scale": float(qp.scale[0]) if qp is not None and qp.scale is not None and len(qp.scale) else None,
                "zero_point": int(qp.zeroPoint[0]) if qp is not None and qp.zeroPoint is not None and len(qp.zeroPoint)
                else 0}

    ops = sorted({names[max(c.builtinCode, c.deprecatedBuiltinCode)] for c in m.operatorCodes})
    return {"inputs": [spec(i) for i in sg.inputs], "outputs": [spec(i) for i in sg.outputs], "ops": ops}


# --------------------------------------------------------------------------------------
# the build: TFLM's sources (and CMSIS-NN's) compiled once into a library, the firmware per model


def kernel_sources(tflm: Path, ops, cmsis_nn: Path | None, reference=()) -> list[Path]:
    """The kernel sources of `ops`: CMSIS-NN's where TFLM has one (and cmsis_nn is given), unless
    the op is in `reference`."""
    kdir = tflm / MICRO / "kernels"
    out = []
    for op in ops:
        if op not in OPS:
            raise RuntimeError(f"this script has no kernel list for the op {op} (add it to OPS)")
        for name in OPS[op][1]:
            opt = kdir / "cmsis_nn" / f"{name}.cc"
            out.append(opt if cmsis_nn is not None and opt.is_file() and op not in reference else kdir / f"{name}.cc")
    return out


def includes(dirs: dict) -> list[str]:
    inc = [f"-I{dirs['tflm']}", f"-I{dirs['flatbuffers'] / 'include'}", f"-I{dirs['gemmlowp']}", f"-I{dirs['ruy']}"]
    if "cmsis_nn" in dirs:
        inc += [f"-I{dirs['cmsis_nn']}", f"-I{dirs['cmsis_nn'] / 'Include'}", "-DCMSIS_NN"]
    return inc


def compile_library(dirs: dict, ops, build: Path, reference=()) -> Path:
    """libtflm.a in build: TFLM's core, the kernels of `ops` (and CMSIS-NN's int sources), each
    object cached in build/obj by a hash of its path and flags (a kept --build folder rebuilds
    nothing). `reference`: ops to take from the reference kernels all the same."""
    cmsis_nn = dirs.get("cmsis_nn")
    sources = [dirs["tflm"] / s for s in CORE] + kernel_sources(dirs["tflm"], ops, cmsis_nn, reference)
    if cmsis_nn is not None:
        sources += sorted(p for d in CMSIS_NN_DIRS for p in (cmsis_nn / "Source" / d).glob("*.c")
                          if not re.search(r"_f(16|32)\.c$|arm_nntables_flt\.c$", p.name))
    objdir = build / "obj"
    objdir.mkdir(parents=True, exist_ok=True)
    inc = includes(dirs)

    def one(src: Path) -> Path:
        cmd = (["arm-none-eabi-g++", *COMMON, *CXXFLAGS] if src.suffix == ".cc"
               else ["arm-none-eabi-gcc", *COMMON, "-std=c17"]) + inc
        key = hashlib.sha256(" ".join([str(src), *cmd]).encode()).hexdigest()[:16]
        obj = objdir / f"{src.stem}-{key}.o"
        if not obj.is_file():
            _run([*cmd, "-c", "-o", f"{obj}.tmp", str(src)], build)
            os.replace(f"{obj}.tmp", obj)
        return obj

    with ThreadPoolExecutor(max(1, min(4, os.cpu_count() or 1))) as pool:
        objs = list(pool.map(one, sources))
    lib = build / f"libtflm-{hashlib.sha256(' '.join(map(str, objs)).encode()).hexdigest()[:12]}.a"
    if not lib.is_file():
        CN._run(["arm-none-eabi-ar", "rcs", str(lib), *map(str, objs)], build)
    return lib


def _run(cmd, cwd) -> None:
    """A compile or link at nice 10 (the machine is shared); its failure in one line that names
    the tool and, for a link, the undefined symbols."""
    r = subprocess.run(["nice", "-n", "10", *cmd], cwd=cwd, capture_output=True, text=True, timeout=1800)
    if r.returncode != 0:
        undefined = sorted(set(re.findall(r"undefined reference to `([^']+)'", r.stderr)))
        why = f"undefined {', '.join(undefined)}" if undefined else " ".join((r.stderr or r.stdout).split())[-400:]
        what = next((c for c in cmd if c.endswith(".elf")), cmd[-1])  # the firmware linked, or the source
        raise RuntimeError(f"{cmd[0]} failed on {Path(what).name}: {why}")


def _c_array(name: str, data: bytes) -> str:
    rows = ",\n".join(", ".join(str(b) for b in data[k:k + 24]) for k in range(0, len(data), 24))
    return f"alignas(16) static const unsigned char {name}[{len(data)}] = {{\n{rows}}};\n"


def model_header(content: bytes, spec: dict, feed: tuple | None, xs: np.ndarray) -> str:
    """tflm_model.h: the .tflite (flash), the op resolver's set-up, the golden inputs (x's bytes
    per step) and where the state goes (feed: (state input, new state output) indices, or None:
    the op keeps its state)."""
    x_in = next(k for k, i in enumerate(spec["inputs"]) if i["name"] == "x")
    x = spec["inputs"][x_in]
    adds = "".join(f"    r->{OPS[op][0]}();\n" for op in spec["ops"])
    steps = ",\n".join("{" + ", ".join(str(b) for b in np.ascontiguousarray(row).tobytes()) + "}" for row in xs)
    out_words = "".join(f"#define OUT{k}_SIZE {o['size']}\n#define OUT{k}_KIND {CPP_TYPES[o['dtype']]}\n"
                        for k, o in enumerate(spec["outputs"]))
    state = (f"#define STATE_IN {feed[0]}\n#define STATE_OUT {feed[1]}\n"
             f"#define STATE_BYTES {spec['inputs'][feed[0]]['size'] * CPP_TYPES[spec['inputs'][feed[0]]['dtype']]}\n"
             if feed else "")
    return (f"/* generated by benchmarks/tflm_m4.py */\n#include <stdint.h>\n{_c_array('model_data', content)}"
            f"#define N_OPS {len(spec['ops'])}\n#define X_BYTES {x['size'] * CPP_TYPES[x['dtype']]}\n"
            f"#define X_IN {x_in}\n#define N_OUTPUTS {len(spec['outputs'])}\n{out_words}{state}"
            f"#define GOLDEN_STEPS {len(xs)}\n#define GOLDEN_OUTPUTS 1\n"
            f"static const unsigned char golden_x[GOLDEN_STEPS][X_BYTES] = {{\n{steps}}};\n"
            f"template <class R> static void add_ops(R *r)\n{{\n{adds}}}\n")


MAIN = r"""/* TFLite-Micro on the golden harness: one Invoke per step (benchmarks/tflm_m4.py, generated) */
#include <new>
#include <string.h>
#include "tflm_model.h"
extern "C" {
#include "golden_harness.h"
}
#ifndef NO_MODEL
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

/* never called (TFLM allocates from its arena), referenced by virtual destructors */
void operator delete(void *) noexcept {}
void operator delete(void *, unsigned int) noexcept {}
extern "C" void __cxa_pure_virtual(void) { platform_exit(4); }
/* TFLM's TFLITE_ABORT: newlib's abort() pulls in signal() and malloc() */
extern "C" void abort(void) noexcept
{
    platform_exit(5);
    for (;;) {
    }
}

typedef tflite::MicroMutableOpResolver<N_OPS> Resolver;
alignas(16) static uint8_t arena[ARENA_BYTES];
alignas(Resolver) static unsigned char resolver_mem[sizeof(Resolver)];
alignas(tflite::MicroInterpreter) static unsigned char interpreter_mem[sizeof(tflite::MicroInterpreter)];
static tflite::MicroInterpreter *interp;
static void *x_in;
#ifdef STATE_IN
static void *state_in;
static const void *state_out;
#endif

static int setup(void)
{
    Resolver *r = new (resolver_mem) Resolver();
    add_ops(r);
    interp = new (interpreter_mem) tflite::MicroInterpreter(tflite::GetModel(model_data), *r, arena, ARENA_BYTES);
    if (interp->AllocateTensors() != kTfLiteOk)
        return 0;
    x_in = interp->input(X_IN)->data.raw;
#ifdef STATE_IN
    state_in = interp->input(STATE_IN)->data.raw;
    state_out = interp->output(STATE_OUT)->data.raw;
#endif
    return 1;
}

static void reset(void)
{
#ifdef STATE_IN
    memset(state_in, 0, STATE_BYTES); /* float state (int8-tflm exports): 0.0 */
#else
    interp->Reset(); /* the variable tensors (the LSTM op's state) to their zero points */
#endif
}

static int step(const unsigned char *x)
{
    TfLiteStatus s;
    memcpy(x_in, x, X_BYTES);
    s = interp->Invoke();
#ifdef STATE_IN
    memcpy(state_in, state_out, STATE_BYTES); /* the new state in, for the next step */
#endif
    return s == kTfLiteOk;
}
#else
volatile unsigned char sink[X_BYTES];
static int setup(void) { return 1; }
static void reset(void) {}
static int step(const unsigned char *x) { memcpy((void *)sink, x, X_BYTES); return 1; }
#endif

static int ok = 1;
#define STEP_AT(k) (ok &= step(golden_x[k]))

#if !defined(TIMING_ONLY) && !defined(NO_MODEL) && !defined(PROBE)
static void put_output(int k, int size, int kind)
{
    const TfLiteTensor *t = interp->output(k);
    int i;
    platform_puts("o");
    put_ulong((unsigned long)k);
    platform_puts("=");
    for (i = 0; i < size; ++i) { /* raw bits: float32 words, int8 + 128, int16 + 32768 */
        unsigned long v = kind == 4 ? (unsigned long)((const uint32_t *)t->data.raw)[i]
                        : kind == 2 ? (unsigned long)(t->data.i16[i] + 32768) : (unsigned long)(t->data.int8[i] + 128);
        put_ulong(v);
        platform_puts(i + 1 < size ? "," : "\n");
    }
}
#endif

int main(void)
{
    platform_init();
    if (!setup()) {
        platform_puts("TFLM AllocateTensors failed\n");
        return golden_verdict(0);
    }
#ifdef PROBE
    reset();
    return step(golden_x[0]) ? 0 : 1;
#else
#if !defined(TIMING_ONLY) && !defined(NO_MODEL)
    {
        int t;
        platform_puts("arena_used_bytes=");
        put_ulong((unsigned long)interp->arena_used_bytes());
        platform_puts("\n");
        reset();
        for (t = 0; t < GOLDEN_STEPS; ++t) {
            ok &= step(golden_x[t]);
            OUTPUTS
        }
    }
#endif
    reset();
    GOLDEN_MEASURE(STEP_AT, 0UL);
    return golden_verdict(ok);
#endif
}
"""


def firmware(dirs: dict, lib: Path, content: bytes, spec: dict, feed, xs, out: Path, arena: int) -> None:
    """The golden ELF, the traced timing ELF and the flash probes (with and without TFLM) in out."""
    out.mkdir(parents=True, exist_ok=True)
    (out / "tflm_model.h").write_text(model_header(content, spec, feed, xs))
    calls = "".join(f"put_output({k}, OUT{k}_SIZE, OUT{k}_KIND); " for k in range(len(spec["outputs"])))
    (out / "tflm_main.cc").write_text(MAIN.replace("OUTPUTS", calls))
    inc = [*includes(dirs), "-I.", f"-I{CM.FIRMWARE}"]
    cxx = ["arm-none-eabi-g++", *COMMON, *CXXFLAGS, *inc, f"-DARENA_BYTES={arena}"]
    platform = []
    for src in (CM.CM / "platform_cm.c", CM.CM / "startup_cm.c"):
        obj = out / f"{src.stem}.o"
        CN._run(["arm-none-eabi-gcc", *ARCH, "-O2", "-ffunction-sections", "-c", "-o", str(obj), str(src)], out)
        platform.append(str(obj))
    ld = ["-nostartfiles", "--specs=nosys.specs", "-T", str(CM.CM / CM.TARGETS[TARGET]["ld"]), "-Wl,--gc-sections"]
    for elf, defs in (("tflm_golden.elf", [f"-DGOLDEN_TIMING_STEPS={TIMING_STEPS}"]),
                      ("tflm_cycles.elf", [f"-DGOLDEN_TIMING_STEPS={cycles.STEPS}", "-DTIMING_ONLY"]),
                      ("probe_model.elf", ["-DPROBE", "-DGOLDEN_TIMING_STEPS=1"]),
                      ("probe_base.elf", ["-DPROBE", "-DNO_MODEL", "-DGOLDEN_TIMING_STEPS=1"])):
        _run([*cxx, *defs, "-o", elf, "tflm_main.cc", str(lib), *platform, *ld, "-lm"], out)


def run_golden(out: Path, spec: dict) -> tuple[dict, list]:
    """Run the golden ELF under qemu -icount: instructions per Invoke, stack, arena used, and every
    step's outputs (decoded from their raw bits)."""
    t = CM.TARGETS[TARGET]
    r = subprocess.run(["nice", "-n", "10", "qemu-system-arm", "-M", t["machine"], "-nographic", "-monitor", "none",
                        "-serial", "none", "-semihosting-config", "enable=on,target=native", "-icount", "shift=0",
                        "-kernel", "tflm_golden.elf"], cwd=out, capture_output=True, text=True, timeout=900)
    text = r.stdout + "\n" + r.stderr
    kv = dict(re.findall(r"(\w+)=(\d+)\b", text))
    if r.returncode != 0 or "GOLDEN PASS" not in text or "systick_ticks_n" not in kv:
        raise RuntimeError(f"the TFLM run failed (exit {r.returncode}): {' '.join(text.split())[-300:]}")
    outputs = []
    for k, o in enumerate(spec["outputs"]):
        rows = np.array([[int(v) for v in m.split(",")] for m in re.findall(rf"^o{k}=([0-9,]+)$", text, re.M)])
        if o["dtype"] == np.float32:
            outputs.append(rows.astype(np.uint32).view(np.float32))
        else:
            outputs.append((rows - (128 if o["dtype"] == np.int8 else 32768)).astype(o["dtype"]))
    n = int(kv["timing_steps"])
    res = {"instructions_per_step": (int(kv["systick_ticks_2n"]) - int(kv["systick_ticks_n"])) / n * t["ns_per_tick"],
           "step_stack_bytes": int(kv["step_stack_bytes"]), "arena_used_bytes": int(kv["arena_used_bytes"])}
    return res, outputs


def measure_tflm(dirs: dict, lib: Path, content: bytes, spec: dict, feed, xs, out: Path) -> tuple[dict, list]:
    """Build, run, trace (cycle estimate), size: one row."""
    arena = 64 * 1024
    firmware(dirs, lib, content, spec, feed, xs, out, arena)
    res, outputs = run_golden(out, spec)
    res.update(cycles.try_estimate(out / "tflm_cycles.elf", TARGET, cycles.STEPS, CM.TARGETS[TARGET]["machine"]))
    res["instructions_by_function"] = dict(list(CN.instructions_by_function(out / "tflm_cycles.elf").items())[:12])
    sizes = {}
    for line in CN._run(["arm-none-eabi-size", "probe_model.elf", "probe_base.elf"], out).stdout.splitlines()[1:]:
        p = line.split()
        sizes[p[-1]] = (int(p[0]), int(p[1]), int(p[2]))
    (mt, md, mb), (bt, bd, bb) = sizes["probe_model.elf"], sizes["probe_base.elf"]
    res["linked_flash_bytes"] = mt + md - bt - bd
    res["tflite_file_bytes"] = len(content)
    res["static_ram_bytes"] = md + mb - bd - bb - arena  # interpreter, resolver, TFLM's statics; not the arena
    res["ram_bytes"] = res["arena_used_bytes"] + res["static_ram_bytes"] + res["step_stack_bytes"]
    return res, outputs


# --------------------------------------------------------------------------------------
# the host's interpreters on the same file and inputs


def host_outputs(content: bytes, spec: dict, feed, xs: np.ndarray, which: str, stateless: bool = False) -> list:
    """Every step's outputs [per output: steps x size] from the host's LiteRT ('litert') or
    TFLite-Micro ('tflm', reference kernels), the state fed back as on the M4 (stateless: the
    variable tensors reset before every step instead)."""
    n_in = len(spec["inputs"])
    x_in = next(k for k, i in enumerate(spec["inputs"]) if i["name"] == "x")
    if which == "litert":
        from ltc_edge.export.tflite import interpreter

        it = interpreter(content)
        ind, outd = it.get_input_details(), it.get_output_details()
        set_in = lambda k, v: it.set_tensor(ind[k]["index"], v)  # noqa: E731
        get_out = lambda k: it.get_tensor(outd[k]["index"])  # noqa: E731
        invoke, reset = it.invoke, it.reset_all_variables
    else:
        from tflite_micro.python.tflite_micro import runtime

        it = runtime.Interpreter.from_bytes(content)
        set_in, get_out, invoke, reset = (lambda k, v: it.set_input(v, k)), it.get_output, it.invoke, it.reset
    shapes = {k: (1, 1, i["size"]) if n_in == 1 else (1, i["size"]) for k, i in enumerate(spec["inputs"])}
    if feed:
        set_in(feed[0], np.zeros(shapes[feed[0]], spec["inputs"][feed[0]]["dtype"]))
    outs = [[] for _ in spec["outputs"]]
    for row in xs:
        if stateless:
            reset()
        set_in(x_in, np.asarray(row, spec["inputs"][x_in]["dtype"]).reshape(shapes[x_in]))
        invoke()
        for k in range(len(outs)):
            outs[k].append(np.array(get_out(k)).ravel().copy())
        if feed:
            set_in(feed[0], outs[feed[1]][-1].reshape(shapes[feed[0]]))
    return [np.array(o) for o in outs]


def agreement(m4: list, host: dict, spec: dict) -> dict:
    """The M4's outputs vs each host interpreter's: max abs (float outputs) or LSBs (integer)."""
    out = {}
    for which, ref in host.items():
        for k, o in enumerate(spec["outputs"]):
            d = np.abs(m4[k].astype(np.float64) - ref[k].astype(np.float64))
            unit = "abs" if o["dtype"] == np.float32 else "lsb"
            out[f"{o['name']}_vs_{which}_max_{unit}"] = float(d.max())
            out[f"{o['name']}_vs_{which}_exact_fraction"] = float((d == 0).mean())
    return out


# --------------------------------------------------------------------------------------
# the run

FLOAT_TOLERANCE, LSB_TOLERANCE = 1e-3, 2  # the M4 vs the host's TFLite-Micro (reference kernels)


def tflm_models(work: Path, x: np.ndarray, cmsis_nn: bool) -> dict:
    """{row name: {content: .tflite bytes, xs: the M4's x per step, feed: (state input, new state
    output) or None, file: the model, quantization, reference: ops on TFLM's reference kernels
    even with CMSIS-NN, stateless: whether the kernel drops its state between Invokes}}."""
    from ltc_edge.nn.modelfile import read

    exports = project_exports(work, x)
    raw = {k: np.asarray(v) for k, v in read(exports["lstm19"][0])[1].items()}
    lstm_bytes, q = lstm_tflite(raw, x)
    rows = {}
    for name in ("ncp19", "lstm19"):
        file, content, manifest = exports[name]
        spec = io_specs(content)
        ins, outs = [i["name"] for i in spec["inputs"]], [o["name"] for o in spec["outputs"]]
        state_out = outs.index(sorted(outs)[1])  # the export's signature outputs, sorted: y, the new state
        rows[f"tflm_{name}_int8_tflm"] = {"content": content, "xs": x.astype(np.float32), "file": file,
                                          "feed": (ins.index("state"), state_out), "reference": (),
                                          "quantization": manifest.get("quantization", {}).get("scheme")}
    lstm = {"content": lstm_bytes, "xs": q["xq"], "file": exports["lstm19"][0], "feed": None, "quantization": "int8x8_16"}
    # TFLM's CMSIS-NN kernel of this op hands arm_lstm_unidirectional_s8 a scratch cell state and no
    # hidden state: every Invoke starts from zero (a whole sequence per Invoke); its reference kernel
    # keeps the state in the variable tensors
    if cmsis_nn:
        rows["tflm_lstm19_op_int8_cmsis_nn"] = {**lstm, "reference": (), "stateless": True}
    rows["tflm_lstm19_op_int8_reference"] = {**lstm, "reference": ("UNIDIRECTIONAL_SEQUENCE_LSTM",)}
    return rows


def tflm_row(dirs, lib, content, xs, feed, out: Path, stateless: bool = False) -> dict:
    spec = io_specs(content)
    res, m4 = measure_tflm(dirs, lib, content, spec, feed, xs, out)
    host = {which: host_outputs(content, spec, feed, xs, which, stateless) for which in ("tflm", "litert")}
    check = agreement(m4, host, spec)
    worst = [v for k, v in check.items() if "_vs_tflm_max_" in k]
    tol = [FLOAT_TOLERANCE if o["dtype"] == np.float32 else LSB_TOLERANCE for o in spec["outputs"]]
    res["passed"] = all(w <= t for w, t in zip(worst, tol))
    res["ops"] = spec["ops"]
    res["keeps_state_between_invokes"] = not stateless
    return {**res, "correctness": check}


def run(dirs: dict, work: Path, build: Path, with_project: bool = True) -> dict:
    x = np.random.default_rng(0).standard_normal((STEPS, INPUTS))  # as cortex_m.prepare_int8's default
    models = tflm_models(work, x, "cmsis_nn" in dirs)
    ops = sorted(set().union(*(io_specs(m["content"])["ops"] for m in models.values())))
    rows = {}
    for name, m in models.items():
        lib = compile_library(dirs, ops, build, m["reference"])
        kernels = "reference" if "cmsis_nn" not in dirs or m["reference"] else "cmsis_nn"
        rows[name] = {"quantization": m["quantization"], "kernels": kernels,
                      **tflm_row(dirs, lib, m["content"], m["xs"], m["feed"], work / name, m.get("stateless", False))}
    if with_project:
        for name in ("ncp19", "lstm19"):
            r = CM.measure(models[f"tflm_{name}_int8_tflm"]["file"], work / f"project_{name}", targets=(TARGET,),
                           timing_steps=TIMING_STEPS)[TARGET]
            rows.update({f"project_{name}_int8": CN._row(r["int8"]), f"project_{name}_fp32_fpv4": CN._row(r["fp32_fpv4"]),
                         f"project_{name}_fp32_portable": CN._row(r["fp32"])})
    return {"rows": rows, "ratios": ratios(rows)}


def ratios(rows: dict) -> dict:
    """Each TFLM row over the project's rows of the same model: instructions, cycles, flash, RAM."""
    out = {}
    for t, row in rows.items():
        if not t.startswith("tflm_"):
            continue
        model = t.split("_")[1]
        for p, prow in rows.items():
            if not p.startswith(f"project_{model}_"):
                continue
            for unit, f in (("instructions", "instructions_per_step"), ("cycles", "cycles_per_step"),
                            ("flash", "linked_flash_bytes"), ("ram", "ram_bytes")):
                if row.get(f) and prow.get(f):
                    out[f"{t}_over_{p}_{unit}"] = row[f] / prow[f]
    return out


def versions(dirs: dict) -> dict:
    out = {}
    for name, d in dirs.items():
        r = subprocess.run(["git", "-C", str(d), "log", "-1", "--format=%H %cs"], capture_output=True, text=True)
        out[name] = r.stdout.strip() if r.returncode == 0 else "unknown (not a git checkout)"
    return out


def document(res: dict, dirs: dict) -> dict:
    """The JSON record: what ran, how each figure is counted, the rows."""
    kernels = "CMSIS-NN (TFLM's kernels/cmsis_nn/ where it has the op, else the reference kernels)" \
        if "cmsis_nn" in dirs else "reference kernels (no --cmsis-nn given)"
    return {"what": "TensorFlow Lite for Microcontrollers on the emulated Cortex-M4 (qemu-system-arm mps2-an386), "
                    "one Invoke per step: this project's int8-tflm TFLite exports of the LTC-NCP-19 and LSTM-19 (state "
                    "fed back), and TFLite's UNIDIRECTIONAL_SEQUENCE_LSTM int8 op on the LSTM-19 (state in its "
                    "variable tensors); beside this project's C of the same models measured in the same run; qemu "
                    "instructions and estimated cycles, not a board",
            "tflm": {"sources": versions(dirs), "kernels": kernels,
                     "build": " ".join(["arm-none-eabi-g++", *COMMON, *CXXFLAGS]) + " (TFLM's `release` build; its "
                              "own Makefile is not used: it downloads its dependencies)"},
            "model": f"benchmarks/c_models.py's ncp19 and lstm19 (8 inputs, seed 0); inputs: standard normal, seed 0, "
                     f"{STEPS} steps; int8-tflm exports calibrated on the same inputs, dt fixed at 1.0",
            "notes": {
                "quantization": "each row's: int8-tflm picks the first of its schemes that passes the drift budget "
                                "(ltc_edge/export/tflite.py: 'int8' = integer synapse products / gates, "
                                "'weight-only' = int8 weights dequantised, float compute); the LSTM op: int8x8_16 "
                                "as benchmarks/cmsis_nn_lstm.py quantises it",
                "scope": "every row steps the whole model (the LSTM op rows: the layer only, no 19 -> 2 readout)",
                "lstm_op_kernels": "TFLM's CMSIS-NN kernel of UNIDIRECTIONAL_SEQUENCE_LSTM hands "
                                   "arm_lstm_unidirectional_s8 a scratch cell state and no hidden state: every Invoke "
                                   "starts from zero (keeps_state_between_invokes false; its outputs are checked "
                                   "against the host run with the state reset before every step), and with no hidden "
                                   "state CMSIS-NN skips the recurrent products (1,444 of the 2,052 multiply-adds): "
                                   "its instructions are not a streaming step's. Streaming one step per Invoke needs "
                                   "the reference kernel (the _reference row, state kept)",
                "dequantize": "the int8-tflm exports' DEQUANTIZE ops dequantise the int8 weights on every Invoke, "
                              "in double (TFLM's reference dequantise): soft-float on the M4 (__muldf3, "
                              "__truncdfsf2, __floatsidf in instructions_by_function)",
                "instructions_per_step": "SysTick ticks x 40 under qemu -icount shift=0, (2N - N Invokes) / N, "
                                         f"N = {TIMING_STEPS}; an Invoke includes the copies of x and of the state",
                "cycles_per_step": cycles.NOTE[TARGET],
                "linked_flash_bytes": "probe firmware (TFLM set-up + one Invoke) minus the same without TFLM and the "
                                      "model: interpreter, allocator, the model's kernels, the .tflite (+ libc/libm "
                                      "helpers they pull in)",
                "ram_bytes": "tensor arena used (arena_used_bytes after AllocateTensors) + TFLM's .data/.bss (the "
                             "interpreter and resolver objects; the arena's unused rest not counted) + the stack "
                             "high-water mark of one Invoke",
                "correctness": "every step's outputs on the M4 (raw bits) vs the host's TFLite-Micro (tflite-micro "
                               "Python package, reference kernels) and the host's LiteRT interpreter on the same "
                               f".tflite and inputs; passed: within {FLOAT_TOLERANCE} (float outputs) or "
                               f"{LSB_TOLERANCE} LSB (int8) of the host's TFLite-Micro"},
            **res}


def cxx_headers_missing() -> bool:
    r = subprocess.run(["arm-none-eabi-g++", *ARCH, "-x", "c++", "-E", "-o", os.devnull, "-"], input="#include <new>\n",
                       capture_output=True, text=True)
    return r.returncode != 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name, repo in (("tflm", "tensorflow/tflite-micro"), ("flatbuffers", "google/flatbuffers"),
                       ("gemmlowp", "google/gemmlowp"), ("ruy", "google/ruy"), ("cmsis-nn", "ARM-software/CMSIS-NN")):
        ap.add_argument(f"--{name}", metavar="DIR", help=f"a checkout of github.com/{repo}")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "tflm_m4.json"))
    ap.add_argument("--no-project", action="store_true", help="only the TFLM rows (skip the project's rows)")
    ap.add_argument("--build", metavar="DIR", help="keep TFLM's objects here, reused by a later run with the same "
                                                   "checkouts (objects are keyed by path and flags, not content); "
                                                   "default: a temp folder, removed")
    a = ap.parse_args()
    dirs = check_sources(a)
    if isinstance(dirs, str):
        sys.exit(f"error: {dirs}")
    if CM.missing_tools() or shutil.which("arm-none-eabi-g++") is None:
        sys.exit(f"error: missing {', '.join(CM.missing_tools() or ['arm-none-eabi-g++'])} (ltc_edge/bench/arm/setup.sh)")
    if cxx_headers_missing():
        sys.exit("error: arm-none-eabi-g++ has no C++ headers (ltc_edge/bench/arm/setup.sh installs them: "
                 "libstdc++-arm-none-eabi-newlib)")
    work = Path(tempfile.mkdtemp(prefix="tflm-m4-"))
    try:
        CN.check_out(Path(a.out))
        res = run(dirs, work, Path(a.build).resolve() if a.build else work / "build", with_project=not a.no_project)
        fileio.atomic_write_bytes(a.out, (json.dumps(document(res, dirs), indent=1) + "\n").encode())
    except (LtcEdgeError, RuntimeError, ValueError, subprocess.SubprocessError, OSError) as e:
        sys.exit(f"error: {str(e).splitlines()[0][:300]}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    for name, row in res["rows"].items():
        print(f"{name:34s} instructions/step {row.get('instructions_per_step')}  est. cycles/step "
              f"{row.get('cycles_per_step')}  flash {row.get('linked_flash_bytes')} B  RAM {row.get('ram_bytes')} B"
              + ("" if row.get("passed", True) else "  (NOT within tolerance of the host)"))
    print(f"-> {a.out}")


if __name__ == "__main__":
    main()
