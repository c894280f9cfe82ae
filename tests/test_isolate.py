"""Isolation during training (ltc train --isolate): what is chosen, that it stays cut out (zero, no
update) through later epochs and a resume, the model file's record, the LTC's synapse-list step
(the same outputs and gradients as the dense one), and one-line refusals."""

import numpy as np
import pytest
import torch
from datagen import small_digits
from typer.testing import CliRunner

from ltc_edge.cli import app
from ltc_edge.nn import functional as F
from ltc_edge.nn.modelfile import load
from ltc_edge.nn.model import build_model
from ltc_edge.train import isolate
from ltc_edge.train.loop import TrainOptions, build_task_model, train

runner = CliRunner()


def _quiet(_msg):
    pass


def _small_digits():
    return small_digits(64, 32)


def test_the_statistics_are_the_ones_a_model_file_may_record():
    from ltc_edge.nn.schema import ISOLATE_BY

    assert tuple(isolate.STATISTICS) == ISOLATE_BY


def test_choose_takes_the_lowest_share_of_each_tensor_by_its_statistic():
    m = build_model("lstm", 3, 2, units=4, seed=0)
    cut = isolate.choose(m, 0.25, "magnitude", None)
    for name, mask in cut.items():
        w = dict(m.named_parameters())[name].detach().numpy()
        assert mask.sum() == round(0.25 * w.size)
        assert np.abs(w[mask]).max() <= np.abs(w[~mask]).min()  # the smallest |w| go
    assert set(cut) == {"cell.weight_ih", "cell.weight_hh"}  # biases and the readout stay


def test_ltc_isolation_cuts_synapses_out_of_training_and_the_wiring(tmp_path):
    t = _small_digits()
    model = build_task_model(t, "ltc", units=8, wiring="full", seed=0)
    lines = []
    opts = TrainOptions(epochs=3, lr=0.02, batch_size=32, isolate=0.75, isolate_by="fisher", isolate_at=1)
    m = train(t, model, tmp_path / "m.safetensors", opts, progress=False, log=lines.append)
    rec = model.config["isolation"]
    assert rec["isolated"] == {"cell.w": 48, "cell.sensory_w": round(0.75 * model.cell.sensory_w.numel())}
    adj = np.asarray(model.config["cell"]["wiring"]["adjacency"])
    assert (adj != 0).sum() == 16 and rec["left"]["cell.w"] == 16
    gone = adj == 0
    for short in ("w", "erev", "mu", "sigma"):  # two epochs after isolation: still exactly zero
        assert (getattr(model.cell, short).detach().numpy()[gone] == 0).all()
    assert any(s.startswith("isolated 75% by fisher after epoch 1: cell.w 48 of 64") for s in lines)
    assert len(m["history"]) == 3 and all(h["train_cpu_s"] > 0 for h in m["history"])
    assert m["best_epoch"] >= 2  # chosen among the epochs after isolation: the file is the isolated model
    saved = load(tmp_path / "m.safetensors")
    assert saved.config["isolation"] == rec
    assert np.array_equal(np.asarray(saved.config["cell"]["wiring"]["adjacency"]), adj)


def test_lstm_isolated_entries_stay_zero_and_a_resume_keeps_them_frozen(tmp_path):
    t = _small_digits()
    opts = TrainOptions(epochs=4, lr=0.02, batch_size=16, seed=1, isolate=0.5, isolate_by="gradient", isolate_at=1)
    full = build_task_model(t, "lstm", units=6, seed=1)
    train(t, full, tmp_path / "full.safetensors", opts, progress=False, log=_quiet)
    w = full.cell.weight_hh.detach().numpy()
    assert (w == 0).sum() == round(0.5 * w.size) and full.config["isolation"]["by"] == "gradient"

    class Stop(Exception):
        pass

    def boom(epoch, batch):
        if epoch == 2 and batch == 1:
            raise Stop

    part = build_task_model(t, "lstm", units=6, seed=1)
    with pytest.raises(Stop):
        train(t, part, tmp_path / "part.safetensors", opts, progress=False, log=_quiet, on_batch=boom)
    fresh = build_task_model(t, "lstm", units=6, seed=7)
    train(t, fresh, tmp_path / "part.safetensors", opts, resume=True, progress=False, log=_quiet)
    for k, v in full.state_dict().items():  # the resumed run kept the same entries frozen at zero
        torch.testing.assert_close(fresh.state_dict()[k], v, rtol=0, atol=1e-6)


