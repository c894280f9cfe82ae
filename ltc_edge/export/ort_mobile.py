"""ONNX Runtime Mobile files of an ONNX export (`ltc export --format onnx --ort`):

  model.ort      the ORT format (a FlatBuffer the minimal / mobile onnxruntime builds load), made
                 by onnxruntime's own converter route (convert_onnx_models_to_ort: a session with
                 session.save_model_format=ORT and optimized_model_filepath, optimisation level
                 "all" without the x86-only NCHWc layout transformer, QDQ kept int8 for Arm);
  model_b1.onnx  the same graph with batch fixed to 1 (make_dim_param_fixed + fix_output_shapes):
                 NNAPI and CoreML take only fixed-shape nodes.

Both are checked before anything is written: chained steps at batch 1 through each must equal
model.onnx's (max-abs <= TOLERANCE on y and the state). onnxruntime's mobile usability checker
(mobile_helpers/usability_checker.py) runs on model_b1.onnx; its verdict goes in the manifest.

    write(onnx_model, folder, data, steps) -> (files {role: path}, manifest details)
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from ..errors import LtcEdgeError

ORT_FILE = "model.ort"
B1_FILE = "model_b1.onnx"
TOLERANCE = 1e-5   # max-abs vs model.onnx in onnxruntime, y and state, every chained step
CHECK_STEPS = 1000
EPS = ("NNAPI", "CoreML NeuralNetwork", "CoreML MLProgram")


class MobileCheckError(LtcEdgeError):
    """An ORT Mobile file that does not compute what model.onnx computes (nothing written)."""


def fixed_batch(onnx_model, batch: int = 1):
    """A copy of the graph with the symbolic batch dimension fixed (inputs, outputs, shapes)."""
    import onnx
    from onnxruntime.tools.onnx_model_utils import fix_output_shapes, make_dim_param_fixed

    fixed = onnx.ModelProto()
    fixed.CopyFrom(onnx_model)
    make_dim_param_fixed(fixed.graph, "batch", batch)
    fix_output_shapes(fixed)
    onnx.checker.check_model(fixed, full_check=True)
    return fixed


def to_ort(onnx_path: Path, ort_path: Path) -> None:
    """onnxruntime's converter, as convert_onnx_models_to_ort does it for a fixed-style model
    meant for Arm: level "all" minus NchwcTransformer, QDQ int8 allowed, saved as ORT."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.optimized_model_filepath = str(ort_path)
    so.add_session_config_entry("session.save_model_format", "ORT")
    so.add_session_config_entry("session.qdqisint8allowed", "1")
    so.log_severity_level = 3
    ort.InferenceSession(str(onnx_path), so, providers=["CPUExecutionProvider"],
                         disabled_optimizers=["NchwcTransformer"])


def _session(path: Path):
    """One thread, quiet; a .ort file read as the ORT format (onnx.session's twin: importing it
    here would make an import cycle, onnx.py imports this module)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads, so.log_severity_level = 1, 1, 3
    if path.suffix == ".ort":
        so.add_session_config_entry("session.load_model_format", "ORT")
    return ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])


def chained_max_abs(paths: dict, data, state_size: int, steps: int = CHECK_STEPS) -> dict:
    """{name: max |y - y_ref|, |state - state_ref| over `steps` chained steps at batch 1}, the
    reference being paths["model"]; inputs are the held-out sequences put back to back."""
    from .drift import chain

    x, dt = chain(data.x, data.dt, steps, lanes=1)
    sessions = {name: _session(p) for name, p in paths.items()}
    needs_dt = "dt" in {i.name for i in sessions["model"].get_inputs()}
    states = {name: np.zeros((1, state_size), np.float32) for name in sessions}
    worst = {name: 0.0 for name in sessions if name != "model"}
    for t in range(steps):
        feeds = {"x": np.ascontiguousarray(x[:, t], np.float32)}
        if needs_dt:
            feeds["dt"] = (np.ones((1, 1), np.float32) if dt is None
                           else np.ascontiguousarray(dt[:, t:t + 1], np.float32))
        outs = {name: s.run(["y", "new_state"], {**feeds, "state": states[name]}) for name, s in sessions.items()}
        for name in worst:
            worst[name] = max(worst[name], *(float(np.abs(a - b).max()) for a, b in zip(outs[name], outs["model"])))
        states = {name: o[1] for name, o in outs.items()}
    return worst


def usability(b1_path: Path) -> dict:
    """onnxruntime's mobile usability checker on the fixed-shape graph: the overall verdict
    (analyze_model: NNAPI or CoreML may run it well) and each provider's partitioning."""
    from onnxruntime.tools.mobile_helpers import usability_checker as U
    from onnxruntime.tools.onnx_model_utils import ModelProtoWithShapeInfo

    log = logging.getLogger("ltc_edge.ort_mobile")
    log.setLevel(logging.ERROR)  # the checker's report goes to INFO: kept off the terminal
    passes = bool(U.analyze_model(b1_path, logger=log))
    model = ModelProtoWithShapeInfo(b1_path.resolve()).model_with_shape_info
    per_ep = {}
    for ep, info in zip(EPS, (U.check_nnapi_partitions(model, True),
                              U.check_coreml_partitions(model, True, "coreml_supported_neuralnetwork_ops.md"),
                              U.check_coreml_partitions(model, True, "coreml_supported_mlprogram_ops.md"))):
        per_ep[ep] = {"verdict": info.suitability().name, "partitions": info.num_partitions,
                      "supported_nodes": info.num_supported_nodes, "nodes": info.num_nodes}
    return {"passes": passes, "checked": b1_path.name, "checker": "onnxruntime.tools.mobile_helpers."
            "usability_checker", "providers": per_ep}


def write(onnx_path: Path, onnx_model, data, state_size: int, steps: int = CHECK_STEPS) -> tuple[dict, dict]:
    """model.ort and model_b1.onnx beside onnx_path (a temp folder), checked against it:
    ({role: path}, the manifest's "ort_mobile" details). MobileCheckError when a file differs."""
    import onnx

    folder = onnx_path.parent
    b1_path, ort_path = folder / B1_FILE, folder / ORT_FILE
    onnx.save(fixed_batch(onnx_model), b1_path)
    to_ort(onnx_path, ort_path)
    err = chained_max_abs({"model": onnx_path, "ort": ort_path, "model_b1": b1_path}, data, state_size, steps)
    bad = {k: v for k, v in err.items() if not v <= TOLERANCE}
    if bad:
        raise MobileCheckError("onnx --ort: " + "; ".join(f"{k} differs from model.onnx by max-abs {v:.3g} "
                                                           f"(> {TOLERANCE:g})" for k, v in bad.items())
                               + "; nothing written")
    details = {"files": {"ort": "ORT format for onnxruntime's mobile / minimal builds (CPU EP; dynamic batch)",
                         "model_b1": "batch fixed to 1, for the NNAPI (Android) and CoreML (iOS) providers"},
               "check": {"steps": steps, "batch": 1, "tolerance": TOLERANCE, "max_abs": err},
               "usability": usability(b1_path)}
    return {"ort": ort_path, "model_b1": b1_path}, details
