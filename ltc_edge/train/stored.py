"""A model's stored task: what `ltc train` records about its training data, and the one way
every command that needs data (`eval`, `bench`, `export --calibration`, `prune`, `analyze`)
gets it back (numpy only).

    config["task"] = {"name": "csv", "options": {"data": "/abs/osc.csv", "inputs": [...], ...},
                      "type": "regression", "metric": "mse",
                      "data": {"path": "/abs/osc.csv", "sha256": "...", "size_bytes": 12345},
                      "dt": {"median": 0.035, "min": ..., "max": ..., "mean": ..., "std": ...}}

Without flags a command uses the stored task, after checking that the data file is still
there and unchanged (sha256); `--data FILE` (and the other data flags) override the stored
options one by one, and an explicitly given file is used as is (no hash check).
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..errors import LtcEdgeError
from ..fileio import LIMITS, open_regular
from .options import check_series_numbers, parse_split
from .tasks import TASKS

SERIES_TASKS = ("csv", "npz")
# the CLI's data flags, as load_task keyword -> flag name
DATA_FLAGS = {"data": "--data", "inputs": "--inputs", "targets": "--targets", "time": "--time",
              "seq_len": "--seq-len", "stride": "--stride", "split": "--split", "data_dir": "--data-dir"}
# the load_task options each task takes (its CLI flags' names)
SERIES_OPTIONS = ("data", "inputs", "targets", "time", "seq_len", "stride", "split")
TASK_OPTIONS = {"csv": SERIES_OPTIONS, "npz": SERIES_OPTIONS, "fashion-mnist": ("data_dir",),
                "cheetah": ("seq_len", "stride"), "pendulum": ("episodes", "seq_len"), "digits": ()}


class DataFileError(LtcEdgeError):
    """The training data file a model names is gone or no longer the file it was trained on."""


def _series_options(task, data, inputs, targets, time, seq_len, stride, split) -> dict:
    if data is None:
        raise ValueError(f"--task {task} needs --data FILE.{task}")
    if not inputs or not targets:
        raise ValueError(f"--task {task} needs --inputs and --targets (column names or indices)")
    opts = {"data": os.path.abspath(data), "inputs": inputs, "targets": targets, "time": time}
    for k, v in (("seq_len", seq_len), ("stride", stride), ("split", parse_split(split))):
        if v is not None:
            opts[k] = v
    return opts


def task_options(task: str, data, data_dir, inputs, targets, time, seq_len, stride, split, episodes) -> dict:
    """The CLI's task flags as load_task() keyword arguments (only those the task takes)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; choose one of {', '.join(TASKS)}")
    check_series_numbers(seq_len, stride, episodes)
    if task in SERIES_TASKS:
        return _series_options(task, data, inputs, targets, time, seq_len, stride, split)
    stray = [n for n, v in (("--data", data), ("--inputs", inputs), ("--targets", targets), ("--time", time),
                            ("--split", split)) if v is not None]
    if stray:
        raise ValueError(f"{', '.join(stray)} only apply to --task csv/npz")
    given = {"data_dir": None if data_dir is None else os.path.abspath(data_dir), "seq_len": seq_len,
             "stride": stride, "episodes": episodes}
    return {k: v for k, v in given.items() if v is not None and k in TASK_OPTIONS.get(task, ())}


