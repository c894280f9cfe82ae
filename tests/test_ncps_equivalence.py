"""ltc-edge cells against ncps: same parameters, same outputs and states, to <= 1e-5."""

import numpy as np
import pytest
import torch

ncps_torch = pytest.importorskip("ncps.torch")
ncps_wirings = pytest.importorskip("ncps.wirings")

from ltc_edge.nn import functional as F  # noqa: E402
from ltc_edge.nn import from_ncps, make_wiring  # noqa: E402

TOL = 1e-5


def _ncps_wiring(kind, seed):
    W = ncps_wirings
    return {
        "full": lambda: W.FullyConnected(9, output_dim=3, erev_init_seed=seed),
        "random": lambda: W.Random(11, output_dim=4, sparsity_level=0.4, random_seed=seed),
        "ncp": lambda: W.NCP(6, 5, 3, sensory_fanout=3, inter_fanout=2, recurrent_command_synapses=4,
                             motor_fanin=3, seed=seed),
        "auto-ncp": lambda: W.AutoNCP(19, 4, sparsity_level=0.5, seed=seed),
    }[kind]()


def _perturb(module, seed, scale=0.2):
    # move parameters off their init values so that every parameter matters
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            if p.requires_grad:
                p.add_(scale * torch.randn(p.shape, generator=g))
    cell = getattr(module, "rnn_cell", module)
    if hasattr(cell, "apply_weight_constraints"):
        cell.apply_weight_constraints()  # as training does after each step (w, cm, gleak >= 0)


def _run_ncps_cell(cell, x, dts, h):
    """ncps's own sequence loop squeezes per-sample elapsed times to [B], which breaks for
    B > 1; stepping its cell with [B, 1] elapsed times is its intended semantics."""
    ys = []
    for t in range(x.shape[1]):
        y, h = cell(x[:, t], h, dts[:, t:t + 1])
        ys.append(y)
    return torch.stack(ys, 1), h


def _numpy_run(model, x, dts, h):
    raw = {k: v.detach().numpy() for k, v in model.state_dict().items()}
    P = F.model_prepare(F.NumpyOps, raw, model.config)
    h, ys = h.numpy(), []
    for t in range(x.shape[1]):
        y, h = F.model_step(F.NumpyOps, P, x[:, t].numpy(), h, dts[:, t:t + 1].numpy(), model.config)
        ys.append(y)
    return np.stack(ys, 1), h


@pytest.mark.parametrize("implicit", [False, True])
@pytest.mark.parametrize("wiring", ["full", "random", "ncp", "auto-ncp"])
@pytest.mark.parametrize("seed", [1, 77])
def test_ltc_matches_ncps(wiring, seed, implicit):
    torch.manual_seed(seed)
    w = _ncps_wiring(wiring, seed)
    ref = ncps_torch.LTC(6, w, implicit_param_constraints=implicit)
    _perturb(ref, seed)
    model = from_ncps(ref)
    B, T = 3, 100
    x = torch.randn(B, T, 6)
    dts = torch.rand(B, T) * 1.5 + 0.05  # mixed elapsed times, per sample and step
    h0 = 0.1 * torch.randn(B, w.units)
    with torch.no_grad():
        y_ref, h_ref = _run_ncps_cell(ref.rnn_cell, x, dts, h0)
        y, h = model(x, dts, h0)
    assert (y - y_ref).abs().max().item() <= TOL
    assert (h - h_ref).abs().max().item() <= TOL
    y_np, h_np = _numpy_run(model, x, dts, h0)  # the numpy namespace runs the same math
    assert np.abs(y_np - y_ref.numpy()).max() <= TOL
    assert np.abs(h_np - h_ref.numpy()).max() <= TOL


def test_ltc_sequence_module_regular_sampling_matches():
    torch.manual_seed(3)
    ref = ncps_torch.LTC(4, ncps_wirings.AutoNCP(12, 2, seed=5), return_sequences=False)
    model = from_ncps(ref)
    x = torch.randn(2, 40, 4)
    with torch.no_grad():
        y_ref, h_ref = ref(x)  # ncps's own loop, elapsed time 1.0
        y, h = model(x, return_sequences=False)
    assert torch.allclose(y, y_ref, atol=TOL) and torch.allclose(h, h_ref, atol=TOL)


