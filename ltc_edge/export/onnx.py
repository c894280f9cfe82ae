"""ONNX export: the unrolled static step graph (graph.py) -> .onnx, fp32 / fp16 / int8
(weight-only int8 by default; static QDQ with a calibration method: quantize.py), checked
(onnx.checker, onnxruntime vs onnx.reference) and drift-checked before it is written.
With ort=True (`--ort`) also model.ort and model_b1.onnx for ONNX Runtime Mobile (ort_mobile.py).

    export(model, out_dir, precision="fp32", calibration=None, fixed_dt=None, force=False,
           calibration_method=None, ort=False) -> manifest dict (also out_dir/manifest.json)
"""

from __future__ import annotations

import collections
import io
import warnings
from pathlib import Path

import numpy as np

from .. import precision as precisions
from .manifest import TempDir, as_model, base_manifest, check_out_dir, check_precision, finish, versions

OPSET = 18
FILE = "model.onnx"
OUTPUT_NAMES = ["y", "new_state"]
CALIBRATION_METHODS = ("minmax", "percentile", "entropy")
LOOP_OPS = {"Loop", "If", "Scan"}


def to_onnx(graph, opset: int = OPSET):
    """torch -> ONNX ModelProto: TorchScript tracing (every Python loop unrolled), dynamic
    batch, constants folded (onnxscript's optimizer), checked."""
    import onnx
    import onnxscript
    import torch

    if opset < 17:
        raise ValueError(f"opset must be >= 17, got {opset}")
    names = graph.input_names()
    f = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(graph, graph.sample_inputs(2), f, dynamo=False, opset_version=opset,
                          input_names=names, output_names=OUTPUT_NAMES, do_constant_folding=True,
                          dynamic_axes={n: {0: "batch"} for n in names + OUTPUT_NAMES})
    model = onnxscript.optimizer.optimize(onnx.load_from_string(f.getvalue()))
    model.producer_name, model.producer_version = "ltc-edge", versions().get("ltc-edge", "")
    model.doc_string = (f"ltc-edge {graph.config['cell']['kind']} {graph.kind} graph "
                        f"({'fixed dt ' + str(graph.fixed_dt) if graph.fixed_dt else 'dt input'})")
    onnx.checker.check_model(model, full_check=True)
    bad = LOOP_OPS & {n.op_type for n in model.graph.node}
    if bad:  # pragma: no cover - would be a bug in graph.py
        raise RuntimeError(f"exported graph has control flow ops {sorted(bad)}")
    return model


def set_metadata(onnx_model, config, precision, fixed_dt, graph, drift) -> None:
    """metadata_props: the model's kind, sizes, I/O names, dt, training data hash, drift
    (export/card.py's facts, the same the model card shows)."""
    import onnx

    from .card import onnx_metadata
    from .manifest import io_specs

    props = onnx_metadata(config, precision, fixed_dt, io_specs(graph.input_shapes()),
                          io_specs(graph.output_shapes()), drift, versions().get("ltc-edge", ""))
    onnx.helper.set_model_props(onnx_model, props)


def op_histogram(model) -> dict:
    return dict(sorted(collections.Counter(n.op_type for n in model.graph.node).items()))


def to_fp16(model):
    """fp16 weights and compute, fp32 inputs/outputs (onnxruntime.transformers.float16)."""
    from onnxruntime.transformers.float16 import convert_float_to_float16
    from onnxruntime.transformers.onnx_model import OnnxModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        half = OnnxModel(convert_float_to_float16(model, keep_io_types=True))
    half.topological_sort(is_deterministic=True)  # the converter appends its input Casts last
    return half.model


def session(model_or_bytes, threads: int = 1):
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = threads
    so.inter_op_num_threads = 1
    so.log_severity_level = 3
    data = model_or_bytes if isinstance(model_or_bytes, (bytes, str)) else model_or_bytes.SerializeToString()
    return ort.InferenceSession(data, so, providers=["CPUExecutionProvider"])


def runner(sess):
    """(x, state, dt) -> (y, new_state) through an onnxruntime session."""
    names = [i.name for i in sess.get_inputs()]

    def run(x, state, dt):
        feeds = {"x": x, "state": state}
        if "dt" in names:
            feeds["dt"] = dt if dt is not None else np.ones((x.shape[0], 1), np.float32)
        return sess.run(OUTPUT_NAMES, feeds)

    return run


