"""benchmarks/tflm_m4.py (issue 24 item 2, the TFLite-Micro anchor): its refusals without the
checkouts, the UNIDIRECTIONAL_SEQUENCE_LSTM .tflite it writes without TensorFlow (run in the
host's LiteRT), and, where the checkouts are given by environment (LTC_TFLM_DIR,
LTC_FLATBUFFERS_DIR, LTC_GEMMLOWP_DIR, LTC_RUY_DIR, optional LTC_CMSIS_NN_DIR and LTC_TFLM_BUILD:
a kept object folder, as tflm_m4.py --build), that op built and
run on the emulated Cortex-M4. The measurement itself is a benchmark
(benchmarks/results/tflm_m4.json), not a test."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "tflm_m4.py"
sys.path.insert(0, str(ROOT / "benchmarks"))

import tflm_m4 as T  # noqa: E402

ENV = {"tflm": "LTC_TFLM_DIR", "flatbuffers": "LTC_FLATBUFFERS_DIR", "gemmlowp": "LTC_GEMMLOWP_DIR",
       "ruy": "LTC_RUY_DIR", "cmsis_nn": "LTC_CMSIS_NN_DIR"}


def _lstm_raw(seed=1):
    rng = np.random.default_rng(seed)
    n, i = T.CN.UNITS, T.INPUTS
    return ({"cell.weight_ih": rng.uniform(-0.4, 0.4, (4 * n, i)), "cell.weight_hh": rng.uniform(-0.3, 0.3, (4 * n, n)),
             "cell.bias": rng.uniform(-0.2, 0.2, 4 * n)}, rng.standard_normal((40, i)))


@pytest.mark.parametrize("args, start", [([], "error: --tflm DIR"),
                                         (["--tflm", "/nonexistent/tflm"], "error: --tflm DIR"),
                                         (["--tflm", str(ROOT), "--flatbuffers", "."], "error: --tflm DIR")])
def test_refuses_missing_checkouts_in_one_line(args, start, tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPT), *args, "--out", str(tmp_path / "o.json")], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    lines = r.stderr.strip().splitlines()
    assert r.returncode != 0 and len(lines) == 1 and lines[0].startswith(start), r.stderr
    assert not (tmp_path / "o.json").exists()


def test_flatbuffers_version_must_match_tflm_schema(tmp_path):
    tflm, fb, g, ruy = (tmp_path / n for n in ("tflm", "fb", "g", "ruy"))
    for d, f, text in ((tflm, f"{T.MICRO}/micro_interpreter.h", ""),
                       (tflm, "tensorflow/lite/schema/schema_generated.h",
                        "static_assert(FLATBUFFERS_VERSION_MAJOR == 25 && FLATBUFFERS_VERSION_MINOR == 9 && "
                        "FLATBUFFERS_VERSION_REVISION == 23, \"\");"),
                       (fb, "include/flatbuffers/base.h", "#define FLATBUFFERS_VERSION_MAJOR 25\n"
                        "#define FLATBUFFERS_VERSION_MINOR 12\n#define FLATBUFFERS_VERSION_REVISION 19\n"),
                       (g, "fixedpoint/fixedpoint.h", ""), (ruy, "ruy/profiler/instrumentation.h", "")):
        (d / f).parent.mkdir(parents=True, exist_ok=True)
        (d / f).write_text(text)

    class A:
        pass

    a = A()
    a.tflm, a.flatbuffers, a.gemmlowp, a.ruy, a.cmsis_nn = tflm, fb, g, ruy, None
    why = T.check_sources(a)
    assert isinstance(why, str) and "25.9.23" in why and "25.12.19" in why
    (fb / "include/flatbuffers/base.h").write_text("#define FLATBUFFERS_VERSION_MAJOR 25\n"
                                                   "#define FLATBUFFERS_VERSION_MINOR 9\n"
                                                   "#define FLATBUFFERS_VERSION_REVISION 23\n")
    assert T.check_sources(a)["flatbuffers"] == fb.resolve()


def test_lstm_op_tflite_runs_in_litert_as_the_integer_model():
    """The hand-built UNIDIRECTIONAL_SEQUENCE_LSTM file: LiteRT's int8 kernel steps it (state in
    its variable tensors) within 1 LSB of the numpy model of the same integer math."""
    raw, x = _lstm_raw()
    content, q = T.lstm_tflite(raw, x)
    spec = T.io_specs(content)
    assert spec["ops"] == ["UNIDIRECTIONAL_SEQUENCE_LSTM"] and spec["inputs"][0]["dtype"] == np.int8
    h = T.host_outputs(content, spec, None, q["xq"], "litert")[0].astype(np.int64)
    d = np.abs(h - T.CN.int8_reference(q))
    assert h.shape == (40, T.CN.UNITS) and d.max() <= 1 and (d == 0).mean() > 0.9


def test_stateless_host_steps_are_fresh_sequences():
    """stateless=True (how TFLM's CMSIS-NN LSTM kernel runs): step k is a fresh run on x[k] alone."""
    raw, x = _lstm_raw(2)
    content, q = T.lstm_tflite(raw, x[:6])
    spec = T.io_specs(content)
    kept = T.host_outputs(content, spec, None, q["xq"], "litert")[0]
    fresh = T.host_outputs(content, spec, None, q["xq"], "litert", stateless=True)[0]
    alone = T.host_outputs(content, spec, None, q["xq"][3:4], "litert")[0]
    assert (fresh[0] == kept[0]).all() and (fresh[3] == alone[0]).all() and (fresh[1:] != kept[1:]).any()


def _checkouts():
    dirs = {k: os.environ.get(v) for k, v in ENV.items()}
    if not all(dirs[k] for k in ("tflm", "flatbuffers", "gemmlowp", "ruy")):
        pytest.skip(f"set {', '.join(v for v in ENV.values())} to checkouts to run TFLM on the M4")

    class A:
        pass

    a = A()
    for k, v in dirs.items():
        setattr(a, k, v)
    got = T.check_sources(a)
    if isinstance(got, str):
        pytest.fail(got)
    return got


@pytest.mark.slow
@pytest.mark.qemu
def test_lstm_op_on_the_m4_matches_the_host_tflm(tmp_path):
    dirs = _checkouts()
    if T.CM.missing_tools() or T.cxx_headers_missing():
        pytest.skip("the ARM toolchain (with C++ headers) or qemu-system-arm is missing")
    raw, x = _lstm_raw()
    content, q = T.lstm_tflite(raw, x)
    # the reference kernel: TFLM's CMSIS-NN kernel of this op does not keep the state between Invokes
    build = Path(os.environ.get("LTC_TFLM_BUILD") or tmp_path / "build")  # a kept one skips the compile
    lib = T.compile_library(dirs, ["UNIDIRECTIONAL_SEQUENCE_LSTM"], build, reference=("UNIDIRECTIONAL_SEQUENCE_LSTM",))
    row = T.tflm_row(dirs, lib, content, q["xq"], None, tmp_path / "m4")
    assert row["passed"] and row["correctness"]["h_vs_tflm_max_lsb"] <= T.LSB_TOLERANCE
    assert 1000 < row["instructions_per_step"] < 200000 and row["arena_used_bytes"] > 57
