"""benchmarks/cmsis_nn_lstm.py (issue 24 item 2, the CMSIS-NN anchor): its refusal without a
CMSIS-NN checkout, and the numpy side of its correctness check. The measurement itself is a
benchmark (benchmarks/results/cmsis_nn_lstm.json), not a test."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "cmsis_nn_lstm.py"
sys.path.insert(0, str(ROOT / "benchmarks"))

import cmsis_nn_lstm as C  # noqa: E402


@pytest.mark.qemu
@pytest.mark.parametrize("args", [[], ["--cmsis-nn", "/nonexistent/CMSIS-NN"], ["--cmsis-nn", "."]])
def test_refuses_a_missing_cmsis_nn_dir_in_one_line(args, tmp_path):
    r = subprocess.run([sys.executable, str(SCRIPT), *args, "--out", str(tmp_path / "o.json")], cwd=tmp_path,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --cmsis-nn DIR") and "Traceback" not in r.stderr
    assert not (tmp_path / "o.json").exists()


def test_quantize_multiplier_matches_tflite():
    # CMSIS-NN's own LSTM test data (TestData/lstm_one_time_step): forget-to-cell 2^-15 -> (2^30, -14)
    assert C.quantize_multiplier(2.0 ** -15) == (1073741824, -14)
    m, s = C.quantize_multiplier(0.3)
    assert 2 ** 30 <= m < 2 ** 31 and abs(m / 2 ** 31 * 2.0 ** s - 0.3) < 1e-9


def test_int8_reference_tracks_the_fp32_lstm():
    rng = np.random.default_rng(1)
    n, i = C.UNITS, C.INPUTS
    raw = {"cell.weight_ih": rng.uniform(-0.4, 0.4, (4 * n, i)), "cell.weight_hh": rng.uniform(-0.3, 0.3, (4 * n, n)),
           "cell.bias": rng.uniform(-0.2, 0.2, 4 * n)}
    x = rng.standard_normal((60, i))
    q = C.quantize(raw, x)
    hq = C.int8_reference(q)
    h = C.fp32_lstm(raw, x)[0]
    err = np.abs((hq - q["zp_h"]) * q["s_h"] - h) / q["s_h"]  # in LSBs of the hidden scale
    assert hq.shape == (60, n) and err.max() < 3.0 and err.mean() < 1.0
