"""The native LTC training kernel (train/native.py, ltc_window.c): the same outputs and gradients
as autograd through functional.py, for every option of a dense LTC; it runs where it applies
and hands over, with the reason logged, where it does not."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ltc_edge.nn.model import build_model  # noqa: E402
from ltc_edge.train import loop, native  # noqa: E402

try:
    native.library()
    HAVE_CC = True
except native.NativeUnavailable:
    HAVE_CC = False
needs_cc = pytest.mark.skipif(not HAVE_CC, reason="no C compiler: the native kernel cannot be built")

NORM = {"input_mean": [0.5, -1.0, 2.0], "input_std": [2.0, 0.5, 1.5],
        "output_mean": [1.0, -2.0], "output_std": [3.0, 0.25]}
CASES = {  # name -> build_model keyword arguments (3 inputs, 2 outputs)
    "full_readout": dict(units=7, output_size=2),
    "implicit_constraints": dict(units=6, output_size=2, implicit_param_constraints=True, ode_unfolds=3),
    "mappings_off_normalised": dict(units=5, output_size=2, input_mapping="none", output_mapping="none",
                                    readout=True, normalization=NORM),
    "motor_outputs_dt_input": dict(units=6, wiring="random", wiring_args={"sparsity_level": 0.2}, output_size=2,
                                   dt_input=0.5),
}


def _perturbed(model, seed):
    """Parameters away from the initial ones (w, sigma spread out), so every gradient term counts."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.3 * torch.randn(p.shape, generator=g) * (p.abs().mean() + 0.1))
        model.apply_constraints()
    return model


def _loss_and_grads(model, x, y, dt, step_fn):
    model.zero_grad(set_to_none=True)
    loss = ((loop.run_sequence(model, step_fn, x, dt) - y) ** 2).mean()
    loss.backward()
    return float(loss.detach()), {k: p.grad.clone() for k, p in model.named_parameters()}


@needs_cc
@pytest.mark.parametrize("name", sorted(CASES))
@pytest.mark.parametrize("with_dt", [False, True])
def test_native_window_has_autograds_outputs_and_gradients(name, with_dt):
    model = _perturbed(build_model("ltc", 3, seed=1, **CASES[name]), 2)
    assert native.dense_ltc(model.config) is None and native.window_too_big(model.config, 4, 9) is None
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.standard_normal((4, 9, 3)).astype(np.float32))
    y = torch.from_numpy(rng.standard_normal((4, 9, 2)).astype(np.float32))
    dt = torch.from_numpy(rng.uniform(0.2, 2.0, (4, 9)).astype(np.float32)) if with_dt else None
    eager = loop.make_step_fn(model.config)
    fast = loop.make_step_fn(model.config, compile=True)
    assert fast.native and fast.notice == loop.NATIVE_NOTICE
    with torch.no_grad():
        want, got = loop.run_sequence(model, eager, x, dt), loop.run_sequence(model, fast, x, dt)
    np.testing.assert_allclose(got.numpy(), want.numpy(), rtol=1e-5, atol=1e-5)
    l_eager, g_eager = _loss_and_grads(model, x, y, dt, eager)
    l_fast, g_fast = _loss_and_grads(model, x, y, dt, fast)
    assert abs(l_fast - l_eager) <= 1e-6 * abs(l_eager)
    for k, g in g_eager.items():
        scale = float(g.abs().max()) + 1e-6
        assert float((g_fast[k] - g).abs().max()) <= 1e-5 * scale, k
    assert any(float(g.abs().max()) > 0 for k, g in g_eager.items() if k.startswith("cell.mu"))


@needs_cc
def test_native_training_follows_the_eager_loss_curve(tmp_path):
    """Ten Adam steps with the parameter clipping: the same losses, the same final parameters."""
    rng = np.random.default_rng(0)
    x = torch.from_numpy(rng.standard_normal((8, 12, 3)).astype(np.float32))
    y = torch.sin(x.sum(-1, keepdim=True)).repeat(1, 1, 2)
    runs = {}
    for kind, compile in (("eager", False), ("native", True)):
        model = build_model("ltc", 3, seed=0, units=8, output_size=2)
        opt, step_fn = loop.adam(model.parameters(), 0.01), loop.make_step_fn(model.config, compile=compile)
        losses = []
        for _ in range(10):
            loss = ((loop.run_sequence(model, step_fn, x, None) - y) ** 2).mean()
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            model.apply_constraints()
            losses.append(float(loss.detach()))
        runs[kind] = (np.array(losses), model.state_dict())
    np.testing.assert_allclose(runs["native"][0], runs["eager"][0], rtol=1e-5)
    assert runs["eager"][0][-1] < runs["eager"][0][0]
    for k, v in runs["eager"][1].items():
        np.testing.assert_allclose(runs["native"][1][k].numpy(), v.numpy(), rtol=1e-4, atol=1e-5)


