"""Measure the int8-tflm TFLite export of a trained cheetah LTC against its fp32 export:
file and weight sizes, export seconds, and the test MSE of each stepped through the runtime
(fp32 in LiteRT and in TFLite-Micro, int8-tflm in TFLite-Micro). Writes a JSON record.

    python scripts/tflm_int8_bench.py MODEL.safetensors OUT.json [--work DIR]
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np


def export(model, out, precision, task_ref):
    from ltc_edge.export import tflite

    t = time.perf_counter()
    man = tflite.export(model, out, precision=precision, calibration=task_ref)
    return man, time.perf_counter() - t


def test_mse(folder, backend, x, y):
    from ltc_edge.runtime import load

    ctrl = load(folder, backend, batch=x.shape[0], state_check="raise")
    ctrl.reset()
    t = time.perf_counter()
    ys = np.stack([np.array(ctrl.step(x[:, k], dt=1.0)) for k in range(x.shape[1])], 1)
    return float(np.mean((ys - y) ** 2)), (time.perf_counter() - t) / (x.shape[0] * x.shape[1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("model")
    ap.add_argument("out")
    ap.add_argument("--work", default="tflm-bench-work")
    a = ap.parse_args()
    import torch

    from ltc_edge.export.drift import from_task
    from ltc_edge.nn.modelfile import load
    from ltc_edge.train.tasks import load_task

    torch.set_num_threads(1)
    task = load_task("cheetah")
    model = load(a.model).eval()
    ref = from_task(task, "cheetah")
    work = Path(a.work)
    rows = {}
    for precision in ("fp32", "int8-tflm"):
        man, secs = export(model, work / precision, precision, ref)
        q = man.get("quantization") or {}
        rows[precision] = {"file_bytes": man["size_bytes"], "export_seconds": round(secs, 1),
                           "export_phases_seconds": man.get("export_seconds"),
                           "constant_bytes": q.get("constant_bytes"), "op_histogram": man["op_histogram"],
                           "drift": {k: man["drift"][k] for k in ("steps", "max_abs", "metric", "within_budget")}}
    rows["fp32"]["constant_bytes"] = man["quantization"]["fp32_constant_bytes"]  # counted in the fp32 graph
    fp32_w = sum(rows["fp32"]["constant_bytes"].values())
    x, y = task.test.x.astype(np.float32), task.test.y.astype(np.float32)
    runs = {}
    for precision, backend in (("fp32", "tflite"), ("fp32", "tflm"), ("int8-tflm", "tflm")):
        mse, per_step = test_mse(work / precision, backend, x, y)
        runs[f"{precision}@{backend}"] = {"test_mse": mse, "seconds_per_row_step": per_step}
    int8_w = sum(rows["int8-tflm"]["constant_bytes"].values())
    record = {"model": str(a.model), "task": "cheetah", "test_sequences": int(x.shape[0]),
              "steps_per_sequence": int(x.shape[1]), "exports": rows, "runtime": runs,
              "weights_ratio_fp32_over_int8": round(fp32_w / int8_w, 2),
              "file_ratio_fp32_over_int8": round(rows["fp32"]["file_bytes"] / rows["int8-tflm"]["file_bytes"], 2),
              "int8_mse_rel_change": runs["int8-tflm@tflm"]["test_mse"] / runs["fp32@tflite"]["test_mse"] - 1,
              "machine": f"{platform.machine()} {platform.processor() or ''} (2 shared cores, loaded)".strip()}
    Path(a.out).write_text(json.dumps(record, indent=1) + "\n")
    print(json.dumps({k: record[k] for k in ("weights_ratio_fp32_over_int8", "file_ratio_fp32_over_int8",
                                             "int8_mse_rel_change")}), json.dumps(runs))


if __name__ == "__main__":
    main()