@pytest.mark.parametrize("mode", ["default", "no_gate", "pure"])
@pytest.mark.parametrize("wiring", [None, "full", "random", "ncp", "auto-ncp"])
@pytest.mark.parametrize("seed", [2, 31])
def test_cfc_matches_ncps(mode, wiring, seed):
    torch.manual_seed(seed)
    units = 16 if wiring is None else _ncps_wiring(wiring, seed)
    ref = ncps_torch.CfC(6, units, mode=mode)
    # small: the no_gate CfC is not contractive, large weights make it chaotic and then
    # float32 rounding (numpy vs torch) alone grows past 1e-5 in 100 steps
    _perturb(ref, seed, scale=0.05)
    model = from_ncps(ref)
    B, T = 3, 100
    x = torch.randn(B, T, 6)
    dts = torch.rand(B, T) + 0.1
    n = units if wiring is None else units.units
    h0 = 0.1 * torch.randn(B, n)
    with torch.no_grad():
        y_ref, h_ref = _run_ncps_cell(ref.rnn_cell, x, dts, h0)
        y, h = model(x, dts, h0)
    assert (y - y_ref).abs().max().item() <= TOL
    assert (h - h_ref).abs().max().item() <= TOL
    y_np, _ = _numpy_run(model, x, dts, h0)
    assert np.abs(y_np - y_ref.numpy()).max() <= TOL


def test_cfc_backbone_options_and_projection_match():
    torch.manual_seed(4)
    ref = ncps_torch.CfC(5, 12, proj_size=3, activation="silu", backbone_units=20, backbone_layers=2)
    model = from_ncps(ref)
    x = torch.randn(2, 30, 5)
    with torch.no_grad():
        y_ref, h_ref = ref(x)
        y, h = model(x)
    assert model.config["readout"] and model.output_size == 3
    assert torch.allclose(y, y_ref, atol=TOL) and torch.allclose(h, h_ref, atol=TOL)


@pytest.mark.parametrize("kind,args,n_in", [
    ("full", dict(units=7, output_dim=3, erev_init_seed=5), 5),
    ("full", dict(units=6, self_connections=False, erev_init_seed=8), 3),
    ("random", dict(units=10, output_dim=2, sparsity_level=0.6, random_seed=3), 4),
    ("ncp", dict(inter_neurons=8, command_neurons=6, motor_neurons=2, sensory_fanout=4, inter_fanout=3,
                 recurrent_command_synapses=5, motor_fanin=4, seed=12), 7),
    ("auto-ncp", dict(units=19, output_size=4, sparsity_level=0.5, seed=1), 8),
    ("auto-ncp", dict(units=40, output_size=6, sparsity_level=0.75, seed=2024), 3),
])
def test_wirings_match_ncps(kind, args, n_in):
    ref_cls = {"full": ncps_wirings.FullyConnected, "random": ncps_wirings.Random, "ncp": ncps_wirings.NCP,
               "auto-ncp": ncps_wirings.AutoNCP}[kind]
    ref = ref_cls(**args)
    ref.build(n_in)
    ours = make_wiring(kind, n_in, **args)
    np.testing.assert_array_equal(ours.adjacency_matrix, ref.adjacency_matrix)
    np.testing.assert_array_equal(ours.sensory_adjacency_matrix, ref.sensory_adjacency_matrix)
    assert ours.synapse_count == int(ref.synapse_count)
    assert ours.output_dim == ref.output_dim
    assert ours.layers == [list(ref.get_neurons_of_layer(i)) for i in range(ref.num_layers)]
    assert [ours.get_type_of_neuron(i) for i in range(ours.units)] == \
        [ref.get_type_of_neuron(i) for i in range(ref.units)]


def test_from_ncps_rejects_unsupported():
    with pytest.raises(TypeError, match="unsupported module"):
        from_ncps(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="mixed_memory"):
        from_ncps(ncps_torch.LTC(3, 5, mixed_memory=True))


def test_from_ncps_follows_edited_sparsity_masks():
    """Pruning an ncps LTC by zeroing its sparsity masks changes what it computes: the
    conversion follows the masks, and says so for masks it cannot express."""
    torch.manual_seed(9)
    ref = ncps_torch.LTC(5, ncps_wirings.AutoNCP(15, 3, seed=4))
    _perturb(ref, 9)
    cell = ref.rnn_cell
    before = int(cell.sparsity_mask.sum())
    with torch.no_grad():
        on = cell.sparsity_mask.nonzero()
        for i, j in on[::3]:
            cell.sparsity_mask[i, j] = 0.0
        cell.sensory_sparsity_mask[0, :] = 0.0
    model = from_ncps(ref)
    assert model.counts()["synapses"] == int(cell.sparsity_mask.sum()) < before
    assert model.counts()["sensory_synapses"] == int(cell.sensory_sparsity_mask.sum())
    x, dts = torch.randn(2, 60, 5), torch.rand(2, 60) + 0.1
    h0 = torch.zeros(2, 15)
    with torch.no_grad():
        y_ref, h_ref = _run_ncps_cell(cell, x, dts, h0)
        y, h = model(x, dts, h0)
    assert (y - y_ref).abs().max().item() <= TOL and (h - h_ref).abs().max().item() <= TOL
    with torch.no_grad():
        cell.sparsity_mask[0, 0] = 0.5
    with pytest.raises(ValueError, match="binary masks"):
        from_ncps(ref)
