"""Cells other than the ncps ones: torch references, solver behaviour, sequence wrapper."""

import numpy as np
import pytest
import torch

from ltc_edge.nn import CELLS, build_model
from ltc_edge.nn import functional as F


def test_lstm_matches_torch_lstmcell():
    torch.manual_seed(0)
    ref = torch.nn.LSTMCell(5, 7)
    model = build_model("lstm", 5, units=7)
    with torch.no_grad():
        model.cell.weight_ih.copy_(ref.weight_ih)
        model.cell.weight_hh.copy_(ref.weight_hh)
        model.cell.bias.copy_(ref.bias_ih + ref.bias_hh)
    x = torch.randn(4, 30, 5)
    h = c = torch.zeros(4, 7)
    with torch.no_grad():
        for t in range(30):
            h, c = ref(x[:, t], (h, c))
        y, state = model(x, return_sequences=False)
    assert torch.allclose(y, h, atol=1e-6)
    assert torch.allclose(state, torch.cat([h, c], 1), atol=1e-6)


def test_gru_matches_torch_grucell():
    torch.manual_seed(1)
    ref = torch.nn.GRUCell(5, 6)
    model = build_model("gru", 5, units=6)
    with torch.no_grad():
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            getattr(model.cell, name).copy_(getattr(ref, name))
    x = torch.randn(3, 25, 5)
    h = torch.zeros(3, 6)
    with torch.no_grad():
        for t in range(25):
            h = ref(x[:, t], h)
        y, _ = model(x, return_sequences=False)
    assert torch.allclose(y, h, atol=1e-6)


@pytest.mark.parametrize("kind", ["ctrnn", "node"])
def test_ode_cells_euler_converges_to_rk4(kind):
    """Fixed-step Euler approaches RK4's answer as the unfold count grows (order 1)."""
    torch.manual_seed(2)
    base = build_model(kind, 3, units=8, solver="rk4", ode_unfolds=32)
    x = torch.randn(2, 5, 3)
    with torch.no_grad():
        y_ref, _ = base(x, dt=0.5)
    errors = []
    for unfolds in (2, 8, 32):
        m = build_model(kind, 3, units=8, solver="euler", ode_unfolds=unfolds)
        m.load_state_dict(base.state_dict())
        with torch.no_grad():
            errors.append((m(x, dt=0.5)[0] - y_ref).abs().max().item())
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.25 * errors[0]


def test_ltc_euler_and_rk4_solvers_agree_with_semi_implicit_at_small_steps():
    torch.manual_seed(3)
    m = build_model("ltc", 4, wiring="auto-ncp", units=12, output_size=3, ode_unfolds=64)
    x = torch.randn(2, 10, 4)
    outs = {}
    for solver in ("semi_implicit", "euler", "rk4"):
        m.config["cell"]["solver"] = solver
        with torch.no_grad():
            outs[solver] = m(x, dt=0.1)[0]
    assert (outs["euler"] - outs["rk4"]).abs().max() < 1e-3
    assert (outs["semi_implicit"] - outs["rk4"]).abs().max() < 1e-3


@pytest.mark.parametrize("kind", list(CELLS))
def test_every_cell_has_one_interface(kind):
    kwargs = {"wiring": "auto-ncp"} if kind == "ltc" else {}
    m = build_model(kind, 5, 2, units=12, seed=0, **kwargs)
    x = torch.randn(3, 7, 5)
    y, h = m(x, dt=torch.rand(3, 7) + 0.1)
    assert y.shape == (3, 7, 2) and h.shape == (3, m.state_size)
    # step-by-step equals the sequence wrapper, with the initial state passed through
    h0 = 0.1 * torch.randn(3, m.state_size)
    dts = torch.rand(3, 7) + 0.1
    with torch.no_grad():
        y_seq, h_seq = m(x, dts, h0)
        h = h0
        for t in range(7):
            y_t, h = m.step(x[:, t], h, dts[:, t])
        assert torch.allclose(y_t, y_seq[:, -1], atol=1e-6) and torch.allclose(h, h_seq, atol=1e-6)
        last, _ = m(x, dts, h0, return_sequences=False)
        assert torch.allclose(last, y_seq[:, -1])
    # gradients reach every parameter
    y.sum().backward()
    assert all(p.grad is not None for p in m.parameters())


def test_dt_changes_ltc_but_not_lstm():
    torch.manual_seed(4)
    x = torch.randn(1, 5, 3)
    ltc = build_model("ltc", 3, units=6)
    lstm = build_model("lstm", 3, units=6)
    with torch.no_grad():
        assert not torch.allclose(ltc(x, dt=0.1)[0], ltc(x, dt=1.0)[0])
        assert torch.allclose(lstm(x, dt=0.1)[0], lstm(x, dt=1.0)[0])


