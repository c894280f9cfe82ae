"""A discrete cell told the elapsed time (`ltc train --dt-input`, config["dt_input"]): the same
answer from torch, every runtime backend and every export, and dt changes it."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ltc_edge.nn import build_model, read, save
from ltc_edge.nn.schema import ModelFileError, validate_config
from ltc_edge.runtime import load


@pytest.fixture
def lstm_dt(tmp_path):
    model = build_model("lstm", 3, 2, units=5, seed=0, dt_input=0.05)
    return model, save(model, tmp_path / "m.safetensors")


def _inputs(batch=4, steps=12):
    rng = np.random.default_rng(0)
    return (rng.normal(size=(batch, steps, 3)).astype(np.float32),
            rng.uniform(0.01, 0.1, size=(batch, steps)).astype(np.float32))


def _torch(model, x, dt):
    with torch.no_grad():
        return model(torch.from_numpy(x), dt=torch.from_numpy(dt))[0].numpy()


def _stream(ctrl, x, dt):
    ctrl.reset(batch=x.shape[0])
    return np.stack([np.array(ctrl.step(x[:, t], dt[:, t])) for t in range(x.shape[1])], 1)


def test_config_and_dt_dependence(lstm_dt):
    model, path = lstm_dt
    config, _ = read(path)
    assert config["dt_input"] == {"scale": 0.05} and config["cell"]["input_size"] == 4
    x, dt = _inputs()
    assert np.abs(_torch(model, x, dt) - _torch(model, x, dt * 3)).max() > 1e-3
    bad = dict(config, dt_input={"scale": -1.0})
    with pytest.raises(ModelFileError, match="dt_input.scale"):
        validate_config(bad)
    no_dt = {k: v for k, v in config.items() if k != "dt_input"}
    with pytest.raises(ModelFileError, match="input_size"):
        validate_config(no_dt)
    with pytest.raises(ValueError, match="dt_input"):
        build_model("gru", 3, 2, units=4, dt_input=0.0)


@pytest.mark.parametrize("backend", ["numpy", "c"])
def test_runtime_backends_match_torch(lstm_dt, backend):
    model, path = lstm_dt
    x, dt = _inputs()
    ctrl = load(path, backend, batch=4)
    assert ctrl.meta.uses_dt
    assert np.abs(_stream(ctrl, x, dt) - _torch(model, x, dt)).max() <= 1e-5


@pytest.mark.parametrize("fmt", ["onnx", "tflite"])
def test_exports_take_dt_and_match_torch(lstm_dt, tmp_path, fmt):
    import importlib

    model, path = lstm_dt
    exporter = importlib.import_module(f"ltc_edge.export.{fmt}")
    man = exporter.export(path, tmp_path / fmt)
    assert man["uses_dt"] and "dt" in [i["name"] for i in man["inputs"]]
    assert man["drift"]["within_budget"]
    x, dt = _inputs()
    ctrl = load(tmp_path / fmt, batch=4)
    assert np.abs(_stream(ctrl, x, dt) - _torch(model, x, dt)).max() <= 1e-4


def test_train_dt_input_scales_by_the_training_median_dt(tmp_path):
    from typer.testing import CliRunner

    from ltc_edge.cli import app
    from ltc_edge.train.tasks import load_task

    rng = np.random.default_rng(1)
    t = np.cumsum(rng.uniform(0.01, 0.09, 300))
    lines = ["t,u,y"] + [f"{a:.5f},{np.sin(a):.5f},{np.cos(a):.5f}" for a in t]
    (tmp_path / "s.csv").write_text("\n".join(lines) + "\n")
    args = ["--task", "csv", "--data", str(tmp_path / "s.csv"), "--inputs", "u", "--targets", "y", "--time", "t",
            "--seq-len", "16"]
    r = CliRunner().invoke(app, ["train", *args, "--model", "gru", "--units", "4", "--epochs", "1", "--dt-input",
                                 "--out", str(tmp_path / "g.safetensors")])
    assert r.exit_code == 0, r.output
    config, _ = read(tmp_path / "g.safetensors")
    td = load_task("csv", data=tmp_path / "s.csv", inputs="u", targets="y", time="t", seq_len=16)
    assert config["dt_input"]["scale"] == pytest.approx(float(np.median(td.train.dt)), rel=1e-6)
    assert load(tmp_path / "g.safetensors").meta.uses_dt
