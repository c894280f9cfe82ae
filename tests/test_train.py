"""Training: task loaders, the loop, checkpoint/resume, csv series, CLI train/eval."""

import gzip
import json
import os
import shutil
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from datagen import small_digits  # noqa: E402
from typer.testing import CliRunner  # noqa: E402

from ltc_edge.cli import app  # noqa: E402
from ltc_edge.train import tasks  # noqa: E402
from ltc_edge.train.loop import (TrainOptions, _load_checkpoint, build_task_model, checkpoint_path, evaluate,  # noqa: E402
                                 metrics_path, train)

ROOT = Path(__file__).resolve().parent.parent
runner = CliRunner()


def _quiet(_msg):
    pass


# -------------------------------------------------------------------------------------- loaders


def test_cheetah_protocol_splits():
    t = tasks.load_task("cheetah")
    # 1000-step traces, windows of 32 with stride 10: starts 0..960 -> 97 windows per file
    assert len(range(0, 1000 - 32 - 1, 10)) == 97
    assert t.valid.x.shape == (5 * 97, 32, 17)
    assert t.test.x.shape == (10 * 97, 32, 17)
    assert t.train.x.shape == (10 * 97, 32, 17)
    assert t.train.y.shape == t.train.x.shape and t.train.x.dtype == np.float32
    assert t.kind == "regression" and t.metric == "mse" and t.normalization is None
    assert t.train.dt is None
    with np.load(tasks.DATA_DIR / "cheetah.npz") as z:
        names = sorted(z.files)
        assert len(names) == 31
        tr15, tr5, tr0 = z[names[15]], z[names[5]], z[names[0]]
    np.testing.assert_array_equal(t.train.x[0], tr15[0:32])
    np.testing.assert_array_equal(t.train.y[0], tr15[1:33])  # next-observation targets
    np.testing.assert_array_equal(t.train.x[1], tr15[10:42])
    np.testing.assert_array_equal(t.test.x[0], tr5[0:32])
    np.testing.assert_array_equal(t.valid.x[96], tr0[960:992])


def test_packed_cheetah_matches_shared_traces():
    src = Path("/work/shared/data/cheetah")
    if not src.is_dir():
        pytest.skip("original traces not available")
    with np.load(tasks.DATA_DIR / "cheetah.npz") as z:
        for name in ("trace_0000", "trace_0017", "trace_0030"):
            np.testing.assert_array_equal(z[name], np.load(src / f"{name}.npy").astype(np.float32))


def test_digits_shapes_and_split():
    t = tasks.load_task("digits")
    assert t.train.x.shape[1:] == (8, 8) and t.train.x.dtype == np.float32
    assert len(t.train) + len(t.valid) + len(t.test) == 1797
    assert (len(t.valid), len(t.test)) == (180, 359)
    assert t.train.y.dtype == np.int64 and set(np.unique(t.train.y)) == set(range(10))
    assert t.kind == "classification" and t.output_size == 10
    again = tasks.load_task("digits")
    np.testing.assert_array_equal(again.test.x, t.test.x)  # fixed seeded split
    x, dt = t.calibration_inputs(16)
    assert x.shape == (16, 8, 8) and dt is None
    # calibration data come from the validation split, never training
    assert all(any(np.array_equal(a, v) for v in t.valid.x) for a in x[:3])


