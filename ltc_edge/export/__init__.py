"""Export: unrolled static step graphs, ONNX, TFLite, ExecuTorch and C, with quantization and drift checks.

EXPORTERS maps a format name to "module:function" (imported lazily). Every exporter has the
signature  export(model, out_dir, *, precision, calibration, fixed_dt, force) -> manifest dict
and writes the model file plus manifest.json into out_dir.
"""

EXPORTERS = {
    "onnx": "ltc_edge.export.onnx:export",
    "tflite": "ltc_edge.export.tflite:export",
    "c": "ltc_edge.export.c:export",
    "executorch": "ltc_edge.export.pte:export",
}


def get_exporter(fmt: str):
    if fmt not in EXPORTERS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(EXPORTERS)}")
    module, func = EXPORTERS[fmt].split(":")
    return getattr(__import__(module, fromlist=[func]), func)



def export_for_backend(model_path, backend: str, folder, *, net=None, **options):
    """What runtime `backend` (a canonical name) runs for the .safetensors `model_path`: the
    file itself on numpy and c, else an fp32 export of it (`net`: the model, already loaded)
    written into `folder` (onnxruntime: ONNX; tflite, tflm: TFLite). `options` go to the exporter."""
    from pathlib import Path

    from ..runtime import BACKEND_FORMATS, RUNS_MODEL_FILE

    if backend in RUNS_MODEL_FILE:
        return Path(model_path)
    if net is None:
        from ..nn import load

        net = load(model_path)
    get_exporter(BACKEND_FORMATS[backend])(net, Path(folder), precision="fp32", force=True, **options)
    return Path(folder)
