"""The onnxruntime backend steps through an IOBinding of OrtValues over its own buffers
(issue 27 item 5): the same numbers as a plain sess.run, chained, at several batch sizes and
after a rebind, with y / new_state written in place (no output arrays made per step)."""

import numpy as np
import pytest

ort = pytest.importorskip("onnxruntime")

from ltc_edge.export import onnx as X  # noqa: E402
from ltc_edge.nn import build_model  # noqa: E402
from ltc_edge.runtime import load  # noqa: E402


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("iob") / "onnx"
    X.export(build_model("ltc", 4, wiring="auto-ncp", units=10, output_size=2, seed=0).eval(), out, drift_steps=50)
    return out


def _plain_chain(path, xs, dts):
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    h = np.zeros((xs.shape[1], 10), np.float32)
    ys = []
    for x, dt in zip(xs, dts):
        y, h = sess.run(["y", "new_state"], {"x": x, "state": h, "dt": dt})
        ys.append(y)
    return np.stack(ys), h


@pytest.mark.parametrize("batch", [1, 3])
def test_bound_step_equals_plain_run_chained_and_after_rebind(export_dir, batch):
    rng = np.random.default_rng(batch)
    xs = rng.standard_normal((40, batch, 4)).astype(np.float32)
    dts = rng.uniform(0.2, 1.5, (40, batch, 1)).astype(np.float32)
    want_y, want_h = _plain_chain(export_dir / "model.onnx", xs, dts)
    ctrl = load(export_dir, backend="onnxruntime", batch=2)
    ctrl.reset(batch=batch)  # a rebind: the binding must follow the new buffers
    got = np.stack([ctrl.step(x, dt).copy() for x, dt in zip(xs, dts)])
    assert np.abs(got - want_y).max() <= 1e-6 and np.abs(ctrl.state - want_h).max() <= 1e-6
    assert np.abs(want_y).max() > 1e-3  # a real signal


def test_outputs_are_written_in_place(export_dir):
    ctrl = load(export_dir, backend="onnxruntime")
    b = ctrl.backend
    y_buf, h_buf = b.y, b.h_new
    b.x[...] = 0.7
    b.run()
    first = y_buf.copy()
    b.h[...] = h_buf
    b.run()
    assert b.y is y_buf and b.h_new is h_buf and np.abs(first).max() > 1e-3 and not np.array_equal(first, y_buf)



def test_a_step_goes_through_the_binding_not_sess_run(export_dir, monkeypatch):
    """sess.run (a feed dict in, new numpy arrays out) is not on the step path any more."""
    ctrl = load(export_dir, backend="onnxruntime")
    want = ctrl.step(np.ones(4, np.float32)).copy()

    def refuse(*a, **k):
        raise AssertionError("sess.run called on the step path")

    monkeypatch.setattr(ctrl.backend.sess, "run", refuse)
    ctrl.reset()
    assert np.array_equal(ctrl.step(np.ones(4, np.float32)), want)
