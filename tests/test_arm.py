"""ARM: the generated C, cross-built for aarch64 Linux (qemu-aarch64) and a bare-metal
Cortex-M4 (qemu-system-arm -M mps2-an386, semihosting), reproduces the numpy runtime's
outputs on embedded golden data. Marked qemu; skips only when the tools are absent
(install them with scripts/arm/setup.sh)."""

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
from ltc_edge.bench import arm as A  # noqa: E402

pytestmark = pytest.mark.qemu


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return A.default_models(tmp_path_factory.mktemp("arm-models"))


def _need(target):
    miss = A.missing_tools(target)
    if miss:
        pytest.skip(f"ARM tools missing: {', '.join(miss)} (run scripts/arm/setup.sh)")


@pytest.mark.parametrize("which", ["ltc19-ncp", "lstm"])
def test_golden_aarch64(models, tmp_path, which):
    _need("aarch64")
    model = next(p for k, p in models.items() if k.startswith(which[:4]))
    A.prepare(model, tmp_path, steps=100)
    r = A.run_aarch64(tmp_path, "ltc_model")
    assert r["passed"], r
    assert r["max_abs_err"] is not None and r["max_abs_err"] <= 1e-4


@pytest.mark.parametrize("which", ["ltc19-ncp", "lstm"])
def test_golden_cortex_m4(models, tmp_path, which):
    _need("m4")
    model = next(p for k, p in models.items() if k.startswith(which[:4]))
    A.prepare(model, tmp_path, steps=100, timing_steps=20)
    r = A.run_m4(tmp_path, "ltc_model")
    assert r["passed"], r
    assert r["max_abs_err"] <= 1e-4
    assert r["instructions_per_step"] > 1000  # the counter really counts
    if which == "ltc19-ncp":  # the budget for LTC-19 NCP on a Cortex-M4
        assert r["model_flash_bytes"] <= 16 * 1024, r["model_flash_bytes"]
        assert r["model_ram_bytes"] <= 2 * 1024, r["model_ram_bytes"]


def test_cortex_m4_failure_is_reported(models, tmp_path):
    """A golden mismatch gives a non-zero exit through semihosting SYS_EXIT (the test can fail)."""
    _need("m4")
    A.prepare(models["ltc19-ncp"], tmp_path, steps=20, timing_steps=5, tol=1e-12)
    r = A.run_m4(tmp_path, "ltc_model")
    assert not r["passed"] and r["exit_code"] != 0