def test_magnitude_isolation_before_training(tmp_path):
    t = _small_digits()
    model = build_task_model(t, "gru", units=4, seed=0)
    train(t, model, tmp_path / "m.safetensors", TrainOptions(epochs=1, lr=0.01, batch_size=32, isolate=0.5,
                                                             isolate_at=0), progress=False, log=_quiet)
    assert (model.cell.weight_ih.detach().numpy() == 0).sum() == round(0.5 * model.cell.weight_ih.numel())


@pytest.mark.parametrize("wiring,units", [("auto-ncp", 16), ("random", 12)])
def test_ltc_synapse_lists_equal_the_dense_step_and_its_gradients(wiring, units):
    kw = {"wiring_args": {"sparsity_level": 0.7}} if wiring == "random" else {}
    m = build_model("ltc", 5, 3, units=units, wiring=wiring, seed=0, **kw)
    assert (np.asarray(m.config["cell"]["wiring"]["adjacency"]) != 0).mean() <= F.LISTS_MAX_DENSITY
    x, v0 = torch.randn(4, 5, generator=torch.Generator().manual_seed(0)), torch.rand(4, units)
    out = []
    for training in (False, True):
        m.zero_grad()
        P = m.prepared(training=training)
        assert ("lists" in P["cell"]) == training
        y, v = F.model_step(F.ops_for(x), P, x, v0, 0.5, m.config)
        (y.square().sum() + v.sum()).backward()
        out.append((y.detach(), v.detach(), {n: p.grad.clone() for n, p in m.named_parameters()}))
    (y0, s0, g0), (y1, s1, g1) = out
    torch.testing.assert_close(y1, y0, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(s1, s0, rtol=1e-5, atol=1e-6)
    for n in g0:
        torch.testing.assert_close(g1[n], g0[n], rtol=1e-4, atol=1e-6)


def test_a_dense_wiring_keeps_the_dense_form():
    m = build_model("ltc", 5, 3, units=6, wiring="full", seed=0)
    assert "lists" not in m.prepared(training=True)["cell"]


@pytest.mark.parametrize("args,message", [
    (["--isolate", "1.5"], "--isolate must be in (0, 1), got 1.5"),
    (["--isolate", "0.5", "--isolate-by", "random"], "unknown --isolate-by 'random'; choose from magnitude, gradient, fisher"),
    (["--isolate", "0.5", "--isolate-by", "fisher", "--isolate-at", "0"], "--isolate-by fisher needs gradients"),
    (["--isolate", "0.5", "--isolate-at", "5", "--epochs", "5"], "--isolate-at must be from 0 to 4, got 5"),
])
def test_isolation_options_are_refused_in_one_line(tmp_path, args, message):
    r = runner.invoke(app, ["train", "--task", "cheetah", "--out", str(tmp_path / "m.safetensors"), *args])
    assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output


def test_ltc_magnitude_is_the_effective_conductance_as_ltc_prune_ranks_it():
    """Under implicit constraints a synapse's strength is softplus(w): a raw w of -5 is weak, not strong."""
    from ltc_edge.nn.model import Model

    m = build_model("ltc", 3, 2, units=4, wiring="full", seed=0)
    config = {**m.config, "cell": {**m.config["cell"], "implicit_param_constraints": True}}
    params = {k: v.detach().clone() for k, v in m.state_dict().items()}
    params["cell.w"] = torch.tensor([[-5.0, 0.1, 0.2, 0.3]] * 4)
    cut = isolate.choose(Model(config, params), 0.25, "magnitude", None)["cell.w"]
    assert cut[:, 0].all() and not cut[:, 1:].any()  # |w| would have cut the 0.1 column instead
