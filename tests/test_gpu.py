"""CUDA paths (marked gpu): run only where a CUDA device is present."""

import pytest
import torch

from ltc_edge.nn import build_model, save

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device (torch.cuda.is_available() is False)")]


@pytest.mark.parametrize("kind", ["ltc", "cfc", "lstm"])
def test_cuda_forward_equals_cpu(kind):
    m = build_model(kind, 6, 3, units=16, seed=0, **({"wiring": "auto-ncp"} if kind == "ltc" else {}))
    x, dt = torch.randn(4, 50, 6), torch.rand(4, 50) + 0.1
    with torch.no_grad():
        y_cpu, _ = m(x, dt)
        y_gpu, _ = m.cuda()(x.cuda(), dt.cuda())
    assert (y_gpu.cpu() - y_cpu).abs().max() < 1e-4


def test_bench_cuda_target_measures(tmp_path):
    from ltc_edge.bench.run import run_bench

    path = save(build_model("ltc", 8, 4, wiring="auto-ncp", units=19, seed=0), tmp_path / "m.safetensors")
    res = run_bench([path], backends=["torch"], targets=["cuda"], batches=[1, 64], out=tmp_path / "b",
                    min_seconds=0.1)
    row = res["rows"][0]
    assert row["skipped"] is None and row["latency"]["64"]["p50_us"] > 0