def test_per_sample_dt_in_a_batch_equals_separate_runs():
    """ncps breaks here for batch > 1; each sample must see its own elapsed times."""
    torch.manual_seed(5)
    m = build_model("ltc", 3, wiring="auto-ncp", units=10, output_size=2)
    x = torch.randn(4, 12, 3)
    dts = torch.rand(4, 12) * 2 + 0.01
    with torch.no_grad():
        y, _ = m(x, dts)
        for b in range(4):
            yb, _ = m(x[b:b + 1], dts[b:b + 1])
            assert torch.allclose(y[b:b + 1], yb, atol=1e-6)


def test_bad_shapes_are_clear_errors():
    m = build_model("ltc", 3, units=6)
    with pytest.raises(ValueError, match=r"\[batch, time, 3\]"):
        m(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="dt must be"):
        m(torch.randn(2, 5, 3), dt=torch.ones(3, 5))
    with pytest.raises(ValueError, match="unknown cell kind"):
        build_model("transformer", 3)
    with pytest.raises(ValueError, match="unknown option"):
        build_model("lstm", 3, ode_unfolds=3)


def test_ltc_initialisation_uses_ncps_ranges():
    m = build_model("ltc", 4, units=20, seed=0)
    c = m.cell
    for name, (lo, hi) in {"gleak": (0.001, 1.0), "vleak": (-0.2, 0.2), "cm": (0.4, 0.6), "sigma": (3, 8),
                           "mu": (0.3, 0.8), "w": (0.001, 1.0), "sensory_sigma": (3, 8)}.items():
        v = getattr(c, name)
        assert lo <= v.min().item() and v.max().item() <= hi, name
    adj = np.asarray(m.config["cell"]["wiring"]["adjacency"])
    assert np.array_equal(c.erev.detach().numpy(), adj)  # reversal potentials from polarity


def test_apply_constraints_clips_like_ncps():
    m = build_model("ltc", 2, units=5)
    with torch.no_grad():
        m.cell.w.fill_(-1.0)
        m.cell.vleak.fill_(-1.0)
    m.apply_constraints()
    assert m.cell.w.min().item() == 0.0 and m.cell.vleak.min().item() == -1.0


def test_ltc_state_stays_within_theorem_bounds():
    torch.manual_seed(6)
    m = build_model("ltc", 4, wiring="auto-ncp", units=16, output_size=3)
    raw = {k[5:]: v.detach().numpy() for k, v in m.state_dict().items() if k.startswith("cell.")}
    lo, hi = F.ltc_bounds(raw, m.config["cell"])
    with torch.no_grad():
        _, h = m(10 * torch.randn(8, 200, 4), dt=torch.rand(8, 200) * 5)
    assert (h.numpy() >= lo - 1e-5).all() and (h.numpy() <= hi + 1e-5).all()


@pytest.mark.parametrize("wiring", ["full", "random", "auto-ncp"])
@pytest.mark.parametrize("fixed_dt", [None, 0.3])
def test_ltc_synapse_list_form_equals_dense_form(wiring, fixed_dt):
    """The export/runtime form (synapse lists, Gemm per unfold) is the same function."""
    m = build_model("ltc", 5, 3, wiring=wiring, units=12, seed=4, readout=True,
                    normalization={"input_mean": [0.5] * 5, "input_std": [2.0] * 5,
                                   "output_mean": [1.0] * 3, "output_std": [3.0] * 3})
    raw = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    dense = F.model_prepare(F.NumpyOps, raw, m.config)
    static = F.model_prepare_static(F.NumpyOps, raw, m.config, fixed_dt=fixed_dt)
    assert static["cell"].get("static")
    rng = np.random.default_rng(0)
    h1 = h2 = np.zeros((4, 12), np.float32)
    for _ in range(200):
        x = rng.normal(size=(4, 5)).astype(np.float32)
        dt = np.full((4, 1), 0.3, np.float32) if fixed_dt else rng.uniform(0.05, 2, (4, 1)).astype(np.float32)
        y1, h1 = F.model_step(F.NumpyOps, dense, x, h1, dt, m.config)
        y2, h2 = F.model_step(F.NumpyOps, static, x, h2, dt, m.config)
        assert np.abs(y1 - y2).max() < 1e-5 and np.abs(h1 - h2).max() < 1e-5
