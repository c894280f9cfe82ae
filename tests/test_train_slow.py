"""Long training runs to accuracy floors (pytest -m slow)."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from ltc_edge.train import tasks  # noqa: E402
from ltc_edge.train.loop import TrainOptions, build_task_model, default_lr, evaluate, train  # noqa: E402

pytestmark = pytest.mark.slow


def _quiet(_msg):
    pass


def test_digits_ltc_ncp_reaches_95_percent(tmp_path):
    t = tasks.load_task("digits")
    # the README's run: ltc train --task digits --model ltc --wiring auto-ncp
    #   --wiring-args '{"sparsity_level": 0.2, "output_size": 12}' --units 48 --epochs 100
    model = build_task_model(t, "ltc", units=48, wiring="auto-ncp",
                             wiring_args={"sparsity_level": 0.2, "output_size": 12}, seed=0)
    d = t.defaults
    m = train(t, model, tmp_path / "d.safetensors",
              TrainOptions(epochs=d["epochs"], lr=default_lr(t, "ltc"), batch_size=d["batch_size"],
                           grad_clip=d["grad_clip"], compile=True), progress=False, log=_quiet)
    assert m["test"]["accuracy"] >= 0.95, m["test"]


def test_pendulum_clone_within_10_percent_of_expert(tmp_path):
    """Plain behaviour cloning, the task's full schedule (200 epochs): within 10% of the expert
    over 20 episodes. (The demo's DAgger recipe gets there in minutes: the next test.)"""
    from ltc_edge.train.pendulum import evaluate_model_closed_loop

    t = tasks.load_task("pendulum")
    model = build_task_model(t, "ltc", units=32, wiring="auto-ncp", seed=0)
    d = t.defaults
    train(t, model, tmp_path / "p.safetensors",
          TrainOptions(epochs=d["epochs"], lr=default_lr(t, "ltc"), batch_size=d["batch_size"],
                       grad_clip=d["grad_clip"], compile=True), progress=False, log=_quiet)
    r = evaluate_model_closed_loop(model, episodes=20, seed=0)
    # returns are negative: within 10% means clone >= 1.1 * expert
    assert r["return_mean"] >= 1.1 * r["expert_return_mean"], r


def test_pendulum_dagger_clone_within_10_percent_of_expert(tmp_path):
    """`ltc demo`'s recipe (ltc_edge.train.dagger's defaults, seed 0; 144 s of CPU in the demo): within
    10% of the expert on the evaluation seeds 0-9, which it never selects on."""
    from ltc_edge.nn import load
    from ltc_edge.train.dagger import clone_pendulum
    from ltc_edge.train.pendulum import evaluate_model_closed_loop

    clone_pendulum(tmp_path / "p.safetensors")
    r = evaluate_model_closed_loop(load(tmp_path / "p.safetensors"), episodes=10, seed=0)
    assert r["return_mean"] >= 1.1 * r["expert_return_mean"], r


def test_compiled_training_matches_eager(tmp_path):
    t = tasks.load_task("cheetah")
    t.train = tasks.Split(t.train.x[:160], t.train.y[:160])
    t.valid = tasks.Split(t.valid.x[:64], t.valid.y[:64])
    t.test = tasks.Split(t.test.x[:64], t.test.y[:64])
    runs = {}
    for comp in (False, True):
        model = build_task_model(t, "ltc", units=32, seed=0)
        runs[comp] = train(t, model, tmp_path / f"c{comp}.safetensors",
                           TrainOptions(epochs=3, lr=0.01, batch_size=16, compile=comp), progress=False, log=_quiet)
    a = np.array([h["train_loss"] for h in runs[False]["history"]])
    b = np.array([h["train_loss"] for h in runs[True]["history"]])
    np.testing.assert_allclose(b, a, rtol=1e-3)
    assert runs[True]["test"]["mse"] == pytest.approx(runs[False]["test"]["mse"], rel=1e-3)
    assert evaluate  # imported for symmetry with the fast tests


@pytest.mark.parametrize("kind,wiring", [("ltc", "full"), ("ltc", "auto-ncp"), ("cfc", None), ("lstm", None),
                                         ("gru", None), ("ctrnn", None), ("node", None)])
@pytest.mark.parametrize("save_gates", [True, False])
def test_compiled_step_has_the_eager_gradients(kind, wiring, save_gates, monkeypatch):
    """--compile's step (gates kept for the backward, or recomputed when they would not fit) gives
    the eager step's loss and gradients, for every cell kind."""
    from ltc_edge.nn.model import build_model
    from ltc_edge.train import loop

    if not save_gates:
        monkeypatch.setattr(loop, "SAVE_GATES_MAX_BYTES", 0)  # the large-model path: recompute
    monkeypatch.setattr(loop.native, "dense_ltc", lambda config: "under test: the torch.compile graph")
    torch.manual_seed(0)
    x, dt = torch.randn(4, 6, 5), torch.rand(4, 6) + 0.5
    grads = []
    for compile in (False, True):
        m = build_model(kind, 5, 3, units=10, wiring=wiring, seed=0)
        fn = loop.make_step_fn(m.config, compile=compile, chunk=3)
        loss = loop.run_sequence(m, fn, x, dt).square().mean()
        loss.backward()
        grads.append((float(loss.detach()), {n: p.grad.clone() for n, p in m.named_parameters() if p.grad is not None}))
    (l0, g0), (l1, g1) = grads
    assert l1 == pytest.approx(l0, rel=1e-5) and g1.keys() == g0.keys() and g0
    for n in g0:
        torch.testing.assert_close(g1[n], g0[n], rtol=1e-4, atol=1e-6)
