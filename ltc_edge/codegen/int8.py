"""int8 (integer-only) C generators by cell kind: the LTC (c_int.py), the LSTM and the GRU
(c_int_lstm.py). `generate(config, raw, prefix=, fixed_dt=, calib_x=)` -> {"files", "info"}.
The integer step's golden data: `host_step_q` runs a host build of the same C, `golden_header`
writes golden_int_data.h for firmware/golden_int_main.c (bit-exact on every core)."""

from __future__ import annotations

import numpy as np

from ltc_edge.codegen import c_int, c_int_lstm
from ltc_edge.codegen.cliterals import CodegenError, c_identifier, c_text

GENERATORS = {"ltc": c_int.generate, "lstm": c_int_lstm.generate, "gru": c_int_lstm.generate}


def generate(config: dict, raw: dict, **kw) -> dict:
    kind = config["cell"]["kind"]
    if kind not in GENERATORS:
        raise CodegenError(f"int8 C export supports {', '.join(GENERATORS)} models, not {kind!r}")
    return GENERATORS[kind](config, raw, **kw)


def quantize_inputs(x, input_frac_bits) -> np.ndarray:
    """Raw inputs [T, in] as the step_q's int16 inputs (round, saturate)."""
    xf = np.asarray(input_frac_bits, np.float64)
    return np.clip(np.round(np.asarray(x, np.float64) * 2.0 ** xf), -32768, 32767).astype(np.int16)


def host_step_q(lib_path, prefix: str, xq: np.ndarray, n_out: int, n_state: int) -> np.ndarray:
    """Run <prefix>_step_q of a host-compiled int8 library over xq [T, in] from a zero state."""
    import ctypes

    lib = ctypes.CDLL(str(lib_path))
    p16 = ctypes.POINTER(ctypes.c_int16)
    state = np.zeros(n_state, np.int16)
    fn = getattr(lib, f"{prefix}_step_q")
    fn.restype, fn.argtypes = None, [p16, p16, p16]
    ys = np.zeros((len(xq), n_out), np.int16)
    for t in range(len(xq)):
        x = np.ascontiguousarray(xq[t], np.int16)
        y = np.zeros(n_out, np.int16)
        fn(state.ctypes.data_as(p16), x.ctypes.data_as(p16), y.ctypes.data_as(p16))
        ys[t] = y
    return ys


def _c_rows(a) -> str:
    return "{\n  " + ",\n  ".join("{" + ",".join(str(int(v)) for v in r) + "}" for r in a) + "}"


def golden_header(prefix: str, xq, yq, *, timing_steps: int = 50, source: str = "") -> str:
    """golden_int_data.h for firmware/golden_int_main.c: int16 inputs and the outputs the same C
    gave on the host (a core must match them bit for bit)."""
    prefix = c_identifier(prefix)
    xq, yq = np.asarray(xq, np.int64), np.asarray(yq, np.int64)
    steps = len(xq)
    return (f"/* golden data: {steps} steps, outputs of {c_text(source) or 'the host build of the same C'} */\n"
            f'#include "{prefix}.h"\n'
            f"#define GOLDEN_STEPS {steps}\n#ifndef GOLDEN_TIMING_STEPS\n#define GOLDEN_TIMING_STEPS {int(timing_steps)}\n"
            f"#endif\n#define GOLDEN_OUTPUTS {yq.shape[1]}\n#define GOLDEN_TOL_LSB 0\n"
            f"#define GOLDEN_STATE_T {prefix}_state_t\n#define GOLDEN_STEP_Q {prefix}_step_q\n"
            f"#define GOLDEN_RESET {prefix}_reset\n"
            f"static const int16_t golden_xq[{steps}][{xq.shape[1]}] = {_c_rows(xq)};\n"
            f"static const int16_t golden_yq[{steps}][{yq.shape[1]}] = {_c_rows(yq)};\n")
