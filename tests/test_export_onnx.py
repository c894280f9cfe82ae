"""ONNX export: static unrolled step graphs for every cell kind, precision variants, drift
checks, manifest and the `ltc export` command."""

import json
import re

import numpy as np
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from ltc_edge.export import drift as D  # noqa: E402
from ltc_edge.export import onnx as X  # noqa: E402
from ltc_edge.export.graph import build_graph  # noqa: E402
from ltc_edge.nn import functional as F  # noqa: E402
from ltc_edge.nn.model import build_model  # noqa: E402

KINDS = {
    "ltc": dict(wiring="auto-ncp", units=10, output_size=3),
    "cfc": dict(units=8, backbone_units=16),
    "ctrnn": dict(units=8),
    "node": dict(units=8),
    "lstm": dict(units=8),
    "gru": dict(units=8),
}
N_IN = 5


def make(kind, seed=0):
    m = build_model(kind, N_IN, seed=seed, **KINDS[kind])
    if kind == "ltc":  # move off the init so that every parameter matters
        with torch.no_grad():
            for p in m.parameters():
                p.mul_(1 + 0.2 * torch.rand_like(p))
    return m.eval()


def random_inputs(graph, rng, batch=3):
    feeds = {"x": rng.standard_normal((batch, graph.input_size)).astype(np.float32),
             "state": (0.5 * rng.standard_normal((batch, graph.state_size))).astype(np.float32)}
    if graph.has_dt:
        feeds["dt"] = rng.uniform(0.05, 1.5, (batch, 1)).astype(np.float32)
    return feeds


def torch_step(model, feeds, fixed_dt=None):
    dt = fixed_dt if fixed_dt is not None else (torch.from_numpy(feeds["dt"]) if "dt" in feeds else None)
    with torch.no_grad():
        y, h = model.step(torch.from_numpy(feeds["x"]), torch.from_numpy(feeds["state"]), dt)
    return y.numpy(), h.numpy()


def realistic_npz(path, model, n=40, T=100, dt=0.5, seed=0):
    """AR(1) inputs; regression targets from a different (GRU) model plus noise, so the
    model under test has a real, non-zero error that quantisation must not blow up."""
    rng = np.random.default_rng(seed)
    x = np.zeros((n, T, model.input_size), np.float32)
    x[:, 0] = rng.standard_normal((n, model.input_size))
    for t in range(1, T):
        x[:, t] = 0.9 * x[:, t - 1] + np.sqrt(1 - 0.81) * rng.standard_normal((n, model.input_size))
    teacher = build_model("gru", model.input_size, model.output_size, units=16, seed=5)
    with torch.no_grad():
        y_model, _ = model(torch.from_numpy(x), dt=dt)
        y_teacher, _ = teacher(torch.from_numpy(x))
    y = 0.5 * y_model.numpy() + y_teacher.numpy() + 0.05 * rng.standard_normal(y_model.shape)
    np.savez(path, x=x, y=y.astype(np.float32), dt=np.full((n, T), dt, np.float32))
    return path


# --------------------------------------------------------------------------------------
# fp32 graphs of every cell kind


@pytest.mark.parametrize("kind", list(KINDS))
def test_every_cell_exports_and_matches(kind, tmp_path, rng):
    model = make(kind)
    man = X.export(model, tmp_path / "out", precision="fp32")
    proto = onnx.load(tmp_path / "out" / "model.onnx")
    onnx.checker.check_model(proto, full_check=True)
    assert proto.opset_import[0].version >= 17
    ops = {n.op_type for n in proto.graph.node}
    assert not ops & {"Loop", "If", "Scan"}
    graph = build_graph(model)
    sess = X.session(proto.SerializeToString())
    # dynamic batch: batch 1 and batch 4 both run and match torch per step
    for batch in (1, 4):
        feeds = random_inputs(graph, rng, batch)
        y, h = sess.run(X.OUTPUT_NAMES, feeds)
        ty, th = torch_step(model, feeds)
        assert y.shape == (batch, model.output_size) and h.shape == (batch, model.state_size)
        assert np.abs(y - ty).max() <= 1e-5 and np.abs(h - th).max() <= 1e-5
    # onnx.reference agrees with onnxruntime
    assert X.reference_check(proto, sess, graph) <= 1e-5
    # 1000-step drift with the state fed back
    assert man["drift"]["steps"] >= 1000
    assert man["drift"]["max_abs"] <= 1e-4 and man["drift"]["within_budget"]
    assert [i.name for i in proto.graph.input] == (["x", "state", "dt"] if F.cell_spec(kind).uses_dt else ["x", "state"])
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"