def reference_check(model, sess, graph, batch: int = 3, seed: int = 0) -> float:
    """max |onnxruntime - onnx.reference.ReferenceEvaluator| over both outputs, one step."""
    from onnx.reference import ReferenceEvaluator

    rng = np.random.default_rng(seed)
    feeds = {"x": rng.standard_normal((batch, graph.input_size)).astype(np.float32),
             "state": (0.5 * rng.standard_normal((batch, graph.state_size))).astype(np.float32)}
    if graph.has_dt:
        feeds["dt"] = rng.uniform(0.05, 1.0, (batch, 1)).astype(np.float32)
    a = sess.run(OUTPUT_NAMES, feeds)
    b = ReferenceEvaluator(model).run(OUTPUT_NAMES, feeds)
    return float(max(np.abs(np.asarray(u, np.float64) - np.asarray(v, np.float64)).max() for u, v in zip(a, b)))


def check_options(precision, calibration, calibration_method, kw) -> None:
    """The ONNX exporter's options, checked before anything is built (one-line errors)."""
    check_precision(precision, "onnx")
    if kw:
        raise ValueError(f"onnx export: unknown option(s) {', '.join(sorted(kw))}")
    if calibration_method is not None and precisions.is_float(precision):
        raise ValueError("--calibration-method applies to int8 only")
    if calibration_method is not None and calibration_method not in CALIBRATION_METHODS:
        raise ValueError(f"unknown calibration method {calibration_method!r}; "
                         f"choose one of {', '.join(CALIBRATION_METHODS)}")
    if precisions.needs_calibration(precision, "onnx") and calibration is None:
        raise ValueError(f"{precision} needs calibration data: --calibration TASK or an .npz file with x [N, T, in]")


def export(model, out_dir, *, precision: str = "fp32", calibration=None, fixed_dt=None, force: bool = False,
           calibration_method: str | None = None, opset: int = OPSET, sequence_length: int | None = None,
           drift_steps: int | None = None, ort: bool = False, **kw) -> dict:
    import onnx

    from . import drift as D
    from . import ort_mobile
    from .graph import build_graph
    from .quantize import int8_onnx

    import logging

    logging.getLogger().setLevel(max(logging.getLogger().level, logging.ERROR))  # ORT quantiser chatter
    check_options(precision, calibration, calibration_method, kw)
    if ort and sequence_length:
        raise ValueError("--ort applies to step graphs (a sequence graph has no ORT Mobile variant here)")
    method = calibration_method  # None: weight-only int8; a method: static QDQ calibrated with it
    check_out_dir(out_dir, model if isinstance(model, (str, Path)) else None)
    model = as_model(model)
    graph = build_graph(model, fixed_dt=fixed_dt, sequence_length=sequence_length)
    data = D.load_reference(calibration, model.config, fixed_dt=fixed_dt)
    fp32 = to_onnx(graph, opset)

    def drift_of(candidate):
        return D.drift_check(model, runner(session(candidate.SerializeToString())), data, precision,
                             fixed_dt=fixed_dt, steps=drift_steps or D.DRIFT_STEPS)

    extra, drift = {}, None
    quantized = precisions.method(precision, "onnx")
    if quantized is None:
        onnx_model = fp32
    elif quantized == "float16":
        onnx_model = to_fp16(fp32)
    else:
        onnx_model, extra["quantization"], drift = int8_onnx(fp32, model, graph, data, method,
                                                             check=None if sequence_length else drift_of)
    onnx.checker.check_model(onnx_model, full_check=True)
    sess = session(onnx_model.SerializeToString())
    if sequence_length:
        drift = {"skipped": "drift is checked on step graphs"}
    elif drift is None:
        drift = drift_of(onnx_model)
    float_compute = precisions.is_float(precision) or extra["quantization"].get("scheme") == "weight-only"
    ref_err = reference_check(onnx_model, sess, graph) if float_compute and not sequence_length else None
    set_metadata(onnx_model, model.config, precision, fixed_dt, graph, drift)
    with TempDir(out_dir) as tmp:
        path = tmp / FILE
        onnx.save(onnx_model, path)
        files = {"model": path}
        if ort:  # model.ort + model_b1.onnx, checked against model.onnx (export/ort_mobile.py)
            mobile_files, extra["ort_mobile"] = ort_mobile.write(path, onnx_model, data, graph.state_size)
            files.update(mobile_files)
        manifest = base_manifest(
            "onnx", precision, model, graph, files, opset=opset, ir_version=int(onnx_model.ir_version),
            node_count=len(onnx_model.graph.node), op_histogram=op_histogram(onnx_model),
            fp32_node_count=len(fp32.graph.node), reference_evaluator_max_abs=ref_err,
            drift=drift, versions=versions("onnx", "onnxruntime", "onnxscript"), **extra)
        return finish(tmp, Path(out_dir), manifest, force)
