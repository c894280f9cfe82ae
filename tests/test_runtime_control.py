"""Closed loop: `ltc control` and run_episodes give the same Pendulum-v1 returns on the
numpy, onnxruntime, tflite and C backends for a (briefly) cloned pendulum controller."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from ltc_edge.cli import app
from ltc_edge.nn import build_model, save
from ltc_edge.runtime import load
from ltc_edge.runtime.control import run_episodes

pytest.importorskip("gymnasium")
runner = CliRunner()


@pytest.fixture(scope="module")
def pendulum_clone(tmp_path_factory):
    """An NCP LTC behaviour-cloned on the training package's expert for a few seconds (the
    point here is equal returns across backends, not a good controller)."""
    import torch

    pend = pytest.importorskip("ltc_edge.train.pendulum")
    X, Y = pend.demonstrations(episodes=6, seed=123)
    xf, yf = X.reshape(-1, 3), Y.reshape(-1, 1)
    norm = {"input_mean": xf.mean(0).tolist(), "input_std": np.maximum(xf.std(0), 1e-6).tolist(),
            "output_mean": yf.mean(0).tolist(), "output_std": np.maximum(yf.std(0), 1e-6).tolist()}
    model = build_model("ltc", 3, output_size=1, units=10, wiring="auto-ncp", normalization=norm, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=0.02)
    xs = torch.tensor(X[:, :40])
    ys = torch.tensor((Y[:, :40] - yf.mean(0)) / np.maximum(yf.std(0), 1e-6))
    std, mean = float(np.maximum(yf.std(0), 1e-6)[0]), float(yf.mean(0)[0])
    for _ in range(12):
        y, _ = model(xs, dt=pend.DT)
        loss = (((y - mean) / std - ys) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        model.apply_constraints()
    d = tmp_path_factory.mktemp("pend")
    return model, save(model, d / "pendulum.safetensors"), d


def _tflite(model, out):
    litert_torch = pytest.importorskip("litert_torch")
    from ltc_edge.export.graph import build_graph

    graph = build_graph(model)
    out.mkdir(parents=True, exist_ok=True)
    litert_torch.convert(graph, graph.sample_inputs(1)).export(str(out / "model.tflite"))
    from ltc_edge.export.manifest import base_manifest

    base_manifest("tflite", "fp32", model, graph, {"model": out / "model.tflite"}).write(out)
    return out


def test_runner_matches_the_training_evaluator(pendulum_clone):
    """run_episodes (generic gymnasium loop) == ltc_edge.train's evaluate_pendulum."""
    from ltc_edge.train.pendulum import evaluate_pendulum

    _, path, _ = pendulum_clone
    ctrl = load(path)
    ours = run_episodes(ctrl, "Pendulum-v1", episodes=2, seed=5)
    pol = load(path)

    def policy(obs, dt):
        return pol.step(obs.reshape(-1), dt).reshape(1, 1)

    policy.reset = pol.reset
    theirs = evaluate_pendulum(policy, episodes=2, seed=5)
    np.testing.assert_allclose(ours["returns"], theirs["returns"], rtol=1e-9)
    assert ours["dt"] == 0.05 and ours["steps"] == [200, 200]


def test_same_returns_on_every_backend(pendulum_clone):
    pytest.importorskip("onnxruntime")
    pytest.importorskip("ai_edge_litert")
    from ltc_edge.export import get_exporter

    model, path, d = pendulum_clone
    get_exporter("onnx")(model, d / "onnx")
    get_exporter("c")(model, d / "c")
    _tflite(model, d / "tflite")
    sources = {"numpy": path, "onnxruntime": d / "onnx", "tflite": d / "tflite", "c": d / "c"}
    results = {}
    for backend, src in sources.items():
        ctrl = load(src, model_file=path) if backend in ("onnxruntime", "tflite") else load(src)
        assert ctrl.backend_name == backend
        results[backend] = run_episodes(ctrl, "Pendulum-v1", episodes=3, seed=0)["returns"]
    ref = np.asarray(results["numpy"])
    assert np.all(np.isfinite(ref)) and np.ptp(ref) > 0  # three different episodes
    for backend, rets in results.items():
        # float32 rounding differences through 200 closed-loop steps: returns agree to 0.1 %
        np.testing.assert_allclose(rets, ref, rtol=1e-3, err_msg=backend)


def test_ltc_control_command(pendulum_clone, tmp_path):
    _, path, d = pendulum_clone
    out = tmp_path / "r.json"
    result = runner.invoke(app, ["control", str(path), "--env", "Pendulum-v1", "--backend", "numpy",
                                 "--episodes", "2", "--max-steps", "50", "--json-out", str(out)])
    assert result.exit_code == 0, result.output
    assert "return" in result.output and "mean" in result.output
    res = json.loads(out.read_text())
    printed = runner.invoke(app, ["control", str(path), "--env", "Pendulum-v1", "--backend", "numpy",
                                  "--episodes", "2", "--max-steps", "50", "--json"])  # --json: JSON on stdout, as eval
    assert printed.exit_code == 0, printed.output
    assert json.loads(printed.stdout)["returns"] == res["returns"]
    assert res["steps"] == [50, 50] and len(res["returns"]) == 2
    # the same returns as the library call
    ref = run_episodes(load(path), "Pendulum-v1", episodes=2, seed=0, max_steps=50)
    np.testing.assert_allclose(res["returns"], ref["returns"], rtol=1e-9)


def test_ltc_control_errors_are_one_line(pendulum_clone, tmp_path):
    _, path, _ = pendulum_clone
    for args in (["control", str(tmp_path / "missing.safetensors")],
                 ["control", str(path), "--env", "CartPole-v1"],  # 4 observations, model takes 3
                 ["control", str(path), "--env", "NoSuchEnv-v0"],
                 ["control", str(path), "--backend", "tpu"]):
        result = runner.invoke(app, args)
        assert result.exit_code == 1, (args, result.output)
        lines = [line for line in result.output.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("error:"), (args, result.output)
