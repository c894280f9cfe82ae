"""A task's data as the export drift check's reference (calibration from the training
split, drift and the task metric on the test split). Lives in train: export never imports
train, so the CLI and bench hand export these arrays."""

from __future__ import annotations

import zipfile
from pathlib import Path

from .. import precision as precisions
from .stored import SERIES_TASKS, load_model_task, stored_task_name


def task_reference(name: str, **opts):
    from ..export.drift import from_task
    from .tasks import load_task

    return from_task(load_task(name, **opts), name)


def _is_calibration_npz(path: Path) -> bool:
    """An .npz in the calibration layout (an array x [N, T, in]) rather than a data file."""
    try:
        with zipfile.ZipFile(path) as z:
            return "x.npy" in z.namelist()
    except (OSError, zipfile.BadZipFile, NotImplementedError, EOFError, ValueError):
        return True  # the calibration reader reports what is wrong with it


def model_reference(model, spec: str | None = None, precision: str = "fp32", config: dict | None = None):
    """`--calibration SPEC` of `ltc export MODEL` as the exporters take it, and a note (or None):

    * None: the model's stored task (data file checked by sha256). int8 needs it; fp32 / fp16
      fall back to synthetic inputs (None) when the model stores no task or its file is gone,
      and say so in the note;
    * a task name: that task (the stored options when it is the model's own task);
    * a .csv (or an .npz data file of an npz task): the stored columns, window and split on it;
    * an .npz with x [N, T, in] (optional dt, y): returned as is (export reads it).
    """
    from ..export.drift import from_task

    if config is None:
        from ..nn.modelfile import read

        config = read(model)[0]
    stored = stored_task_name(config)
    if spec is None:
        if stored is None and not precisions.is_float(precision):  # never calibrated on made-up inputs
            raise ValueError(f"{model} stores no training task (e.g. an ncps import), and {precision} needs "
                             "calibration data from real inputs: pass --calibration DATA.npz (x [N, T, in], optional dt and y) or a task name")
        if stored is None:
            return None, None
        try:
            name, _, td = load_model_task(model, config=config, data_flag="--calibration")
        except ValueError as e:  # DataFileError (moved / changed), or a stored task that cannot load
            if not precisions.is_float(precision):
                raise
            return None, f"drift checked on synthetic inputs: {e}"
        return from_task(td, name), None
    path = Path(spec)
    if path.suffix == ".npz" and (stored != "npz" or _is_calibration_npz(path)):
        return str(spec), None
    if path.suffix in (".csv", ".npz") or path.exists():
        if stored not in SERIES_TASKS:
            raise ValueError(f"--calibration {spec}: {model} was not trained on a csv/npz file, so its columns "
                             "are unknown; pass an .npz with x [N, T, in] (optional dt, y)")
        name, _, td = load_model_task(model, flags={"data": path}, config=config, data_flag="--calibration")
        return from_task(td, name), None
    if spec in SERIES_TASKS and spec != stored:  # their file and columns are options export does not take
        raise ValueError(f"--calibration {spec}: pass a data file instead (a CSV with {model}'s own columns, "
                         "or an .npz with x [N, T, in], optional dt and y)")
    name, _, td = (load_model_task(model, task=str(spec), config=config, data_flag="--calibration")
                   if spec == stored else (spec, None, None))
    return (from_task(td, name) if td is not None else task_reference(name)), None