def test_manifest_fields(tmp_path):
    model = make("ltc")
    out = tmp_path / "m"
    man = X.export(model, out)
    on_disk = json.loads((out / "manifest.json").read_text())
    assert on_disk == json.loads(json.dumps(man))
    for key in ("format", "precision", "opset", "node_count", "op_histogram", "size_bytes", "sha256",
                "inputs", "outputs", "drift", "versions"):
        assert key in on_disk, key
    assert on_disk["format"] == "onnx" and on_disk["precision"] == "fp32"
    assert on_disk["size_bytes"] == (out / "model.onnx").stat().st_size
    import hashlib

    assert on_disk["sha256"] == hashlib.sha256((out / "model.onnx").read_bytes()).hexdigest()
    assert sum(on_disk["op_histogram"].values()) == on_disk["node_count"]
    assert [i["name"] for i in on_disk["inputs"]] == ["x", "state", "dt"]
    assert on_disk["inputs"][1]["shape"] == ["batch", model.state_size]
    assert on_disk["outputs"][0] == {"name": "y", "shape": ["batch", 3], "dtype": "float32"}
    for k in ("max_abs", "rel", "steps", "metric", "budget"):
        assert k in on_disk["drift"]
    assert not list(tmp_path.glob(".ltc-export-*"))  # temp folder cleaned up


def ltc_step_node_ceiling(model, fixed_dt):
    """Node count the LTC step needs, derived from the math of the form functional.py gives.

    static (synapse-list) form: the sensory pre-activations once (Gemm); per unfold Gemm
    (pre-activations, the sensory ones as its C) + Sigmoid + cm/Δ·v (Mul) + 2 Gemm (numerator /
    denominator sums, with the constant terms on an always-on synapse) + Div; with a dt input
    cm/Δ once (Div); one Gemm for the output mapping.
    dense form (ncps layout): per unfold Unsqueeze, Sub, Mul, Sigmoid, 2x(Mul, ReduceSum),
    numerator Mul + 3 Add, denominator 3 Add + Div, (+1 Add with a dt input); sensory 8 +
    input mapping 2; cm/Δ 2 Div; output Slice, Mul, Add."""
    U = model.config["cell"]["ode_unfolds"]
    if build_graph(model, fixed_dt=fixed_dt).form == "static":
        return 1 + U * 6 + (0 if fixed_dt else 1) + 1
    return 2 + 8 + 2 + U * (16 if fixed_dt else 17) + 3


@pytest.mark.parametrize("fixed_dt", [None, 0.02])
def test_ltc_step_node_count_ceiling(fixed_dt):
    model = build_model("ltc", 8, wiring="auto-ncp", units=19, output_size=4, seed=0)
    proto = X.to_onnx(build_graph(model, fixed_dt=fixed_dt))
    hist = X.op_histogram(proto)
    assert len(proto.graph.node) <= ltc_step_node_ceiling(model, fixed_dt), hist
    assert hist.get("Sigmoid") == 6  # one per unfold, sensory and recurrent synapses together
    assert "Constant" not in hist  # constants are initializers, folded