def file_sha256(path) -> tuple[str, int]:
    """(sha256 hex, size in bytes) of a regular file, read in chunks."""
    fd = open_regular(path, "data file", LIMITS["data"])
    h, n = hashlib.sha256(), 0
    with os.fdopen(fd, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def file_record(path) -> dict:
    """{"path": absolute path, "sha256", "size_bytes"} of a data file."""
    digest, size = file_sha256(path)
    return {"path": os.path.abspath(path), "sha256": digest, "size_bytes": size}


def task_record(name: str, options: dict, td) -> dict:
    """config["task"] for a model trained on `td` (loaded as load_task(name, **options))."""
    rec = {"name": name, "options": dict(options), "type": td.kind, "metric": td.metric, "dt": td.train_dt()}
    if name in SERIES_TASKS and options.get("data"):
        rec["data"] = file_record(options["data"])
    return rec


def check_data_file(stored: dict, model, data_flag: str = "--data") -> None:
    """The stored data file is where it was and has the sha256 recorded at training; the hints
    name `data_flag`, the command's option for another data file (export: --calibration)."""
    rec = stored.get("data")
    if not isinstance(rec, dict) or not rec.get("path"):
        return
    path = Path(rec["path"])
    if not path.is_file():
        raise DataFileError(f"{path}: the data {model} was trained on is missing (moved or deleted); "
                            f"pass {data_flag} FILE to use another copy")
    digest, _ = file_sha256(path)
    if digest != rec.get("sha256"):
        was = str(rec.get("sha256"))[:12]
        raise DataFileError(f"{path}: changed since training (sha256 {digest[:12]}… != {was}… recorded in "
                            f"{model}); pass {data_flag} {path} to use it anyway")


def _stored(config: dict, model, data_flag: str = "--data") -> dict:
    stored = (config or {}).get("task") or {}
    if not isinstance(stored, dict) or not isinstance(stored.get("options") or {}, dict):
        hint = "--task and the task's options" if data_flag == "--data" else f"{data_flag} with the data"
        raise LtcEdgeError(f"{model}: its stored task is malformed; pass {hint}")
    return stored


def given_flags(flags: dict | None) -> dict:
    """The data flags actually given, as load_task options (paths absolute, --split parsed)."""
    out = {}
    for k, v in (flags or {}).items():
        if v is None:
            continue
        if k not in DATA_FLAGS:
            raise LtcEdgeError(f"unknown data option {k!r}")
        out[k] = os.path.abspath(v) if k in ("data", "data_dir") else (parse_split(v) if k == "split" else v)
    return out


def resolve_task(model, config: dict, task: str | None = None, flags: dict | None = None,
                 data_flag: str = "--data") -> tuple[str, dict]:
    """(task name, load_task options) for a command run on `model`: the stored task, its options
    overridden by the data flags given; another task from its flags alone. Checks the stored
    data file (missing / changed: one-line DataFileError) unless --data names one."""
    stored = _stored(config, model, data_flag)
    given = given_flags(flags)
    if task is None:
        if not stored.get("name"):
            raise LtcEdgeError(f"{model}: no task stored in the model; pass --task (and its data options)")
        task = stored["name"]
    if task != stored.get("name"):
        return task, task_options(task, episodes=None, **{k: (flags or {}).get(k) for k in DATA_FLAGS})
    opts = {**(stored.get("options") or {}), **given}
    if task not in SERIES_TASKS:
        stray = [DATA_FLAGS[k] for k in given if k in ("data", "inputs", "targets", "time", "split")]
        if stray:
            raise LtcEdgeError(f"{', '.join(stray)} only apply to --task csv/npz")
    if "data" not in given:
        check_data_file(stored, model, data_flag)
    return task, opts


def load_model_task(model, task: str | None = None, flags: dict | None = None, config: dict | None = None,
                    data_flag: str = "--data"):
    """(name, options, TaskData) of the data a command runs `model` on (see resolve_task)."""
    from .tasks import load_task

    if config is None:
        from ..nn.modelfile import read

        config = read(model)[0]
    name, opts = resolve_task(model, config, task, flags, data_flag)
    return name, opts, load_task(name, **opts)


def data_flags(data, inputs, targets, time) -> dict:
    """The data options of a command run on a model (--data, --inputs, --targets, --time) as flags."""
    return {"data": data, "inputs": inputs, "targets": targets, "time": time}


def model_task(model, task, flags: dict, need: str | None = None):
    """(name, load_task options) of the data a command runs `model` on: --task / --data ... when
    given, else the task stored in the model (its data file sha256-checked); None when the model
    stores none and nothing was given (an error naming the option `need` when given)."""
    from ..nn.modelfile import read

    config = read(model)[0]
    given = task is not None or any(v is not None for v in flags.values())
    if not given and stored_task_name(config) is None:
        if need:
            raise ValueError(f"{need} needs --task ({model} stores no task)")
        return None
    return resolve_task(model, config, task, flags)


def stored_task_name(config: dict) -> str | None:
    """The stored task's name, or None."""
    stored = (config or {}).get("task")
    return stored.get("name") if isinstance(stored, dict) else None
