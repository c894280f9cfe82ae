"""`ltc sweep CONFIG`: a hyper-parameter grid on Ray Tune; every trial trains, exports to ONNX
and times the exported step, and the trials meet in one Pareto table (accuracy vs latency).

CONFIG is TOML or JSON:

    task = "digits"            # any `ltc train` task name
    epochs = 3
    batch_size = 32            # optional (task default otherwise)
    seed = 0
    compile = false            # optional: torch.compile the training step (faster on long runs)
    patience = 10              # optional: early stop after 10 epochs without a better validation metric

    [task_options]             # optional: the task's data options, named as `ltc train`'s flags
    data = "log.csv"           # csv / npz: the file (a relative path is from this config's folder)
    inputs = "u,v"             # csv / npz: input columns (names or 0-based indices; or a list)
    targets = "y"              # csv / npz: target columns
    time = "t"                 # csv / npz, optional: timestamp column (its differences are dt)
    seq_len = 32               # optional: csv / npz / cheetah / pendulum
    stride = 16                # optional: csv / npz / cheetah
    split = [0.7, 0.15, 0.15]  # optional: csv / npz train, valid, test fractions
    # also: data_dir (fashion-mnist), episodes (pendulum); an option the task does not take is refused

    [search]                   # a grid over every list; scalars are fixed
    model = ["ltc", "lstm"]
    units = [16, 32]
    wiring = ["auto-ncp"]      # ltc / cfc only (others ignore it)
    lr = [0.01, 0.003]         # optional (task default per model otherwise)
    ode_unfolds = [3, 6]       # ltc / ctrnn / node only
    seed = [0, 1, 2]           # optional: repeat each configuration over seeds (overrides seed)

Several grids in one sweep: write [[search]] tables instead of one [search]; the trials are their
union (e.g. LTC with two wirings, the other cells with their own). With seeds in the grid,
sweep.json gains "groups": each configuration's metric as mean, std (n-1) and range over seeds.

    [ray]
    address = ""               # "" (or "local") = a fresh local Ray; "auto" or "ray://head:10001" = a cluster
    num_cpus = 2               # local Ray only
    cpus_per_trial = 1
    max_concurrent = 2
    max_failures = 2           # a trial whose node (or worker) dies is re-run up to 2 more times

Trials need no shared filesystem: each trains in a temp folder on its node and sends its
artifacts (model file, ONNX export, metrics) home as bytes with their sha256; the driver checks
and writes them under OUT/trials/NAME/ as each trial finishes, with a record (row.json) that
`ltc sweep --resume` reads to skip finished trials after an interrupted sweep.

While it runs, the driver prints a line per trial event (started, each epoch with its validation
metric and the best so far, done, failed, retried; which node) and `k/N done ... ETA` after each
trial ends (sweep_progress.py); Ray's own output goes to OUT/ray.log. On a ray:// client Tune runs
on the head and the events come to the driver through a Ray queue.

The data is loaded once before Ray starts (bad data: one error line; doubts such as a tiny test
split: warnings). Each trial's row holds the test metric over windows (state reset each, as
training measures it) and streamed over the whole test series with the state carried, as the
model runs on a device (`streaming_metric`).
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from ..errors import LtcEdgeError
from ..fileio import atomic_write_bytes, read_bytes
from ..nn import WIRINGS
from ..nn.functional import CELLS
from ..train import options as A

KNOWN_TOP = {"task", "task_options", "epochs", "batch_size", "seed", "compile", "patience", "search", "ray"}
KNOWN_SEARCH = {"model", "units", "wiring", "lr", "ode_unfolds", "seed"}


def unfold_kinds() -> tuple:
    """Cell kinds with a fixed-step ODE solver: those whose default config has ode_unfolds."""
    from ..nn import make_config

    return tuple(k for k in CELLS if "ode_unfolds" in make_config(k, 1, units=2)["cell"])


def wired_kinds() -> tuple:
    """Cell kinds that take a wiring: the ones the trial builder (build_task_model) accepts it for."""
    from ..train.loop import WIRED_MODELS

    return tuple(WIRED_MODELS)


def read_config(path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such sweep config")
    text = path.read_text()
    try:
        if path.suffix == ".json":
            cfg = json.loads(text)
        else:
            import tomllib

            cfg = tomllib.loads(text)
    except Exception as e:
        raise ValueError(f"{path}: cannot parse the sweep config ({e})") from None
    unknown = set(cfg) - KNOWN_TOP
    if unknown:
        raise ValueError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; known: {', '.join(sorted(KNOWN_TOP))}")
    if "task" not in cfg:
        raise ValueError(f"{path}: the sweep config needs a task")
    grids = cfg.get("search") or {}
    if not isinstance(grids, (dict, list)) or not all(isinstance(g, dict) for g in _grids(cfg)):
        raise ValueError(f"{path}: search must be a [search] table or [[search]] tables")
    for search in _grids(cfg):
        unknown = set(search) - KNOWN_SEARCH
        if unknown:
            raise ValueError(f"{path}: unknown search key(s) {', '.join(sorted(unknown))}; known: "
                             f"{', '.join(sorted(KNOWN_SEARCH))}")
        if "model" not in search:
            raise ValueError(f"{path}: [search] needs model = [...]")
    try:
        _check_values(cfg)
    except LtcEdgeError as e:
        raise LtcEdgeError(f"{path}: {e}") from None
    cfg["task_options"] = _task_options(cfg, path)
    return cfg


def _check_option(key: str, v) -> None:
    """One [task_options] value of the type load_task takes."""
    name = f"task_options.{key}"
    if key in ("seq_len", "stride", "episodes"):
        A.integer(v, name)
    elif key == "split":
        if not isinstance(v, list):
            raise LtcEdgeError(f"{name} must be three fractions, like [0.7, 0.15, 0.15]; got {v!r}")
    elif key in ("inputs", "targets"):
        names = v if isinstance(v, list) else [v]
        if not names or not all(isinstance(n, str) or (isinstance(n, int) and not isinstance(n, bool)) for n in names):
            raise LtcEdgeError(f"{name} must be column names or indices, like \"u,v\" or [0, 1]; got {v!r}")
    elif not isinstance(v, str) or not v.strip():  # data, data_dir, time
        raise LtcEdgeError(f"{name} must be a non-empty string, got {v!r}")


def _task_options(cfg: dict, path: Path) -> dict:
    """[task_options], checked against what the task takes, with its file paths made absolute
    (relative ones are taken from the config's folder: the trials run in folders of their own)."""
    from ..train.stored import SERIES_TASKS, TASK_OPTIONS

    opts, task = cfg.get("task_options") or {}, cfg["task"]
    if not isinstance(opts, dict):
        raise LtcEdgeError(f"{path}: task_options must be a [task_options] table, like data = \"f.csv\"")
    takes = TASK_OPTIONS[task]
    for k, v in opts.items():
        if k not in takes:
            raise LtcEdgeError(f"{path}: task {task} takes no task_options.{k}; it takes "
                               f"{', '.join(takes) or 'none'}")
        try:
            _check_option(k, v)
        except LtcEdgeError as e:
            raise LtcEdgeError(f"{path}: {e}") from None
    missing = [k for k in ("data", "inputs", "targets") if task in SERIES_TASKS and k not in opts]
    if missing:
        raise LtcEdgeError(f"{path}: task {task} needs {', '.join(missing)} in [task_options] "
                           f"(data = \"log.{task}\", inputs = \"u,v\", targets = \"y\")")
    return {k: str((path.parent / v).resolve()) if k in ("data", "data_dir") else v for k, v in opts.items()}


def check_task(cfg: dict) -> list[str]:
    """Load the task's data once, before Ray starts: bad data is one error here, not one per
    trial. Returns the data's warnings (tiny test split, timestamps as an input, ...)."""
    from ..train.tasks import load_task

    return list(load_task(cfg["task"], **cfg.get("task_options", {})).info.get("warnings") or [])


def _grids(cfg: dict) -> list:
    """The config's grids: one [search] table, or the [[search]] tables."""
    search = cfg.get("search") or {}
    return search if isinstance(search, list) else [search]


def _as_list(value, name: str) -> list:
    values = value if isinstance(value, list) else [value]
    if not values:
        raise LtcEdgeError(f"{name} is an empty list")
    return values


# search key -> the check of one value
_SEARCH_CHECKS = {
    "model": lambda v: A.choice(v, tuple(CELLS), "search.model"),
    "units": lambda v: A.integer(v, "search.units"),
    "wiring": lambda v: A.choice(v, tuple(WIRINGS), "search.wiring"),
    "lr": lambda v: A.positive(v, "search.lr"),
    "ode_unfolds": lambda v: A.integer(v, "search.ode_unfolds"),
    "seed": lambda v: A.integer(v, "search.seed", low=0),
}
_RAY_CHECKS = {
    "num_cpus": lambda v: A.integer(v, "ray.num_cpus"),
    "cpus_per_trial": lambda v: A.positive(v, "ray.cpus_per_trial"),
    "max_concurrent": lambda v: A.integer(v, "ray.max_concurrent"),
    "max_failures": lambda v: A.integer(v, "ray.max_failures", low=0),
}


def _check_values(cfg: dict) -> None:
    """Every value in range, every name known: one line for the first that is not."""
    A.task_name(cfg["task"])
    A.integer(cfg.get("epochs", 3), "epochs")
    if cfg.get("patience") is not None:
        A.integer(cfg["patience"], "patience")
    if cfg.get("batch_size") is not None:
        A.integer(cfg["batch_size"], "batch_size")
    A.integer(cfg.get("seed", 0), "seed", low=0)
    if not isinstance(cfg.get("compile", False), bool):
        raise LtcEdgeError(f"compile must be true or false, got {cfg['compile']!r}")
    for search in _grids(cfg):
        for key, values in search.items():
            for v in _as_list(values, f"search.{key}"):
                _SEARCH_CHECKS[key](v)
    ray = cfg.get("ray") or {}
    for key, check in _RAY_CHECKS.items():
        if key in ray:
            check(ray[key])
    if not isinstance(ray.get("address", ""), str):
        raise LtcEdgeError(f"ray.address must be a string, got {ray['address']!r}")


def trials(cfg: dict) -> list[dict]:
    """The grid (the union of the grids), with options that do not apply to a model kind dropped
    and duplicates merged."""
    wired, unfolds = wired_kinds(), unfold_kinds()
    seen, out = set(), []
    for grid in _grids(cfg):
        search = {k: (v if isinstance(v, list) else [v]) for k, v in grid.items()}
        keys = sorted(search)
        for combo in itertools.product(*(search[k] for k in keys)):
            t = dict(zip(keys, combo))
            if t["model"] not in wired:
                t.pop("wiring", None)
            if t["model"] not in unfolds:
                t.pop("ode_unfolds", None)
            key = json.dumps(t, sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append(t)
    return out


def groups(rows: list[dict]) -> list[dict]:
    """Rows that differ only in their seed, as one group each: the metric's mean, sample std
    (n-1; None for one seed), min and max over the seeds, in first-row order."""
    import statistics

    by = {}
    for r in rows:
        key = json.dumps({k: v for k, v in r.items() if k.startswith("param_") and k != "param_seed"},
                         sort_keys=True)
        by.setdefault(key, []).append(r)
    out = []
    for key, rs in by.items():
        m = [r["metric"] for r in rs]
        streamed = [r["streaming_metric"] for r in rs if r.get("streaming_metric") is not None]
        out.append({**json.loads(key), "metric_name": rs[0]["metric_name"], "n": len(m),
                    "seeds": [r.get("param_seed") for r in rs], "mean": statistics.fmean(m),
                    "std": statistics.stdev(m) if len(m) > 1 else None, "min": min(m), "max": max(m),
                    "streaming_mean": statistics.fmean(streamed) if len(streamed) == len(m) else None})
    return out


def trial_name(t: dict) -> str:
    return "-".join(f"{k}={t[k]}" for k in sorted(t)).replace("/", "_")


def run_trial(params: dict) -> dict:
    """Train one configuration in a temp folder of the node it runs on, export it to ONNX fp32 and
    time the exported step. The row carries the artifacts' bytes (`artifacts`): the driver writes
    them (receive_artifacts), whichever node trained them."""
    on_epoch = _epoch_reporter() if params.get("report_epochs") else None
    with tempfile.TemporaryDirectory(prefix="ltc-trial-") as tmp:
        row = _train_trial(params, Path(tmp), on_epoch)
        row["artifacts"] = pack_artifacts(Path(tmp))
    row["node"] = _node_id()
    return row


def _epoch_reporter():
    """on_epoch for train(): each epoch's summary to Tune (the driver prints it live), with the
    node it runs on (its IP and the start of its Ray node id: loopback nodes share an IP)."""
    import ray
    from ray import tune

    from .sweep_progress import EPOCH_KEYS

    node = f"{ray.util.get_node_ip_address()}/{(_node_id() or '')[:6]}"

    def report(summary: dict) -> None:
        tune.report({k: v for k, v in {**summary, "node": node}.items() if k in EPOCH_KEYS})

    return report


def _node_id() -> str | None:
    """The Ray node this trial ran on (None outside Ray)."""
    try:
        import ray

        return ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    except Exception:  # noqa: BLE001 - a label only, never a reason to lose the trial
        return None


def pack_artifacts(folder: Path) -> str:
    """Every file under folder as {relative path: {sha256, base64 data}}, one JSON string (Tune
    keeps it as one metric, not flattened)."""
    files = {}
    for f in sorted(p for p in folder.rglob("*") if p.is_file()):
        data = f.read_bytes()
        files[f.relative_to(folder).as_posix()] = {"sha256": hashlib.sha256(data).hexdigest(),
                                                   "data": base64.b64encode(data).decode()}
    return json.dumps(files)


def receive_artifacts(row: dict, folder: Path) -> dict:
    """Write a trial's artifacts (row["artifacts"], from pack_artifacts) under the driver's
    folder, atomically, once every file's sha256 matches; the row then names the driver's paths
    (model_file) and the hashes (artifacts_sha256). A mismatch writes nothing: LtcEdgeError."""
    folder = Path(folder).resolve()
    sent = json.loads(row.pop("artifacts"))
    files = {}
    for rel, a in sent.items():
        target = (folder / rel).resolve()
        if folder not in target.parents:
            raise LtcEdgeError(f"{folder.name}: artifact path {rel!r} points outside its trial folder")
        data = base64.b64decode(a["data"])
        if hashlib.sha256(data).hexdigest() != a["sha256"]:
            raise LtcEdgeError(f"{folder.name}: artifact {rel} arrived damaged (sha256 mismatch); not written")
        files[target] = data
    if "model.safetensors" not in sent:
        raise LtcEdgeError(f"{folder.name}: the trial sent no model.safetensors")
    for target, data in files.items():
        atomic_write_bytes(target, data)
    row["model_file"] = str(folder / "model.safetensors")
    row["artifacts_sha256"] = {rel: a["sha256"] for rel, a in sorted(sent.items())}
    return row


def _train_trial(params: dict, out: Path, on_epoch=None) -> dict:
    """run_trial's work, its files under out; on_epoch(summary) after every epoch."""
    import numpy as np

    from ..export import get_exporter
    from ..nn import load
    from ..runtime import load as runtime_load
    from ..train.loop import TrainOptions, build_task_model, default_lr, train
    from ..train.stored import task_record
    from ..train.tasks import load_task
    from .timing import measure_latency

    t = params["trial"]
    task = load_task(params["task"], **params.get("task_options", {}))
    kind = t["model"]
    options = {"ode_unfolds": int(t["ode_unfolds"])} if "ode_unfolds" in t else {}
    seed = int(t.get("seed", params.get("seed", 0)))
    model = build_task_model(task, kind, units=int(t.get("units", 32)), wiring=t.get("wiring"),
                             seed=seed, **options)
    # the task and data the model was trained on, as `ltc train` stores them: eval, export and
    # analyze default to it
    model.config["task"] = task_record(params["task"], params.get("task_options", {}), task)
    lr = float(t.get("lr", default_lr(task, kind)))
    batch = int(params.get("batch_size") or task.defaults.get("batch_size", 16))
    start = time.time()
    metrics = train(task, model, out / "model.safetensors",
                    TrainOptions(epochs=int(params["epochs"]), lr=lr, batch_size=batch, seed=seed,
                                 compile=bool(params.get("compile", False)), patience=params.get("patience")),
                    spec={"task": params["task"], "task_options": params.get("task_options", {}), "model": kind,
                          "wiring": t.get("wiring"), "units": int(t.get("units", 32)), "sweep_trial": t},
                    progress=False, log=lambda s: None, on_epoch=on_epoch)
    train_s = time.time() - start
    best = load(out / "model.safetensors")
    manifest = get_exporter("onnx")(best, out / "onnx", precision="fp32", force=True)
    ctrl = runtime_load(out / "onnx", backend="onnxruntime")
    x = np.zeros((1, best.input_size), np.float32)
    lat = measure_latency(lambda: ctrl.step(x, 0.05), min_seconds=0.3)
    counts = best.counts()
    streamed = metrics["test_streaming"].get(task.metric)
    return {**{f"param_{k}": v for k, v in t.items()}, "metric": float(metrics["test"][task.metric]),
            "metric_name": task.metric, "streaming_metric": None if streamed is None else float(streamed),
            "valid_metric": float(metrics["valid"][task.metric]),
            "best_epoch": metrics["best_epoch"], "epochs_run": metrics["epochs_run"], "p50_us": lat["p50_us"], "p99_us": lat["p99_us"],
            "parameters": counts["parameters"], "synapses": counts["synapses"], "train_s": round(train_s, 2),
            "onnx_nodes": manifest.get("node_count"), "onnx_bytes": manifest.get("size_bytes")}


ROW_KEYS = ("metric", "metric_name", "streaming_metric", "valid_metric", "best_epoch", "epochs_run", "p50_us", "p99_us",
            "parameters", "synapses", "train_s", "onnx_nodes", "onnx_bytes", "artifacts", "node")


def ray_init_args(rcfg: dict) -> dict:
    """ray.init()'s arguments. An address given: join that cluster. None (or "local"): a fresh
    local Ray with num_cpus, always: address="local" keeps Ray from joining whatever a stale
    ray_current_cluster file (left by an earlier or crashed Ray) or RAY_ADDRESS points at."""
    address = (rcfg.get("address") or "").strip()
    if address and address != "local":
        return {"address": address, "log_to_driver": False}
    return {"address": "local", "num_cpus": int(rcfg.get("num_cpus", 2)), "include_dashboard": False,
            "log_to_driver": False}


AUTH_FIX = ("set RAY_AUTH_MODE=token and the cluster's token here: RAY_AUTH_TOKEN, or the token file "
            "(~/.ray/auth_token, or RAY_AUTH_TOKEN_PATH) copied from the head (`ray get-auth-token` there)")


def _probe(address: str, timeout: float = 5.0) -> None:
    """A TCP connect to a host:port or ray://host:port address, bounded: Ray itself retries an
    unreachable address for minutes, printing a screen of warnings."""
    import socket

    hostport = address.removeprefix("ray://").rsplit("/", 1)[0]
    host, _, port = hostport.rpartition(":")
    if not host or not port.isdigit():
        raise LtcEdgeError(f"--address {address!r} is not auto, local, HOST:PORT or ray://HOST:PORT")
    try:
        socket.create_connection((host.strip("[]"), int(port)), timeout=timeout).close()
    except OSError as e:
        why = "timed out" if isinstance(e, TimeoutError) else (e.strerror or str(e))
        raise LtcEdgeError(f"cannot reach Ray at {address} ({why}): start Ray there (`ray start --head`; "
                           f"ray:// clients use port 10001, drivers on a node the GCS port 6379) or fix --address")


def connect(args: dict) -> None:
    """ray.init(**args), quietly: Ray's own output while connecting (a retry warning a second
    for ~20 s when the token is refused) goes to a file, read only to tell an auth failure; a
    failure is one line that names the fix."""
    import os
    import sys

    import ray

    address = args["address"]
    if address not in ("local", "auto"):
        _probe(address)
    with tempfile.TemporaryFile() as noise, _client_log() as client_said:
        sys.stderr.flush()
        saved = os.dup(2)
        os.dup2(noise.fileno(), 2)
        try:
            ray.init(**args)
            failure = None
        except Exception as e:  # noqa: BLE001 - Ray raises many kinds; each becomes one line
            failure = e
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
        noise.seek(0)
        said = noise.read().decode(errors="replace") + "\n".join(client_said)
    if failure is not None:
        raise LtcEdgeError(connect_error(address, failure, said)) from None


@contextmanager
def _client_log():
    """What Ray's client (ray://) says at debug level while connecting: the only place a refused
    token shows ("Received when checking init: Invalid or missing authentication token"); its
    ray.init just times out after ~30 s with "ray client connection timeout"."""
    import logging

    said = []

    class Keep(logging.Handler):
        def emit(self, record):
            said.append(record.getMessage())

    logger, handler = logging.getLogger("ray.util.client.worker"), Keep(logging.DEBUG)
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.DEBUG)
    logger.propagate = False  # its debug lines stay off the terminal
    logger.addHandler(handler)
    try:
        yield said
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
        logger.propagate = propagate


def connect_error(address: str, e: Exception, said: str) -> str:
    """The one line for a failed ray.init (e), with what Ray printed meanwhile (said)."""
    text = f"{e}\n{said}"
    if type(e).__name__ == "AuthenticationError" or any(
            sign in text for sign in ("InvalidAuthToken", "Unauthenticated", "missing authentication token")):
        return f"Ray at {address} refused this driver (token authentication): {AUTH_FIX}"
    if "requires pip package `ray[client]`" in text:  # Ray's client needs grpcio, not in a minimal ray
        return f"{address}: a ray:// address needs Ray's client: pip install \"ray[client]\" (in ltc-edge[sweep])"
    first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    hint = "; start one with `ray start --head`, or leave --address out for a local Ray" if address == "auto" else ""
    return f"cannot connect to Ray at {address}: {first}{hint}"


def trial_base(cfg: dict) -> dict:
    """What every trial shares (the config without its grid)."""
    return {"task": cfg["task"], "task_options": cfg.get("task_options", {}), "epochs": cfg.get("epochs", 3),
            "batch_size": cfg.get("batch_size"), "seed": cfg.get("seed", 0),
            "compile": cfg.get("compile", False), "patience": cfg.get("patience")}


def sweep_key(base: dict) -> str:
    """A finished trial counts for --resume only under the same shared settings (task, data, epochs...)."""
    return hashlib.sha256(json.dumps(base, sort_keys=True).encode()).hexdigest()[:16]


def record_trial(out: Path, key: str, trial: dict, row: dict) -> dict:
    """A finished trial, home: its artifacts under OUT/trials/NAME/ (sha256-checked), then its
    record row.json (written last: a record means every file is there)."""
    folder = out / "trials" / trial_name(trial)
    row = receive_artifacts({k: v for k, v in row.items() if k.startswith("param_") or k in ROW_KEYS}, folder)
    atomic_write_bytes(folder / "row.json", json.dumps({"sweep_key": key, "trial": trial, "row": row}).encode())
    return row


def finished_trials(out: Path, key: str, grid: list) -> dict:
    """The grid's trials OUT already holds, recorded under the same key with every artifact
    intact: {trial name: row}."""
    done = {}
    for t in grid:
        folder = out / "trials" / trial_name(t)
        try:
            rec = json.loads(read_bytes(folder / "row.json", "trial record", 1 << 20))
            intact = all(hashlib.sha256(read_bytes(folder / rel, "artifact")).hexdigest() == sha
                         for rel, sha in rec["row"]["artifacts_sha256"].items())
        except (OSError, ValueError, KeyError, TypeError):
            continue  # no record, or a damaged one: the trial runs again
        if intact and rec.get("sweep_key") == key and rec.get("trial") == t:
            done[trial_name(t)] = rec["row"]
    return done


def _recorder(out: Path, key: str, errors: list):
    """record(trial, row) for the driver: a finished trial home (record_trial); a failure is kept
    in errors and returned as its text."""
    def record(t: dict, row: dict) -> str | None:
        try:
            record_trial(out, key, t, dict(row))
        except (LtcEdgeError, OSError, KeyError) as e:
            errors.append({"trial": t, "error": str(e)})
            return str(e)
        return None

    return record


def _tuner(cfg: dict, grid: list, out: Path, sink, client: bool):
    """The Tune run of the grid; each trial's events (start, epochs, end) go to sink. On a ray://
    client Tune runs on the head, so its storage is the head's default (out is this machine's)."""
    from ray import tune

    from .sweep_progress import tune_callback

    rcfg = cfg.get("ray") or {}
    trainable = tune.with_resources(run_trial, {"cpu": float(rcfg.get("cpus_per_trial", 1))})
    run_config = tune.RunConfig(storage_path=None if client else str(out / "ray"), name="sweep", verbose=0,
                                failure_config=tune.FailureConfig(max_failures=int(rcfg.get("max_failures", 2))),
                                callbacks=[tune_callback(sink)])
    return tune.Tuner(trainable, param_space={**trial_base(cfg), "report_epochs": True,
                                              "trial": tune.grid_search(grid)},
                      tune_config=tune.TuneConfig(max_concurrent_trials=int(rcfg.get("max_concurrent", 2))),
                      run_config=run_config)


def _fit_with_progress(cfg: dict, grid: list, out: Path, progress):
    """tuner.fit(), its trial events to progress.handle: directly where Tune runs in this process;
    through a Ray queue drained here on a ray:// client (where Tune runs on the head)."""
    import threading

    import ray
    from ray.util.queue import Empty, Queue

    if not ray.util.client.ray.is_connected():
        return _tuner(cfg, grid, out, progress.handle, client=False).fit()
    queue, stop = Queue(actor_options={"num_cpus": 0}), threading.Event()

    def drain():
        while not stop.is_set():
            try:
                progress.handle(queue.get(timeout=0.5))
            except Empty:
                pass

    drainer = threading.Thread(target=drain, daemon=True)
    drainer.start()
    try:
        results = _tuner(cfg, grid, out, queue.put, client=True).fit()
    finally:
        stop.set()
        drainer.join()
    while not queue.empty():  # what arrived after the last poll
        progress.handle(queue.get_nowait())
    return results


def _fit(cfg: dict, grid: list, out: Path) -> list:
    """Run the grid on Ray Tune (started here unless the caller has one), a line per trial event on
    the terminal and Ray's own output in OUT/ray.log: the failed trials (the finished ones are
    recorded under out as they end)."""
    import ray

    from .sweep_progress import SweepProgress, ray_output_to

    rcfg, errors = cfg.get("ray") or {}, []
    with ray_output_to(out / "ray.log") as terminal:
        started_here = not ray.is_initialized()
        if started_here:
            connect(ray_init_args(rcfg))
        try:
            progress = SweepProgress(len(grid), terminal, _recorder(out, sweep_key(trial_base(cfg)), errors),
                                     int(rcfg.get("max_failures", 2)))
            results = _fit_with_progress(cfg, grid, out, progress)
        finally:
            if started_here:
                ray.shutdown()
    failed = [{"trial": r.config.get("trial"), "error": str(r.error).splitlines()[-1][:300]}
              for r in results if r.error is not None]
    return failed + errors


def run_sweep(cfg: dict, out: Path, resume: bool = False) -> dict:
    """The sweep; with resume, the trials OUT already holds (finished_trials) are not run again."""
    from .report import pareto_front
    from ..machine import machine_info

    out = Path(out).resolve()
    grid = trials(cfg)
    key = sweep_key(trial_base(cfg))
    earlier = finished_trials(out, key, grid) if resume else {}
    todo = [t for t in grid if trial_name(t) not in earlier]
    for t in todo:  # an older record of a trial run again is stale, whether or not it succeeds now
        (out / "trials" / trial_name(t) / "row.json").unlink(missing_ok=True)
    failed = _fit(cfg, todo, out) if todo else []
    done = finished_trials(out, key, grid)
    rows = [done[trial_name(t)] for t in grid if trial_name(t) in done]
    higher = bool(rows) and rows[0]["metric_name"] == "accuracy"
    front = pareto_front([(r["p50_us"], r["metric"]) for r in rows], higher) if rows else []
    for i, r in enumerate(rows):
        r["pareto"] = i in front
    rows.sort(key=lambda r: (-r["metric"] if higher else r["metric"]))
    address = ray_init_args(cfg.get("ray") or {})["address"]
    summary = {"task": cfg["task"], "epochs": cfg.get("epochs", 3), "patience": cfg.get("patience"),
               "trials": len(grid), "resumed": len(earlier), "failed": failed,
               "ray_address": address, "machine": machine_info(), "rows": rows}
    if any("param_seed" in r for r in rows):
        summary["groups"] = groups(rows)
    atomic_write_bytes(out / "sweep.json", json.dumps(summary, indent=2).encode())
    return summary


def table(summary: dict):
    from rich.table import Table

    rows = summary["rows"]
    params = sorted({k for r in rows for k in r if k.startswith("param_")})
    t = Table(title=f"sweep on {summary['task']} ({len(rows)} of {summary['trials']} trials; * = Pareto front)")
    name = rows[0]["metric_name"] if rows else "metric"
    for col in ["", *(p[6:] for p in params), f"test {name} (windows)", f"streamed {name} (whole series)", "p50 µs",
                "params", "ONNX nodes"]:
        t.add_column(col)
    for r in rows:
        t.add_row("*" if r["pareto"] else "", *(str(r.get(p, "-")) for p in params), f"{r['metric']:.4g}",
                  _number(r.get("streaming_metric")), f"{r['p50_us']:.1f}", str(r["parameters"]),
                  str(r.get("onnx_nodes", "-")))
    return t


def _number(value) -> str:
    return "-" if value is None else f"{value:.4g}"


def groups_table(summary: dict):
    """The per-configuration statistics over seeds (summary["groups"])."""
    from rich.table import Table

    gs = summary["groups"]
    params = sorted({k for g in gs for k in g if k.startswith("param_")})
    name = gs[0]["metric_name"] if gs else "metric"
    t = Table(title=f"over seeds: {name} mean ± std (n-1)")
    for col in [*(p[6:] for p in params), "seeds", f"{name} mean ± std", "min", "max", f"streamed {name} mean"]:
        t.add_column(col)
    for g in gs:
        spread = "" if g["std"] is None else f" ± {g['std']:.3g}"
        t.add_row(*(str(g.get(p, "-")) for p in params), str(g["n"]), f"{g['mean']:.4g}{spread}",
                  f"{g['min']:.4g}", f"{g['max']:.4g}", _number(g.get("streaming_mean")))
    return t