def _write_idx(path, arr, code):
    header = struct.pack(">BBBB", 0, 0, code, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(arr.dtype.newbyteorder(">")).tobytes()
    if str(path).endswith(".gz"):
        data = gzip.compress(data)
    Path(path).write_bytes(data)


def test_idx_parser_and_fashion_loader(tmp_path, rng):
    imgs = rng.integers(0, 256, size=(20, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, size=20).astype(np.uint8)
    _write_idx(tmp_path / "train-images-idx3-ubyte.gz", imgs, 0x08)
    _write_idx(tmp_path / "train-labels-idx1-ubyte", labels, 0x08)
    _write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", imgs[:5], 0x08)
    _write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", labels[:5], 0x08)
    np.testing.assert_array_equal(tasks.read_idx(tmp_path / "train-images-idx3-ubyte.gz"), imgs)
    f32 = rng.normal(size=(3, 4)).astype(np.float32)
    _write_idx(tmp_path / "f.idx", f32, 0x0D)
    np.testing.assert_array_equal(tasks.read_idx(tmp_path / "f.idx"), f32)
    t = tasks.load_task("fashion-mnist", data_dir=tmp_path)
    assert t.train.x.shape == (18, 28, 28) and t.valid.x.shape == (2, 28, 28) and t.test.x.shape == (5, 28, 28)
    assert sorted(np.concatenate([t.train.y, t.valid.y]).tolist()) == sorted(labels.tolist())
    (tmp_path / "bad").write_bytes(b"\x01\x02\x03\x04")
    with pytest.raises(ValueError, match="not an IDX"):
        tasks.read_idx(tmp_path / "bad")
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        tasks.load_task("fashion-mnist", data_dir=tmp_path / "missing")


def _fashion_mnist_or_skip():
    """Debian's dataset-fashion-mnist (30 MB): installed with apt-get when it is missing and we
    may (root, apt-get present, LTC_NO_APT unset), as the qemu tests do for the ARM toolchain."""
    if not tasks.FASHION_MNIST_DIR.is_dir() and not os.environ.get("LTC_NO_APT") and \
            shutil.which("apt-get") and os.geteuid() == 0:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        for cmd in (["apt-get", "install", "-y", "-q", "dataset-fashion-mnist"], ["apt-get", "update", "-q"],
                    ["apt-get", "install", "-y", "-q", "dataset-fashion-mnist"]):  # stale package lists: update once
            if tasks.FASHION_MNIST_DIR.is_dir():
                break
            subprocess.run(cmd, capture_output=True, timeout=900, env=env)
    if not tasks.FASHION_MNIST_DIR.is_dir():
        pytest.skip("dataset-fashion-mnist not installed (apt-get install dataset-fashion-mnist)")


@pytest.mark.slow
def test_fashion_mnist_debian_package(tmp_path):
    """The real Fashion-MNIST files: shapes, and a small LTC-NCP learns real clothes from 6,000
    of the training images in 4 epochs, measured on the official 10,000-image test set."""
    _fashion_mnist_or_skip()
    t = tasks.load_task("fashion-mnist")
    assert t.train.x.shape == (54000, 28, 28) and t.test.x.shape == (10000, 28, 28)
    assert t.output_size == 10 and t.normalization["input_std"][0] == 255.0
    t = tasks.load_task("fashion-mnist", limit=6000)
    model = build_task_model(t, "ltc", units=32, wiring="auto-ncp", seed=0)
    train(t, model, tmp_path / "fm.safetensors", TrainOptions(epochs=4, lr=0.01, batch_size=64, seed=0,
                                                              grad_clip=1.0), progress=False, log=_quiet)
    from ltc_edge.nn import load

    acc = evaluate(load(tmp_path / "fm.safetensors"), t, "test")["accuracy"]
    assert acc > 0.6, acc  # chance is 0.1


def _series_csv(path, n=400, irregular=True, nan_at=None, seed=0):
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(0.05, 0.5, n)) if irregular else np.arange(n, dtype=float)
    a = np.sin(t)
    b = np.cos(0.5 * t) * 3 + 10
    c = 100 + 20 * np.sin(t - 0.3)  # target on a very different scale
    lines = ["t,a,b,label,c"]
    for i in range(n):
        av = "nan" if nan_at == i else f"{a[i]:.6f}"
        lines.append(f"{t[i]:.6f},{av},{b[i]:.6f},x{i % 3},{c[i]:.6f}")
    Path(path).write_text("\n".join(lines) + "\n")
    return t, a, b, c


def test_csv_irregular_time_column(tmp_path):
    f = tmp_path / "s.csv"
    t, a, b, c = _series_csv(f)
    task = tasks.load_task("csv", data=f, inputs="a,2", targets="c", time="t", seq_len=20, stride=10)
    assert task.input_size == 2 and task.output_size == 1 and task.info["inputs"] == ["a", "b"]
    assert task.train.x.shape[1:] == (20, 2) and task.train.dt.shape == task.train.x.shape[:2]
    np.testing.assert_allclose(task.train.x[1, :, 0], a[10:30], atol=1e-6)
    np.testing.assert_allclose(task.train.dt[1], np.diff(t)[9:29], atol=1e-5)
    n_tr = 280  # 70% of 400, split chronologically
    np.testing.assert_allclose(task.normalization["output_mean"], [c[:n_tr].mean()], rtol=1e-5)
    # the saved model takes raw inputs and gives raw outputs; dt changes its answer
    model = build_task_model(task, "ltc", units=8, seed=0)
    m = train(task, model, tmp_path / "m.safetensors", TrainOptions(epochs=3, lr=0.01, batch_size=4),
              progress=False, log=_quiet)
    assert np.isfinite(m["test"]["mse"])
    from ltc_edge.nn.modelfile import load

    net = load(tmp_path / "m.safetensors")
    assert net.config["normalization"]["output_mean"] == task.normalization["output_mean"]
    x = torch.from_numpy(task.test.x[:4])
    dt = torch.from_numpy(task.test.dt[:4])
    with torch.no_grad():
        y1, _ = net(x, dt=dt)
        y2, _ = net(x, dt=dt * 5)
    assert 60 < float(y1.mean()) < 140  # raw target units (c is 100 +- 20)
    assert float((y1 - y2).abs().max()) > 1e-4


def test_csv_errors(tmp_path):
    f = tmp_path / "s.csv"
    _series_csv(f, nan_at=5)
    with pytest.raises(ValueError, match="column 'zz' not found"):
        tasks.load_task("csv", data=f, inputs="zz", targets="c")
    with pytest.raises(ValueError, match="NaN values at line 7$"):  # data row 5: the header is line 1
        tasks.load_task("csv", data=f, inputs="a", targets="c")
    with pytest.raises(ValueError, match="not numeric"):
        tasks.load_task("csv", data=f, inputs="label", targets="c")
    with pytest.raises(ValueError, match="index 9 out of range"):
        tasks.load_task("csv", data=f, inputs="9", targets="c")
    _series_csv(f)
    with pytest.raises(ValueError, match="shorter than the 300-step window"):
        tasks.load_task("csv", data=f, inputs="a", targets="c", seq_len=300)


def test_npz_series(tmp_path, rng):
    x = rng.normal(size=(300, 2))
    np.savez(tmp_path / "d.npz", x=x, y=x[:, :1] * 2, time=np.arange(300) * 0.1)
    task = tasks.load_task("npz", data=tmp_path / "d.npz", inputs="x", targets="y", time="time", seq_len=16)
    assert task.input_size == 2 and task.info["inputs"] == ["x[0]", "x[1]"]
    np.testing.assert_allclose(task.train.dt, 0.1, rtol=1e-5)


def test_dirty_csv_names_every_kind_of_problem_by_file_line(tmp_path):
    """Issue 29: file line numbers (header = line 1; blank lines and a quoted field spanning two
    lines counted), the first three of each kind and a count of the rest, in one line."""
    rows = [f"{0.1 * i:.1f},{i % 7}.5,{i}.25" for i in range(60)]
    rows[4] = "0.4,abc,4.25"            # line 7 (the blank line 3 counts)
    rows[9] = '0.9,"1\n2",9.25'          # a quoted field over lines 12-13: non-numeric at line 12
    rows[20] = "2.0,n/a,20.25"          # line 24
    rows[30] = "3.0,x,30.25"            # line 34: the fourth non-numeric cell, counted only
    for i in (40, 41, 42, 43):          # lines 44-47: empty / NaN targets, three shown
        rows[i] = f"{0.1 * i:.1f},1.5," + ("" if i % 2 else "nan")
    rows[50] = "5.0,1.5,1e39"           # line 54: finite in float64, not in float32
    rows[52] = "5.0,1.5,inf"            # line 56: inf, and the time goes back from 5.1 to 5.0
    f = tmp_path / "dirty.csv"
    f.write_text("t,a,c\n" + rows[0] + "\n\n" + "\n".join(rows[1:]) + "\n")
    with pytest.raises(ValueError) as e:
        tasks.load_task("csv", data=f, inputs="a", targets="c", time="t")
    msg = str(e.value)
    assert "\n" not in msg and msg.startswith(f"{f}: ")
    assert "input column 'a' is not numeric: 'abc' at line 7, '1\\n2' at line 12, 'n/a' at line 24 " \
           "(4 such cells)" in msg
    assert "target column 'c' has empty or NaN values at lines 44, 45, 46 (and 1 more)" in msg
    assert "target column 'c' has infinite values at line 56;" in msg
    assert "target column 'c' has beyond float32's range values at line 54" in msg
    assert "time column 't' does not increase strictly at line 56" in msg
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("a,b,c\n1,2,3\n1,2\n\n4,5,6,7\n1,2,3\n")
    with pytest.raises(ValueError, match=r"lines 3 \(2 fields\), 5 \(4 fields\): the header has 3 fields$"):
        tasks.load_task("csv", data=ragged, inputs="a", targets="c")


def test_npz_problems_are_named_by_array_row(tmp_path, rng):
    x = rng.normal(size=(100, 2))
    x[[3, 8], 1] = np.nan
    np.savez(tmp_path / "d.npz", x=x, y=x[:, :1])
    with pytest.raises(ValueError, match=r"input column 'x' has empty or NaN values at rows 3, 8 \(0-based\)"):
        tasks.load_task("npz", data=tmp_path / "d.npz", inputs="x", targets="y")


def test_timestamps_as_input_and_a_tiny_test_split_are_warned(tmp_path):
    f = tmp_path / "s.csv"
    _series_csv(f, n=300)
    task = tasks.load_task("csv", data=f, inputs="a,t", targets="c", time="t", seq_len=32,
                           split=(0.7, 0.15, 0.14))
    assert task.info["warnings"] == [
        "the time column 't' is also an input: the model sees raw timestamps, which only grow and never repeat "
        "in deployment (dt already reaches it); leave it out of --inputs",
        "the valid split is 45 rows (1 window): its metric is a noisy estimate; use more rows or a larger "
        "--split fraction",
        "the test split is 42 rows (1 window): its metric is a noisy estimate; use more rows or a larger "
        "--split fraction"]
    assert tasks.load_task("csv", data=f, inputs="a", targets="c", time="t", seq_len=8).info["warnings"] == []
    res = runner.invoke(app, ["train", "--task", "csv", "--data", str(f), "--inputs", "a,t", "--targets", "c",
                              "--time", "t", "--split", "0.7,0.15,0.14", "--units", "2", "--epochs", "1",
                              "--batch-size", "4", "--out", str(tmp_path / "m.safetensors"), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert res.stderr.count("warning: ") == 3 and "also an input" in res.stderr and "42 rows" in res.stderr


def test_a_refused_streaming_step_is_reported_not_fatal(tmp_path, monkeypatch):
    """Train's streamed figure: a runtime refusal (a state out of bounds) is a finding in the
    report and the metrics file, never a lost run."""
    from ltc_edge.errors import StateBoundError
    from ltc_edge.train import streaming

    def refuse(*a, **k):
        raise StateBoundError("state of neuron 3 left its bounds")

    monkeypatch.setattr(streaming, "streaming_eval", refuse)
    t = _small_digits(32)
    m = train(t, build_task_model(t, "gru", units=4, seed=0), tmp_path / "m.safetensors",
              TrainOptions(epochs=1, batch_size=16), progress=False, log=_quiet)
    assert m["test_streaming"] == {"backend": "numpy", "error": "state of neuron 3 left its bounds"}
    assert streaming.streaming_phrase("accuracy", m["test_streaming"]) == \
        "streamed test accuracy: not measured (state of neuron 3 left its bounds)"
    assert json.loads(metrics_path(tmp_path / "m.safetensors").read_text())["test_streaming"] == m["test_streaming"]


# -------------------------------------------------------------------------------------- loop


def _small_digits(n_train=256):
    return small_digits(n_train)


def test_short_training_decreases_loss(tmp_path):
    t = _small_digits()
    model = build_task_model(t, "ltc", units=16, wiring="full", seed=0)
    before = evaluate(model, t, "train")
    m = train(t, model, tmp_path / "m.safetensors", TrainOptions(epochs=4, lr=0.02, batch_size=32, grad_clip=1.0),
              progress=False, log=_quiet)
    after = evaluate(model, t, "train")
    hist = [h["train_loss"] for h in m["history"]]
    assert hist[-1] < 0.8 * hist[0] and after["loss"] < 0.8 * before["loss"]
    assert m["valid"]["accuracy"] > 0.3  # chance is 0.1
    saved = json.loads(metrics_path(tmp_path / "m.safetensors").read_text())
    assert saved["best_epoch"] == m["best_epoch"] and saved["test"] == m["test"]


@pytest.mark.parametrize("kind", ["cfc", "ctrnn", "node", "lstm", "gru"])
def test_other_models_train(tmp_path, kind):
    t = _small_digits(64)
    model = build_task_model(t, kind, units=8, seed=0)
    m = train(t, model, tmp_path / "m.safetensors", TrainOptions(epochs=1, lr=0.01, batch_size=32),
              progress=False, log=_quiet)
    assert m["model"] == kind and np.isfinite(m["history"][-1]["train_loss"])


def test_patience_stops_after_epochs_without_a_better_validation(tmp_path, monkeypatch):
    from ltc_edge.train import loop

    t = _small_digits(64)
    real = loop.evaluate
    accuracies = iter([0.5, 0.6, 0.6, 0.55, 0.6, 0.9, 0.9, 0.9])  # best at epoch 2; 3 epochs without better

    def scripted(model, task, split="test", *a, **k):
        got = real(model, task, split, *a, **k)
        return {**got, "accuracy": next(accuracies)} if split == "valid" else got

    monkeypatch.setattr(loop, "evaluate", scripted)
    lines, epochs = [], []
    model = build_task_model(t, "lstm", units=4, seed=0)
    m = train(t, model, tmp_path / "m.safetensors", TrainOptions(epochs=8, lr=0.01, batch_size=32, patience=3),
              progress=False, log=lines.append, on_epoch=epochs.append)
    assert m["epochs_run"] == 5 and m["best_epoch"] == 2 and m["stopped_early"] is True
    # on_epoch (what `ltc sweep` reports live): each epoch's validation and the best so far
    assert [(e["epoch"], e["epochs"], e["valid"], e["best_valid"], e["best_epoch"]) for e in epochs] == [
        (1, 8, 0.5, 0.5, 1), (2, 8, 0.6, 0.6, 2), (3, 8, 0.6, 0.6, 2), (4, 8, 0.55, 0.6, 2), (5, 8, 0.6, 0.6, 2)]
    assert {e["metric"] for e in epochs} == {"accuracy"}
    assert m["options"]["patience"] == 3 and m["valid"]["accuracy"] == 0.6
    assert any(s.startswith("early stop: no better validation accuracy in 3 epochs") for s in lines)
    off = train(t, build_task_model(t, "lstm", units=4, seed=0), tmp_path / "n.safetensors",
                TrainOptions(epochs=2, lr=0.01, batch_size=32), progress=False, log=_quiet)
    assert off["epochs_run"] == 2 and off["stopped_early"] is False  # default: off


def test_patience_flag_is_checked():
    r = runner.invoke(app, ["train", "--task", "cheetah", "--patience", "0", "--out", "/nonexistent/x.safetensors"])
    assert r.exit_code != 0 and "--patience must be from 1 to 1000000, got 0" in r.output


class _Interrupt(Exception):
    pass


def test_resume_after_interrupt_equals_uninterrupted(tmp_path):
    t = _small_digits(128)
    opts = TrainOptions(epochs=4, lr=0.02, batch_size=16, grad_clip=1.0, seed=3)
    full = build_task_model(t, "ltc", units=12, wiring="auto-ncp", seed=3)
    m_full = train(t, full, tmp_path / "full.safetensors", opts, progress=False, log=_quiet)

    def boom(epoch, batch):
        if epoch == 2 and batch == 3:  # mid-epoch 3: epochs 1-2 are checkpointed
            raise _Interrupt

    part = build_task_model(t, "ltc", units=12, wiring="auto-ncp", seed=3)
    with pytest.raises(_Interrupt):
        train(t, part, tmp_path / "part.safetensors", opts, progress=False, log=_quiet, on_batch=boom)
    ck = _load_checkpoint(checkpoint_path(tmp_path / "part.safetensors"))
    assert ck["epoch"] == 2
    fresh = build_task_model(t, "ltc", units=12, wiring="auto-ncp", seed=99)  # other init: overwritten
    m_res = train(t, fresh, tmp_path / "part.safetensors", opts, resume=True, progress=False, log=_quiet)
    for k, v in full.state_dict().items():
        torch.testing.assert_close(fresh.state_dict()[k], v, rtol=0, atol=1e-6)
    assert [h["train_loss"] for h in m_res["history"]] == pytest.approx(
        [h["train_loss"] for h in m_full["history"]], rel=1e-6)
    assert m_res["test"] == pytest.approx(m_full["test"], rel=1e-6)
    assert m_res["best_epoch"] == m_full["best_epoch"]


def test_sigkill_mid_training_then_resume(tmp_path):
    """A real `ltc train` process killed with SIGKILL, resumed with --resume, ends with the
    same model as an uninterrupted run."""
    f = tmp_path / "s.csv"
    _series_csv(f, n=500)
    args = ["--task", "csv", "--data", str(f), "--inputs", "a,b", "--targets", "c", "--time", "t",
            "--seq-len", "16", "--model", "ltc", "--units", "10", "--epochs", "5", "--batch-size", "4",
            "--seed", "1", "--no-compile", "--no-progress"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "ltc_edge.cli", "train"]
    ref = tmp_path / "ref.safetensors"
    subprocess.run(cmd + args + ["--out", str(ref)], check=True, env=env, capture_output=True, timeout=300)
    out = tmp_path / "int.safetensors"
    p = subprocess.Popen(cmd + args + ["--out", str(out)], env=env, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    ck = checkpoint_path(out)
    deadline = time.time() + 120
    while not ck.exists() and time.time() < deadline and p.poll() is None:
        time.sleep(0.05)
    time.sleep(0.3)  # somewhere inside a later epoch
    killed = p.poll() is None
    p.send_signal(signal.SIGKILL)
    p.wait()
    if killed:
        assert _load_checkpoint(ck)["epoch"] < 5
    r = subprocess.run(cmd + args + ["--out", str(out), "--resume"], env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    from safetensors.numpy import load_file

    a, b = load_file(ref), load_file(out)
    for k in a:
        np.testing.assert_allclose(b[k], a[k], rtol=0, atol=1e-6)
    ma, mb = json.loads(metrics_path(ref).read_text()), json.loads(metrics_path(out).read_text())
    assert mb["test"]["mse"] == pytest.approx(ma["test"]["mse"], rel=1e-6)


# -------------------------------------------------------------------------------------- pendulum


def test_pendulum_expert_is_good():
    from ltc_edge.train.pendulum import Expert, evaluate_pendulum

    r = evaluate_pendulum(Expert(), episodes=10, seed=0)
    assert r["return_mean"] > -160 and len(r["returns"]) == 10

    class Zero:  # doing nothing scores far worse: the evaluator measures control
        def __call__(self, obs, dt):
            return np.zeros((1, 1), np.float32)

    assert evaluate_pendulum(Zero(), episodes=5, seed=0)["return_mean"] < -600


def test_dagger_loss_ignores_torque_beyond_the_limit_the_expert_saturates_at():
    from ltc_edge.train.dagger import _error

    y = torch.tensor([2.0, 2.0, -2.0, -2.0, 0.5, 0.5])
    pred = torch.tensor([3.0, 1.5, -2.5, -1.0, 3.0, 0.0])
    assert _error(pred, y).tolist() == pytest.approx([0.0, -0.5, 0.0, 1.0, 2.5, -0.5])


def test_dagger_keeps_the_round_best_on_the_selection_seeds(tmp_path):
    """A few-step clone: the saved model is the round with the best return on the selection
    episodes (not the evaluation seeds 0, 1, ...), which the plain evaluator reproduces."""
    from ltc_edge.nn import load
    from ltc_edge.train.dagger import SELECT_SEED, DaggerOptions, clone_pendulum
    from ltc_edge.train.pendulum import Expert, ModelPolicy, evaluate_pendulum

    opts = DaggerOptions(iterations=2, demo_episodes=3, episodes=2, bc_steps=3, steps=3, select_episodes=2,
                         stop_within=None)
    rec = clone_pendulum(tmp_path / "p.safetensors", opts=opts)
    sel = [h["select_return"] for h in rec["history"]]
    assert len(sel) == 3 and rec["best_iteration"] == int(np.argmax(sel)) and rec["select_return"] == max(sel)
    assert rec["select_seeds"] == [SELECT_SEED, SELECT_SEED + 1] and SELECT_SEED > 1000
    model = load(tmp_path / "p.safetensors")
    assert model.config["normalization"]["output_std"] == [opts.output_std] and rec["train_cpu_s"] > 0
    again = evaluate_pendulum(ModelPolicy(model), episodes=2, seed=SELECT_SEED)["return_mean"]
    assert again == pytest.approx(rec["select_return"], rel=1e-4)
    expert = evaluate_pendulum(Expert(), episodes=2, seed=SELECT_SEED)["return_mean"]
    assert rec["expert_select_return"] == pytest.approx(expert) and rec["select_return"] < expert
    # stopping early: any return within 1e6 x the expert's stops after the first round
    opts.stop_within = 1e6
    assert len(clone_pendulum(tmp_path / "q.safetensors", opts=opts)["history"]) == 1


# -------------------------------------------------------------------------------------- CLI


def _err(res):
    lines = [ln for ln in res.output.strip().splitlines() if ln.strip()]
    return lines[-1] if lines else ""


def test_cli_train_and_eval(tmp_path):
    f = tmp_path / "s.csv"
    _series_csv(f)
    out = tmp_path / "m.safetensors"
    res = runner.invoke(app, ["train", "--task", "csv", "--data", str(f), "--inputs", "a,b", "--targets", "c",
                              "--time", "t", "--seq-len", "20", "--model", "gru", "--units", "8", "--epochs", "2",
                              "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "best epoch" in res.output and out.exists() and metrics_path(out).exists()
    res = runner.invoke(app, ["eval", str(out), "--json"])
    assert res.exit_code == 0, res.output
    got = json.loads(res.output.strip().splitlines()[-1])
    saved = json.loads(metrics_path(out).read_text())
    assert got["mse"] == pytest.approx(saved["test"]["mse"], rel=1e-5)


@pytest.mark.parametrize("args, message", [
    (["--task", "nope"], "unknown task 'nope'"),
    (["--task", "digits", "--model", "transformer"], "unknown model 'transformer'"),
    (["--task", "digits", "--wiring", "mesh"], "unknown wiring 'mesh'"),
    (["--task", "digits", "--model", "lstm", "--wiring", "ncp"], "applies to ltc and cfc only"),
    (["--task", "csv"], "needs --data"),
    (["--task", "digits", "--inputs", "a"], "only apply to --task csv"),
    (["--task", "digits", "--wiring-args", "{bad"], "not valid JSON"),
])
def test_cli_bad_options(tmp_path, args, message):
    res = runner.invoke(app, ["train", *args, "--epochs", "1", "--out", str(tmp_path / "m.safetensors")])
    assert res.exit_code == 1
    assert "error:" in _err(res) and message in _err(res)
    assert "Traceback" not in res.output


def test_cli_csv_errors(tmp_path):
    f = tmp_path / "s.csv"
    _series_csv(f, nan_at=7)
    base = ["train", "--task", "csv", "--data", str(f), "--targets", "c", "--epochs", "1",
            "--out", str(tmp_path / "m.safetensors")]
    res = runner.invoke(app, base + ["--inputs", "b,missing"])
    assert res.exit_code == 1 and "column 'missing' not found" in _err(res)
    res = runner.invoke(app, base + ["--inputs", "a"])
    assert res.exit_code == 1 and "NaN" in _err(res) and "line 9" in _err(res)
    res = runner.invoke(app, base + ["--inputs", "b", "--resume"])
    assert res.exit_code == 1 and "no checkpoint to resume" in _err(res)
    assert not (tmp_path / "m.safetensors").exists()
    res = runner.invoke(app, ["eval", str(tmp_path / "none.safetensors"), "--task", "digits"])
    assert res.exit_code == 1 and "error:" in _err(res)


def test_checkpoint_is_safetensors_not_pickle(tmp_path):
    """No pickle, ever: the checkpoint is a safetensors file with JSON metadata."""
    import json
    import struct

    task = tasks.load_task("digits")
    model = build_task_model(task, "gru", units=8, seed=0)
    train(task, model, tmp_path / "m.safetensors", TrainOptions(epochs=1, lr=0.01, batch_size=64), progress=False,
          log=lambda m: None)
    raw = checkpoint_path(tmp_path / "m.safetensors").read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    meta = json.loads(json.loads(raw[8:8 + n])["__metadata__"]["ltc_edge_checkpoint"])
    assert meta["epoch"] == 1 and meta["version"] == 1
    bad = tmp_path / "bad.ckpt"
    bad.write_bytes(b"\x80\x04garbage")
    with pytest.raises(ValueError, match="not an ltc-edge training checkpoint"):
        _load_checkpoint(bad)


def test_split_fractions_are_literal_and_checked(tmp_path):
    f = tmp_path / "s.csv"
    _series_csv(f)  # 400 rows
    t = tasks.load_task("csv", data=f, inputs="a", targets="c", seq_len=20, stride=20, split=[0.5, 0.1, 0.1])
    assert len(t.train) == 10 and len(t.valid) == 2 and len(t.test) == 2  # rows 280..399 unused
    for bad in ([0.7, 0.2, 0.2], [float("nan"), 0.2, 0.2], [0, 0.5, 0.5], [0.5, 0.5]):
        with pytest.raises(ValueError, match="split"):
            tasks.load_task("csv", data=f, inputs="a", targets="c", split=bad)


def test_train_api_refuses_out_onto_its_data(tmp_path):
    f = tmp_path / "s.csv"
    _series_csv(f)
    before = f.read_bytes()
    task = tasks.load_task("csv", data=f, inputs="a,b", targets="c", seq_len=20)
    with pytest.raises(ValueError, match="is the input"):
        train(task, build_task_model(task, "gru", units=4), f, TrainOptions(epochs=1), progress=False, log=_quiet)
    assert f.read_bytes() == before


def test_pendulum_does_not_import_the_task_registry():
    """tasks.py loads pendulum lazily; pendulum takes its types from taskdata.py (no cycle)."""
    import ast

    tree = ast.parse((ROOT / "ltc_edge" / "train" / "pendulum.py").read_text())
    assert "tasks" not in {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
