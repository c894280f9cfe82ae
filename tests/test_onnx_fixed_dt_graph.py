"""With --fixed-dt the LTC's cm/dt is divided out of the numerator and denominator sums at
export (issue 27 item 5): no product with v, 5 nodes an unfold, and the same step as the
dt-input graph fed that dt."""

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from ltc_edge.export import onnx as X  # noqa: E402
from ltc_edge.export.graph import build_graph  # noqa: E402
from ltc_edge.nn import build_model  # noqa: E402


def test_fixed_dt_graph_has_no_product_with_v_and_steps_like_the_dt_graph():
    model = build_model("ltc", 8, wiring="auto-ncp", units=19, output_size=4, seed=0).eval()
    fixed, free = X.to_onnx(build_graph(model, fixed_dt=0.7)), X.to_onnx(build_graph(model))
    unfolds = model.config["cell"]["ode_unfolds"]
    assert X.op_histogram(fixed) == {"Div": unfolds, "Gemm": 3 * unfolds + 2, "Sigmoid": unfolds}
    assert len(free.graph.node) - len(fixed.graph.node) == unfolds + 1  # the cm/dt*v products and cm/dt
    run_fixed, run_free = X.runner(X.session(fixed)), X.runner(X.session(free))
    rng = np.random.default_rng(0)
    h_fixed = h_free = np.zeros((2, 19), np.float32)
    dt = np.full((2, 1), 0.7, np.float32)
    for _ in range(100):
        x = rng.standard_normal((2, 8)).astype(np.float32)
        (y1, h_fixed), (y2, h_free) = run_fixed(x, h_fixed, None), run_free(x, h_free, dt)
        assert np.abs(y1 - y2).max() <= 1e-5 and np.abs(h_fixed - h_free).max() <= 1e-5
    assert np.abs(h_free).max() > 1e-2