def test_where_the_kernel_does_not_apply_it_says_why():
    ncp = build_model("ltc", 3, seed=0, units=12, wiring="auto-ncp", output_size=2)
    assert "sparse wiring" in native.dense_ltc(ncp.config)
    assert "gru cell" in native.dense_ltc(build_model("gru", 3, seed=0, units=4).config)
    euler = build_model("ltc", 3, seed=0, units=4, solver="euler")
    assert "euler solver" in native.dense_ltc(euler.config)
    big = build_model("ltc", 3, seed=0, units=64)
    assert native.dense_ltc(big.config) is None and native.window_too_big(big.config, 64, 64) is None
    assert "exceed" in native.window_too_big(big.config, 4096, 128)
    step_fn = loop.make_step_fn(ncp.config, compile=True)
    assert not step_fn.native and step_fn.notice.startswith(loop.COMPILE_NOTICE)
    assert "sparse wiring" in step_fn.notice


def test_without_a_compiler_training_takes_torch_compile(monkeypatch):
    from ltc_edge.codegen import toolchain

    monkeypatch.setattr(native, "_LIB", {})
    monkeypatch.setattr(toolchain, "find_cc", lambda: None)
    model = build_model("ltc", 3, seed=0, units=4, output_size=2)
    with pytest.raises(native.NativeUnavailable, match="no C compiler"):
        native.library()
    step_fn = loop.make_step_fn(model.config, compile=True)
    assert not step_fn.native and "no C compiler" in step_fn.notice
    monkeypatch.undo()
    monkeypatch.setattr(native, "_LIB", {})
    monkeypatch.setenv("CC", "false")  # a "compiler" that fails: its error is reported
    with pytest.raises(native.NativeUnavailable, match="ltc_window.c failed"):
        native.library()
    monkeypatch.setattr(native, "_LIB", {})
    monkeypatch.delenv("CC")
    assert native.library() is not None  # and a working compiler builds it again


@needs_cc
def test_loading_the_kernel_keeps_ieee_floats_in_the_process():
    """A library built with -ffast-math would set flush-to-zero for the whole process (then the
    runtime's dt checks and hypothesis's float strategies break): subnormals must survive."""
    native.library()
    tiny = np.finfo(np.float32).smallest_subnormal
    assert np.float32(tiny) * np.float32(1.0) > 0
    assert float(torch.tensor(tiny, dtype=torch.float32) * 1.0) > 0


@needs_cc
def test_isolation_hands_a_now_sparse_ltc_to_torch_compile_and_says_so(tmp_path, monkeypatch):
    """digits (the last step's output: last_only) on the native kernel, then 75% isolated: the
    wiring is sparse, the step changes and the log says so; the cut synapses stay zero."""
    from datagen import small_digits

    monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)  # the hand-over, not the compiler, is under test
    t = small_digits(64, 32)
    model = loop.build_task_model(t, "ltc", units=8, wiring="full", seed=0)
    lines = []
    opts = loop.TrainOptions(epochs=3, lr=0.02, batch_size=32, isolate=0.75, isolate_at=1, compile=True)
    m = loop.train(t, model, tmp_path / "m.safetensors", opts, progress=False, log=lines.append)
    assert lines[0] == loop.NATIVE_NOTICE or loop.NATIVE_NOTICE in lines
    after = [s for s in lines if s.startswith("after isolation, ")]
    assert len(after) == 1 and loop.COMPILE_NOTICE in after[0] and "sparse wiring" in after[0]
    gone = np.asarray(model.config["cell"]["wiring"]["adjacency"]) == 0
    assert gone.sum() == 48 and (model.cell.w.detach().numpy()[gone] == 0).all()
    assert m["history"][0]["train_loss"] > m["history"][-1]["train_loss"]