def test_fixed_dt_graph_has_no_dt_input_and_matches(tmp_path, rng):
    for kind in ("ltc", "ctrnn"):
        model = make(kind)
        man = X.export(model, tmp_path / kind, fixed_dt=0.1)
        proto = onnx.load(tmp_path / kind / "model.onnx")
        assert [i.name for i in proto.graph.input] == ["x", "state"]
        assert man["fixed_dt"] == 0.1 and [i["name"] for i in man["inputs"]] == ["x", "state"]
        graph = build_graph(model, fixed_dt=0.1)
        feeds = random_inputs(graph, rng)
        y, h = X.session(proto).run(X.OUTPUT_NAMES, feeds)
        ty, th = torch_step(model, feeds, fixed_dt=0.1)
        assert np.abs(y - ty).max() <= 1e-5 and np.abs(h - th).max() <= 1e-5
        assert man["drift"]["max_abs"] <= 1e-4


def test_fixed_dt_graph_is_smaller():
    model = build_model("ltc", 8, wiring="auto-ncp", units=19, output_size=4, seed=0)
    n_dt = len(X.to_onnx(build_graph(model)).graph.node)
    n_fixed = len(X.to_onnx(build_graph(model, fixed_dt=0.02)).graph.node)
    assert n_fixed < n_dt


def test_sequence_graph_matches_forward(tmp_path, rng):
    model = make("ltc")
    graph = build_graph(model, sequence_length=7)
    proto = X.to_onnx(graph)
    assert not {n.op_type for n in proto.graph.node} & {"Loop", "If", "Scan"}
    x = rng.standard_normal((2, 7, N_IN)).astype(np.float32)
    dt = rng.uniform(0.1, 1.0, (2, 7, 1)).astype(np.float32)
    s = np.zeros((2, model.state_size), np.float32)
    y, h = X.session(proto).run(X.OUTPUT_NAMES, {"x": x, "state": s, "dt": dt})
    with torch.no_grad():
        ty, th = model(torch.from_numpy(x), dt=torch.from_numpy(dt))
    assert np.abs(y - ty.numpy()).max() <= 1e-5 and np.abs(h - th.numpy()).max() <= 1e-5


# --------------------------------------------------------------------------------------
# fp16 and int8


def test_fp16_keeps_float32_io_and_drift(tmp_path):
    model = make("ltc")
    man = X.export(model, tmp_path / "h", precision="fp16")
    proto = onnx.load(tmp_path / "h" / "model.onnx")
    f32 = onnx.TensorProto.FLOAT
    assert all(v.type.tensor_type.elem_type == f32 for v in list(proto.graph.input) + list(proto.graph.output))
    assert any(t.data_type == onnx.TensorProto.FLOAT16 for t in proto.graph.initializer)
    assert 0 < man["drift"]["max_abs"] <= 1e-2
    assert man["reference_evaluator_max_abs"] <= 1e-2


def _float_matrices(proto):
    from ltc_edge.export.int8_weights import MIN_ELEMENTS

    return [t.name for t in proto.graph.initializer if t.data_type == onnx.TensorProto.FLOAT and len(t.dims) == 2
            and int(np.prod(t.dims)) >= MIN_ELEMENTS]


