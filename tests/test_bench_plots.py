"""Bench plots compare like with like (sizes per model and format, precisions side by side)
and their point labels do not overlap."""

from __future__ import annotations

import itertools

import pytest

from ltc_edge import plots
from ltc_edge.bench import report


def _row(model, backend, precision, size, target="cpu"):
    return {"model": model, "backend": backend, "precision": precision, "target": target, "file_bytes": size}


def test_size_plot_data_groups_by_format():
    rows = [_row("ltc", "numpy", "fp32", 20_000), _row("ltc", "torch", "fp32", 20_000),
            _row("ltc", "tflite", "fp32", 31_000), _row("ltc", "tflite", "int8", 9_000),
            _row("ltc", "onnxruntime", "int8", 11_000), _row("ltc", "onnxruntime", "fp32", 33_000),
            _row("ltc", "onnxruntime", "fp16", 17_000), _row("ltc", "c", "fp32", 40_000),
            _row("ltc", "c", "fp32", 9_500, target="cortex-m4"), _row("lstm", "tflite", "int8", 5_000)]
    groups = report.size_groups(rows)
    assert [(m, f) for m, f, _ in groups] == [("lstm", "tflite"), ("ltc", "safetensors"), ("ltc", "onnx"),
                                              ("ltc", "tflite"), ("ltc", "c"), ("ltc", "c-source")]
    by = {(m, f): sizes for m, f, sizes in groups}
    # each int8 size sits beside the fp32 of its own format, never beside the .safetensors
    assert by[("ltc", "tflite")] == {"fp32": 31_000, "int8": 9_000}
    assert list(by[("ltc", "onnx")]) == ["fp32", "fp16", "int8"]  # precisions in order
    assert by[("ltc", "safetensors")] == {"fp32": 20_000}  # torch and numpy measure one file
    for sizes in by.values():
        if "int8" in sizes and "fp32" in sizes:
            assert sizes["int8"] < sizes["fp32"]


def test_labels_do_not_overlap_even_for_crowded_points():
    anchors = [(100.0, 100.0)] * 3 + [(104.0, 101.0), (300.0, 40.0), (302.0, 44.0)]
    sizes = [(60.0, 7.0), (80.0, 7.0), (50.0, 7.0), (70.0, 7.0), (40.0, 7.0), (90.0, 7.0)]
    offsets = plots.place_labels(anchors, sizes, bounds=(0, 0, 600, 400))
    boxes = [plots.label_box(a, o, s) for a, o, s in zip(anchors, offsets, sizes)]
    for a, b in itertools.combinations(boxes, 2):
        assert plots.overlap_area(a, b) == 0, (a, b)
    for box, (x, y) in zip(boxes, anchors):  # none covers a marker, all stay inside the axes
        assert plots.overlap_area(box, (x - 5, y - 5, x + 5, y + 5)) == 0
        assert 0 <= box[0] and box[2] <= 600 and 0 <= box[1] and box[3] <= 400


def test_plots_are_drawn(tmp_path):
    pytest.importorskip("matplotlib")
    rows = [{**_row(m, b, p, s), "cell": m.split("-")[0], "metric": 0.3 + i * 0.001,
             "latency": {"1": {"p50_us": 40.0 + i % 3, "p99_us": 90.0}}}
            for i, (m, b, p, s) in enumerate([("ltc-8", "numpy", "fp32", 9000), ("ltc-8", "tflite", "int8", 4000),
                                              ("ltc-8", "tflite", "fp32", 12000), ("lstm-8", "numpy", "fp32", 8000)])]
    plots = report.make_plots({"rows": rows, "metric": "mse", "metric_better": "lower"}, tmp_path)
    assert sorted(p.split("/")[-1] for p in plots) == ["latency_by_backend.png", "latency_vs_accuracy.png",
                                                       "size_by_precision.png"]
    assert all((tmp_path / p.split("/")[-1]).read_bytes()[:4] == b"\x89PNG" for p in plots)
