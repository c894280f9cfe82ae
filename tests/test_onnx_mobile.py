"""`ltc export --format onnx --ort`: model.ort (ONNX Runtime Mobile's format) and model_b1.onnx
(batch fixed to 1, for NNAPI / CoreML) beside model.onnx, checked against it before they are
written, listed with sha256 in the manifest, onnxruntime's mobile usability verdict recorded and
shown by `ltc info`; the onnxruntime backend runs the .ort."""

import json

import numpy as np
import pytest

pytest.importorskip("onnxruntime")

from typer.testing import CliRunner  # noqa: E402

from ltc_edge import artifact  # noqa: E402
from ltc_edge.cli import app  # noqa: E402
from ltc_edge.export import onnx as X  # noqa: E402
from ltc_edge.export import ort_mobile  # noqa: E402
from ltc_edge.nn import build_model, save  # noqa: E402
from ltc_edge.runtime import load  # noqa: E402
from ltc_edge.runtime.errors import ModelLoadError  # noqa: E402

runner = CliRunner()


def small(kind):
    if kind == "ltc":
        return build_model("ltc", 4, wiring="auto-ncp", units=10, output_size=2, seed=0).eval()
    return build_model("lstm", 4, units=8, output_size=2, seed=0).eval()


@pytest.fixture(scope="module", params=["ltc", "lstm"])
def mobile_export(request, tmp_path_factory):
    """`ltc export --format onnx --ort` of a small LTC-NCP and LSTM (the torch drift check cut to
    100 steps to keep this fast; the ORT Mobile check keeps its 1000)."""
    d = tmp_path_factory.mktemp(f"ort-{request.param}")
    f = save(small(request.param), d / "m.safetensors")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("ltc_edge.export.drift.DRIFT_STEPS", 100)
        r = runner.invoke(app, ["export", str(f), "--format", "onnx", "--ort", "--out", str(d / "onnx")])
    assert r.exit_code == 0, r.output
    assert "model.ort + model_b1.onnx (mobile usability check passes)" in r.output
    return request.param, d / "onnx"


def test_ort_files_listed_with_sha256_and_checked(mobile_export):
    kind, out = mobile_export
    m, paths = artifact.read_verified(out)  # every listed file's size and sha256 checked
    assert {p.name for p in paths.values()} == {"model.onnx", "model.ort", "model_b1.onnx", "MODEL_CARD.md"}
    assert paths["ort"].read_bytes()[4:8] == b"ORTM"  # the ORT format's FlatBuffer identifier
    mobile = m.details["ort_mobile"]
    assert set(mobile["files"]) == {"ort", "model_b1"}
    check = mobile["check"]
    assert check["steps"] == 1000 and check["batch"] == 1 and check["tolerance"] == 1e-5
    assert set(check["max_abs"]) == {"ort", "model_b1"} and max(check["max_abs"].values()) <= 1e-5


def test_mobile_usability_check_passes(mobile_export):
    """onnxruntime's usability checker: NNAPI and both CoreML flavours take the whole batch-1 graph."""
    kind, out = mobile_export
    use = artifact.read(out).details["ort_mobile"]["usability"]
    assert use["passes"] is True and use["checked"] == "model_b1.onnx"
    for ep in ("NNAPI", "CoreML NeuralNetwork", "CoreML MLProgram"):
        p = use["providers"][ep]
        assert p["verdict"] == "YES" and p["partitions"] == 1 and p["supported_nodes"] == p["nodes"] > 0, (kind, ep)
    r = runner.invoke(app, ["info", str(out), "--json"])
    assert r.exit_code == 0 and json.loads(r.output)["ort_mobile"].startswith("usability check passes on model_b1.onnx")
    r = runner.invoke(app, ["info", str(out)])
    assert r.exit_code == 0 and "usability check passes" in r.output


def test_runtime_runs_the_ort_file_and_the_batch1_graph(mobile_export):
    kind, out = mobile_export
    rng = np.random.default_rng(1)
    xs = rng.standard_normal((50, 4)).astype(np.float32)
    ctrls = {name: load(out if name is None else out / name, backend="onnxruntime")
             for name in (None, "model.ort", "model_b1.onnx")}
    assert load(out / "model.ort").backend.name == "onnxruntime"  # the file type alone picks the backend
    assert ctrls[None].backend.describe()["file"].endswith("model.onnx")  # the folder keeps model.onnx
    assert ctrls["model.ort"].backend.describe()["file"].endswith("model.ort")
    ys = {name: np.stack([c.step(x) for x in xs]) for name, c in ctrls.items()}
    assert np.abs(ys["model.ort"] - ys[None]).max() <= 1e-5 and np.abs(ys["model_b1.onnx"] - ys[None]).max() <= 1e-5
    assert np.abs(ys[None]).max() > 1e-3  # a real signal, not zeros
    with pytest.raises(ModelLoadError, match="fixed batch of 1"):
        load(out / "model_b1.onnx", backend="onnxruntime", batch=2)


def test_a_changed_ort_file_is_refused_by_its_sha256(mobile_export, tmp_path):
    import shutil

    kind, out = mobile_export
    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    data = bytearray((copy / "model.ort").read_bytes())
    data[-8] ^= 0xFF
    (copy / "model.ort").write_bytes(bytes(data))
    with pytest.raises(ModelLoadError, match="sha256"):
        load(copy / "model.ort", backend="onnxruntime")


def test_a_batch1_graph_that_differs_is_refused_and_nothing_written(tmp_path, monkeypatch):
    """The check is real: a model_b1.onnx whose weights moved by 1e-3 fails it (nothing written)."""
    from onnx import numpy_helper

    real = ort_mobile.fixed_batch

    def nudged(model, batch=1):
        fixed = real(model, batch)
        init = max(fixed.graph.initializer, key=lambda t: numpy_helper.to_array(t).size)
        init.CopyFrom(numpy_helper.from_array(numpy_helper.to_array(init) + np.float32(1e-3), init.name))
        return fixed

    monkeypatch.setattr(ort_mobile, "fixed_batch", nudged)
    msg = r"model_b1 differs from model.onnx by max-abs [0-9.e-]+ \(> 1e-05\); nothing written"
    with pytest.raises(ort_mobile.MobileCheckError, match=msg):
        X.export(small("ltc"), tmp_path / "o", ort=True, drift_steps=100)
    assert not (tmp_path / "o").exists()


def test_ort_with_another_format_is_one_line(tmp_path, one_line_error):
    f = save(small("ltc"), tmp_path / "m.safetensors")
    for fmt in ("tflite", "c"):
        r = runner.invoke(app, ["export", str(f), "--format", fmt, "--ort", "--out", str(tmp_path / "o")])
        one_line_error(r, f"--ort applies to --format onnx only (ONNX Runtime Mobile), not {fmt}")
    assert not (tmp_path / "o").exists()
    with pytest.raises(ValueError, match="--ort applies to step graphs"):
        X.export(small("ltc"), tmp_path / "o", ort=True, sequence_length=4)