@pytest.mark.parametrize("kind", ["ltc", "lstm"])
def test_int8_weight_only_within_metric_budget(kind, tmp_path):
    model = make(kind) if kind != "ltc" else build_model("ltc", 8, wiring="auto-ncp", units=19, output_size=4, seed=0)
    npz = realistic_npz(tmp_path / "cal.npz", model)
    man = X.export(model, tmp_path / "q", precision="int8", calibration=str(npz))
    proto = onnx.load(tmp_path / "q" / "model.onnx")
    hist, quant = X.op_histogram(proto), man["quantization"]
    assert quant["scheme"] == "weight-only" and quant["float_weights"] == []
    assert "QuantizeLinear" not in hist and "DequantizeLinear" not in hist  # float compute, int8 storage
    int8 = {t.name for t in proto.graph.initializer if t.data_type == onnx.TensorProto.INT8}
    assert int8 == {v["stored_as"] for v in quant["int8_weights"].values()} and len(int8) >= 2
    assert _float_matrices(proto) == []  # every weight matrix is int8
    metric = man["drift"]["metric"]
    assert metric["name"] == "mse" and metric["torch_fp32"] > 0.01  # a real error to compare
    assert metric["rel_delta"] <= 0.05 and man["drift"]["within_budget"]
    assert man["drift"]["max_abs"] > 1e-4  # it really is quantised
    if kind == "ltc":  # the numerator / denominator sums read int8 weights too
        assert {"cell__we", "cell__w", "cell__sv", "cell__sx"} <= set(quant["int8_weights"])
    # stepped by the runtime with its default guards, the int8 LTC keeps to the paper's bounds
    from ltc_edge.runtime import load as load_controller

    with np.load(npz) as z:
        x, dt = z["x"], z["dt"]
    ctrl = load_controller(tmp_path / "q", backend="onnxruntime", batch=x.shape[0])
    ctrl.reset(x.shape[0])
    for t in range(x.shape[1]):
        ctrl.step(x[:, t], dt[:, t:t + 1])  # raises StateBoundError on a violation


