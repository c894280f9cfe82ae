"""Export: unrolled static step graphs, ONNX, TFLite and C, with quantization and drift checks.

EXPORTERS maps a format name to "module:function" (imported lazily). Every exporter has the
signature  export(model, out_dir, *, precision, calibration, fixed_dt, force) -> manifest dict
and writes the model file plus manifest.json into out_dir.
"""

EXPORTERS = {
    "onnx": "ltc_edge.export.onnx:export",
    "tflite": "ltc_edge.export.tflite:export",
    "c": "ltc_edge.export.c:export",
}


def get_exporter(fmt: str):
    if fmt not in EXPORTERS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORTERS)}")
    module, func = EXPORTERS[fmt].split(":")
    return getattr(__import__(module, fromlist=[func]), func)