def _optimized_nodes(proto, tmp_path, name):
    """Node count of the graph onnxruntime runs (after its load-time optimisations)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.optimized_model_filepath = str(tmp_path / f"{name}.opt.onnx")
    so.log_severity_level = 3
    ort.InferenceSession(proto.SerializeToString(), so, providers=["CPUExecutionProvider"])
    return len(onnx.load(tmp_path / f"{name}.opt.onnx").graph.node)


def test_int8_ltc_onnx_pays(tmp_path):
    """Issue 14: the int8 ONNX of an LTC is smaller than the fp32 one, its weights >= 3x
    smaller, within the drift budget, exported in seconds, and onnxruntime runs the same graph
    as for fp32 (the int8 weights are dequantised once, when the file is loaded)."""
    import time

    from ltc_edge.export.int8_weights import weight_bytes

    model = build_model("ltc", 8, wiring="auto-ncp", units=19, output_size=4, seed=0)
    npz = realistic_npz(tmp_path / "cal.npz", model)
    X.export(model, tmp_path / "f", precision="fp32", calibration=str(npz))
    t = time.perf_counter()
    man = X.export(model, tmp_path / "q", precision="int8", calibration=str(npz))
    seconds = time.perf_counter() - t
    files = {p: tmp_path / p / "model.onnx" for p in ("f", "q")}
    fp32, int8 = (onnx.load(files[p]) for p in ("f", "q"))
    assert files["q"].stat().st_size < 0.6 * files["f"].stat().st_size
    assert weight_bytes(fp32) >= 3 * weight_bytes(int8)
    assert man["quantization"]["weight_bytes"] == weight_bytes(int8)
    assert man["reference_evaluator_max_abs"] <= 1e-4  # onnx.reference runs it as onnxruntime does
    assert man["drift"]["within_budget"] and man["drift"]["metric"]["rel_delta"] <= 0.05
    assert seconds < 15, f"int8 export took {seconds:.1f} s"
    assert _optimized_nodes(int8, tmp_path, "q") == _optimized_nodes(fp32, tmp_path, "f")


def test_int8_ltc_pair_keeps_the_state_bound():
    """The numerator weights we = w * erev are read back as w_int8 * erev_int8, every int8
    reversal potential within its neuron's range: each update stays a positive mix inside
    the bounds."""
    from ltc_edge.export.int8_weights import ltc_pair_int8

    rng = np.random.default_rng(3)
    live = rng.random((60, 7)) < 0.3
    w = np.where(live, np.exp(rng.normal(-1, 1.5, (60, 7))), 0.0).astype(np.float32)  # weights over decades
    erev = rng.uniform(-3, 2.5, (60, 7))
    we = (w * erev).astype(np.float32)
    (eq, s_e), (wq, s_w) = ltc_pair_int8(we, w)
    assert eq.dtype == wq.dtype == np.int8 and s_e.shape == s_w.shape == (7,)
    assert (wq >= 0).all() and np.abs(wq * s_w - w).max() <= 0.5 * s_w.max() * (1 + 1e-6)
    lo = np.where(live, erev, np.inf).min(0)
    hi = np.where(live, erev, -np.inf).max(0)
    implied = eq * s_e.astype(np.float64)
    rows, cols = np.nonzero(live)
    assert (implied[rows, cols] >= lo[cols] - 1e-6).all() and (implied[rows, cols] <= hi[cols] + 1e-6).all()
    err = (np.abs(implied - erev) / s_e)[live]  # in int8 steps: half a step, one where clipped into range
    assert err.max() <= 1 + 1e-5 and np.mean(err <= 0.5 + 1e-5) > 0.9
    assert ltc_pair_int8(we, -w) is None  # negative weights: no bound to keep


def test_int8_weight_only_search_leaves_costliest_matrices_float():
    """Over budget, matrices go back to float one at a time, largest relative error first
    (the LTC's w with its numerator w * erev)."""
    from ltc_edge.export.int8_weights import weight_only_int8
    from ltc_edge.export.quantize import weight_only_search

    model = build_model("ltc", 8, wiring="auto-ncp", units=19, output_size=4, seed=0)
    fp32 = X.to_onnx(build_graph(model))
    errors = weight_only_int8(fp32)[1]["int8_weights"]
    order = sorted(errors, key=lambda n: -errors[n]["rel_error"])
    seen = []

    def check(q):  # within budget once two matrices are float
        n_float = len(_float_matrices(q))
        seen.append(n_float)
        return {"within_budget": n_float >= 2}

    q, info, drift = weight_only_search(fp32, check)
    assert drift["within_budget"] and seen[0] == 0 and seen[-1] >= 2 and seen == sorted(seen)
    assert order[0] in info["float_weights"] and sorted(_float_matrices(q)) == info["float_weights"]
    assert set(info["int8_weights"]) == set(order) - set(info["float_weights"])
    assert "cell__we" not in info["float_weights"] or "cell__w" in info["float_weights"]
    _, info = weight_only_int8(fp32, keep_float=["cell__we"])
    assert info["float_weights"] == ["cell__w", "cell__we"]
    q, info, drift = weight_only_search(fp32, lambda q: {"within_budget": False})  # never: the full int8
    assert not drift["within_budget"] and info["float_weights"] == []


def test_int8_sequence_graph_stores_each_matrix_once(tmp_path):
    model = build_model("ltc", 8, wiring="auto-ncp", units=19, output_size=4, seed=0)
    npz = realistic_npz(tmp_path / "cal.npz", model, n=10, T=20)
    step = X.export(model, tmp_path / "s", precision="int8", calibration=str(npz))
    seq = X.export(model, tmp_path / "q", precision="int8", calibration=str(npz), sequence_length=5)
    assert seq["quantization"]["int8_weights"].keys() == step["quantization"]["int8_weights"].keys()
    protos = [onnx.load(tmp_path / p / "model.onnx") for p in ("s", "q")]
    int8 = [sorted(len(t.raw_data) for t in p.graph.initializer if t.data_type == onnx.TensorProto.INT8)
            for p in protos]
    assert int8[0] == int8[1] and sum(int8[1]) > 0.7 * seq["quantization"]["weight_bytes"]
    proto = protos[1]
    assert X.op_histogram(proto)["Cast"] == len(seq["quantization"]["int8_weights"])  # one read-back each


def test_int8_static_leaves_the_costliest_products_float_when_over_budget(tmp_path):
    """Static QDQ (a calibration method given): inputs of very different ranges share one
    int8 scale, the fully quantised graph misses the metric budget, and the export leaves the
    products that cost most out of int8. Weight-only int8 (the default) gives each input its
    own scale and fits the budget with every matrix int8."""
    model = build_model("ltc", 8, wiring="auto-ncp", units=19, output_size=4, seed=0)
    npz = realistic_npz(tmp_path / "cal.npz", model)
    with np.load(npz) as z:
        data = dict(z)
    scale = np.array([3000.0, 1, 1, 1, 1, 1, 1, 0.001], np.float32)  # same model, inputs in other units
    data["x"] = data["x"] * scale
    with torch.no_grad():
        model.cell.input_w.div_(torch.from_numpy(scale))
    np.savez(tmp_path / "scaled.npz", **data)
    graph = build_graph(model)
    fp32 = X.to_onnx(graph)
    ref = D.load_reference(str(tmp_path / "scaled.npz"), model.config)
    from ltc_edge.export.quantize import int8_onnx

    q, _, _ = int8_onnx(fp32, model, graph, ref, "minmax")  # every product int8
    all_int8 = D.drift_check(model, X.runner(X.session(q.SerializeToString())), ref, "int8")
    man = X.export(model, tmp_path / "q", precision="int8", calibration=str(tmp_path / "scaled.npz"),
                   calibration_method="minmax")
    quant = man["quantization"]
    assert quant["scheme"] == "static" and quant["method"] == "minmax"
    assert quant["excluded_nodes"] and quant["quantized_nodes"] >= 5  # most products stay int8
    assert man["drift"]["within_budget"] and man["drift"]["metric"]["rel_delta"] <= 0.05
    proto = onnx.load(tmp_path / "q" / "model.onnx")
    excluded = [n for n in proto.graph.node if n.name in quant["excluded_nodes"]]
    assert len(excluded) == len(quant["excluded_nodes"]) and all(n.op_type == "Gemm" for n in excluded)
    assert not all_int8["within_budget"] and all_int8["metric"]["rel_delta"] > 0.05
    wo = X.export(model, tmp_path / "w", precision="int8", calibration=str(tmp_path / "scaled.npz"))
    assert wo["drift"]["within_budget"] and wo["quantization"]["float_weights"] == []
    assert wo["quantization"]["int8_weights"]["cell__sx"]["scale_axis"] == 0  # one scale per input


def test_int8_calibration_methods(tmp_path):
    model = make("gru")
    npz = realistic_npz(tmp_path / "cal.npz", model, n=10, T=50)
    for method in ("percentile", "entropy"):
        man = X.export(model, tmp_path / method, precision="int8", calibration=str(npz),
                       calibration_method=method, force=True)
        assert man["quantization"]["method"] == method
        assert "QuantizeLinear" in man["op_histogram"]


def test_calibration_reader_rejects_bad_npz(tmp_path):
    model = make("gru")
    np.savez(tmp_path / "nox.npz", inputs=np.zeros((2, 3, N_IN)))
    np.savez(tmp_path / "shape.npz", x=np.zeros((2, 3, N_IN + 1)))
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    for name, msg in (("nox", "needs an array 'x'"), ("shape", "must be [N, T, 5]"), ("junk", "not a readable")):
        with pytest.raises(ValueError, match=re.escape(msg)):
            D.load_reference(str(tmp_path / f"{name}.npz"), model.config)  # noqa: B023


# --------------------------------------------------------------------------------------
# drift budget: over budget -> clear error and no file; --force writes it


def test_over_budget_fails_without_file_and_force_writes(tmp_path, monkeypatch):
    from ltc_edge.export.manifest import DriftError

    monkeypatch.setitem(D.BUDGETS, "fp16", {"max_abs": 1e-9})
    model = make("ltc")
    out = tmp_path / "o"
    with pytest.raises(DriftError, match="over its drift budget.*--force"):
        X.export(model, out, precision="fp16")
    assert not (out / "model.onnx").exists() and not (out / "manifest.json").exists()
    assert not list(tmp_path.glob(".ltc-export-*"))
    man = X.export(model, out, precision="fp16", force=True)
    assert (out / "model.onnx").exists() and man["forced"] and not man["drift"]["within_budget"]


# --------------------------------------------------------------------------------------
# CLI


@pytest.fixture
def cli(tmp_path):
    from typer.testing import CliRunner

    from ltc_edge.cli import app
    from ltc_edge.nn.modelfile import save

    path = tmp_path / "ltc.safetensors"
    save(make("ltc"), path)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, ["export", *map(str, args)])

    return invoke, path


def test_cli_export_onnx(cli, tmp_path):
    invoke, path = cli
    r = invoke(path, "--format", "onnx", "--fixed-dt", "0.05", "--out", tmp_path / "e")
    assert r.exit_code == 0, r.output
    assert "onnx fp32" in r.output and "drift max-abs" in r.output
    man = json.loads((tmp_path / "e" / "manifest.json").read_text())
    assert man["fixed_dt"] == 0.05


def test_cli_errors_are_one_line(cli, tmp_path):
    invoke, path = cli
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"garbage!")
    np.savez(tmp_path / "wrong.npz", x=np.zeros((2, 3, 2), np.float32))
    cases = [
        ((path, "--format", "pdf", "--out", tmp_path / "x"), "unknown export format 'pdf'"),
        ((path, "--format", "onnx", "--precision", "int4", "--out", tmp_path / "x"), "unknown precision"),
        ((path, "--format", "onnx", "--precision", "int8", "--out", tmp_path / "x"), "int8 needs calibration"),
        ((tmp_path / "none.safetensors", "--format", "onnx", "--out", tmp_path / "x"), "no such model file"),
        ((bad, "--format", "onnx", "--out", tmp_path / "x"), "not a safetensors file"),
        ((path, "--format", "onnx", "--precision", "int8", "--calibration", tmp_path / "no.npz",
          "--out", tmp_path / "x"), "not found"),
        ((path, "--format", "onnx", "--precision", "int8", "--calibration", tmp_path / "wrong.npz",
          "--out", tmp_path / "x"), "x must be"),
        ((path, "--format", "onnx", "--precision", "int8", "--calibration", tmp_path / "wrong.npz",
          "--calibration-method", "median", "--out", tmp_path / "x"), "unknown calibration method"),
        ((path, "--format", "onnx", "--calibration-method", "entropy", "--out", tmp_path / "x"), "int8 only"),
        ((path, "--format", "onnx", "--fixed-dt", "-1", "--out", tmp_path / "x"), "positive"),
    ]
    for args, msg in cases:
        r = invoke(*args)
        assert r.exit_code == 1, (args, r.output)
        assert msg in r.output, (msg, r.output)
        assert "Traceback" not in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "x" / "model.onnx").exists()


def test_cli_format_c_dispatches_to_c_exporter(cli, tmp_path, monkeypatch):
    import ltc_edge.export as E

    seen = {}

    def fake(model, out_dir, **kw):
        seen.update(kw, kind=model.kind, out=out_dir)
        return {"format": "c", "precision": kw["precision"]}

    monkeypatch.setattr(E, "get_exporter", lambda fmt: fake if fmt == "c" else pytest.fail(fmt))
    invoke, path = cli
    r = invoke(path, "--format", "c", "--fixed-dt", "0.1", "--out", tmp_path / "c")
    assert r.exit_code == 0, r.output
    assert seen["kind"] == "ltc" and seen["fixed_dt"] == 0.1 and seen["precision"] == "fp32"
    assert "calibration_method" not in seen  # only passed when given


def test_get_exporter_resolves_formats():
    import ltc_edge.export as E

    assert E.get_exporter("onnx") is X.export
    from ltc_edge.export import tflite

    assert E.get_exporter("tflite") is tflite.export
