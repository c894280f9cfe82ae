"""`ltc sweep` on a local 2-worker Ray: trains, exports and times every trial."""

import json
import statistics
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ltc_edge.bench.sweep import (groups, groups_table, pack_artifacts, ray_init_args, read_config, receive_artifacts,
                                  run_sweep, table, trials)
from ltc_edge.errors import LtcEdgeError
from ltc_edge.cli import app

pytest.importorskip("ray")


def test_grid_drops_options_that_do_not_apply(tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text('task = "digits"\n[search]\nmodel = ["ltc", "lstm"]\nwiring = ["auto-ncp", "full"]\n'
                   'ode_unfolds = [3, 6]\nunits = [8]\n')
    grid = trials(read_config(cfg))
    assert len([t for t in grid if t["model"] == "ltc"]) == 4
    assert [t for t in grid if t["model"] == "lstm"] == [{"model": "lstm", "units": 8}]


def test_union_of_grids_with_seeds(tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text('task = "cheetah"\nepochs = 2\ncompile = true\n'
                   '[[search]]\nmodel = ["ltc"]\nwiring = ["full", "auto-ncp"]\nseed = [0, 1, 2]\n'
                   '[[search]]\nmodel = ["lstm", "cfc"]\nseed = [0, 1, 2]\n'
                   '[[search]]\nmodel = ["lstm"]\nseed = [2]\n')  # a duplicate of the grid above
    grid = trials(read_config(cfg))
    assert len(grid) == 12 and len({json.dumps(t, sort_keys=True) for t in grid}) == 12
    assert sorted(t["seed"] for t in grid if t["model"] == "lstm") == [0, 1, 2]
    assert {t.get("wiring") for t in grid if t["model"] == "ltc"} == {"full", "auto-ncp"}
    assert all("wiring" not in t for t in grid if t["model"] == "cfc")  # no wiring given for it


def test_patience_reaches_each_trial(tmp_path, monkeypatch):
    """A sweep config's patience is the trial's early stop (and the row says how many epochs ran)."""
    from ltc_edge.bench import sweep
    from ltc_edge.train import loop

    cfg = tmp_path / "s.toml"
    cfg.write_text('task = "digits"\nepochs = 50\npatience = 4\n[search]\nmodel = ["lstm"]\n')
    assert read_config(cfg)["patience"] == 4
    seen = []
    monkeypatch.setattr(loop, "train", lambda task, model, out, opts, **kw: seen.append(opts) or 1 / 0)
    with pytest.raises(ZeroDivisionError):  # stop right after train() got its options
        sweep.run_trial({"trial": {"model": "lstm", "units": 4}, "task": "digits", "epochs": 50, "patience": 4,
                         "out_dir": str(tmp_path / "trials")})
    assert seen[0].patience == 4 and seen[0].epochs == 50 and "epochs_run" in sweep.ROW_KEYS


def test_groups_are_mean_and_sample_std_over_seeds():
    rows = [{"param_model": "ltc", "param_seed": s, "metric": m, "metric_name": "mse"}
            for s, m in ((0, 2.0), (1, 2.5), (2, 3.5))]
    rows += [{"param_model": "lstm", "param_seed": 0, "metric": 4.0, "metric_name": "mse"}]
    g = {x["param_model"]: x for x in groups(rows)}
    assert g["ltc"]["n"] == 3 and g["ltc"]["seeds"] == [0, 1, 2]
    assert g["ltc"]["mean"] == pytest.approx(8.0 / 3)
    assert g["ltc"]["std"] == pytest.approx(statistics.stdev([2.0, 2.5, 3.5])) and g["ltc"]["std"] > 0.7
    assert (g["ltc"]["min"], g["ltc"]["max"]) == (2.0, 3.5)
    assert g["lstm"]["n"] == 1 and g["lstm"]["std"] is None and g["lstm"]["mean"] == 4.0


def test_paper_table_says_when_it_is_not_the_protocol():
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import paper_table as P

    def summary(epochs, n):
        rows = [{"param_model": m, **({"param_wiring": w} if w else {}), "param_units": 32, "param_seed": s,
                 "metric": 2.0 + 0.1 * s + i, "metric_name": "mse"}
                for i, (m, w) in enumerate(P.MODELS.values()) for s in range(n)]
        return {"task": "cheetah", "epochs": epochs, "rows": rows, "groups": groups(rows)}

    full = P.build(summary(200, 5), "s.json")
    assert full["protocol_complete"] and [r["model"] for r in full["rows"]] == list(P.MODELS)
    ltc = full["rows"][0]
    assert ltc["mean"] == pytest.approx(2.2) and ltc["paper_mean"] == 2.308 and ltc["n"] == 5
    short = P.build(summary(3, 2), "s.json")
    assert not short["protocol_complete"] and "NOT the paper's protocol" in P.markdown(short)
    assert not P.build(summary(200, 4), "s.json")["protocol_complete"]
    with pytest.raises(SystemExit, match="cannot read the sweep summary"):
        P.read_summary(Path(__file__))  # not JSON
    with pytest.raises(SystemExit, match="no seed groups"):
        P.build({"task": "cheetah", "epochs": 200, "rows": []}, "s.json")


def test_paper_table_from_the_trials_of_a_sweep_cut_short(tmp_path):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
    import paper_table as P

    for model, wiring, seed, mse in (("ltc", "full", 0, 2.4), ("ltc", "full", 1, 2.2), ("lstm", None, 0, 2.6)):
        d = tmp_path / f"model={model}-seed={seed}"
        d.mkdir()
        (d / "model.metrics.json").write_text(json.dumps(
            {"task": "cheetah", "metric": "mse", "model": model, "wiring": wiring, "counts": {"neurons": 32},
             "options": {"seed": seed, "epochs": 200}, "test": {"mse": mse}, "best_epoch": 40}))
    (tmp_path / "model=ltc-seed=2").mkdir()  # still training: no metrics file yet
    result = P.build(P.summary_from_trials(tmp_path), str(tmp_path))
    ltc, lstm = result["rows"]
    assert (ltc["model"], ltc["n"], lstm["model"], lstm["n"]) == ("LTC", 2, "LSTM", 1)
    assert ltc["mean"] == pytest.approx(2.3) and [e["seed"] for e in ltc["per_seed"]] == [0, 1]
    assert not result["protocol_complete"] and result["epochs"] == 200
    assert "incomplete" in P.markdown(result) and "NOT" not in P.markdown(result)
    with pytest.raises(SystemExit, match="the same trial in more than one sweep"):
        P.merge([P.summary_from_trials(tmp_path)] * 2)
    other = {"task": "cheetah", "epochs": 30, "rows": []}
    with pytest.raises(SystemExit, match="differ in task or epochs"):
        P.merge([P.summary_from_trials(tmp_path), other])


@pytest.mark.parametrize("text,msg", [("epochs = 1\n[search]\nmodel=['ltc']", "needs a task"),
                                      ("task='digits'\n[search]\nmodel=['ltc']\nfoo=[1]", "unknown search key"),
                                      ("task='digits'\nbogus=1\n[search]\nmodel=['ltc']", "unknown key"),
                                      ("task = [", "cannot parse"),
                                      ("task='digits'\n[search]\nmodel=['ltc', 'bogus']",
                                       "unknown search.model 'bogus'; choose from ltc, cfc, ctrnn, node, lstm, gru"),
                                      ("task='nope'\n[search]\nmodel=['ltc']", "unknown task 'nope'"),
                                      ("task='digits'\n[search]\nmodel=[]", "search.model is an empty list"),
                                      ("task='digits'\n[search]\nmodel=['ltc']\nunits=[8, 0]",
                                       "search.units must be >= 1, got 0"),
                                      ("task='digits'\n[search]\nmodel=['ltc']\nunits=[8.5]",
                                       "search.units must be an integer >= 1"),
                                      ("task='digits'\n[search]\nmodel=['ltc']\nlr=[-0.1]", "search.lr must be > 0"),
                                      ("task='digits'\n[search]\nmodel=['ltc']\nlr=[nan]",
                                       "search.lr must be a finite number"),
                                      ("task='digits'\n[search]\nmodel=['ltc']\nwiring=['star']",
                                       "unknown search.wiring 'star'"),
                                      ("task='digits'\n[search]\nmodel=['ltc']\node_unfolds=[0]",
                                       "search.ode_unfolds must be >= 1"),
                                      ("task='digits'\nepochs=0\n[search]\nmodel=['ltc']", "epochs must be >= 1"),
                                      ("task='digits'\nseed=-2\n[search]\nmodel=['ltc']", "seed must be >= 0"),
                                      ("task='digits'\n[search]\nmodel=['ltc']\nseed=[0, -1]",
                                       "search.seed must be >= 0, got -1"),
                                      ("task='digits'\nsearch=3", "search must be a [search] table"),
                                      ("task='digits'\n[[search]]\nmodel=['ltc']\n[[search]]\nunits=[8]",
                                       "[search] needs model"),
                                      ("task='digits'\ncompile='yes'\n[search]\nmodel=['ltc']",
                                       "compile must be true or false"),
                                      ("task='digits'\npatience=0\n[search]\nmodel=['ltc']", "patience must be >= 1"),
                                      ("task='digits'\n[search]\nmodel=['ltc']\n[ray]\nnum_cpus=0",
                                       "ray.num_cpus must be >= 1"),
                                      ("task='digits'\n[search]\nmodel=['ltc']\n[ray]\ncpus_per_trial=0",
                                       "ray.cpus_per_trial must be > 0"),
                                      ("task='digits'\n[search]\nmodel=['ltc']\n[ray]\nmax_failures=-1",
                                       "ray.max_failures must be >= 0, got -1")])
def test_bad_configs_are_one_line_errors(tmp_path, text, msg):
    cfg = tmp_path / "s.toml"
    cfg.write_text(text)
    r = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(tmp_path / "o")])
    assert r.exit_code == 1 and msg in r.output and "Traceback" not in r.output
    assert len(r.output.strip().splitlines()) == 1, r.output


def test_sweep_refuses_its_config_as_out(tmp_path):
    cfg = tmp_path / "s.toml"
    cfg.write_text("task='digits'\n[search]\nmodel=['ltc']")
    r = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(cfg)])
    assert r.exit_code == 1 and "is the input" in r.output and "Traceback" not in r.output


def test_unfold_and_wired_kinds_come_from_the_cells():
    from ltc_edge.bench.sweep import unfold_kinds, wired_kinds
    from ltc_edge.nn import CELLS

    assert unfold_kinds() == ("ltc", "ctrnn", "node") and set(wired_kinds()) == {"ltc", "cfc"}
    assert set(unfold_kinds()) <= set(CELLS) and set(wired_kinds()) <= set(CELLS)


@pytest.fixture
def ray_tmpdir(monkeypatch):
    """A Ray of the test's own (RAY_TMPDIR: its sessions, sockets, ray_current_cluster), apart
    from any other Ray on this machine; short, as Ray's unix socket paths must be."""
    import shutil
    import tempfile

    folder = tempfile.mkdtemp(prefix="ltcray", dir="/tmp")
    monkeypatch.setenv("RAY_TMPDIR", folder)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


class _NoRay(Exception):
    """Raised by a stand-in ray.init: the test needs the arguments, not a cluster."""


def _fake_ray(monkeypatch) -> list:
    import ray

    from ltc_edge.bench import sweep

    calls = []
    monkeypatch.setattr(sweep, "_probe", lambda address: None)  # no cluster to reach: ray.init is the stand-in

    def init(**kwargs):
        calls.append(kwargs)
        raise _NoRay

    monkeypatch.setattr(ray, "is_initialized", lambda: False)
    monkeypatch.setattr(ray, "init", init)
    return calls


def test_no_address_means_a_fresh_local_ray(tmp_path, monkeypatch):
    """Issue 29: a stale address (a leftover ray_current_cluster file, RAY_ADDRESS) is never
    joined when no --address is given: Ray is told address="local" with the local num_cpus."""
    calls = _fake_ray(monkeypatch)
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")  # what a crashed earlier Ray leaves behind
    cfg = tmp_path / "s.toml"
    cfg.write_text("task='cheetah'\n[search]\nmodel=['ltc']\n[ray]\nnum_cpus=3\n")
    local = {"address": "local", "num_cpus": 3, "include_dashboard": False, "log_to_driver": False}
    r = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(tmp_path / "o")])
    assert "cannot connect to Ray at local: _NoRay" in r.output and calls == [local] and "a fresh local Ray" in r.output
    r = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(tmp_path / "o"), "--address", "local"])
    assert r.exit_code == 1 and calls[-1] == local
    # an address given joins that cluster as is, without num_cpus (Ray refuses it when joining)
    r = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(tmp_path / "o"), "--address", "ray://head:10001"])
    assert calls[-1] == {"address": "ray://head:10001", "log_to_driver": False} and "Ray at ray://head:10001" in r.output
    assert ray_init_args({"address": "auto", "num_cpus": 3}) == {"address": "auto", "log_to_driver": False}
    assert ray_init_args({"address": ""})["address"] == "local"


def test_task_options_paths_are_the_config_folders_and_bad_data_fails_before_ray(tmp_path, monkeypatch):
    calls = _fake_ray(monkeypatch)
    (tmp_path / "cfg").mkdir()
    rows = [f"{0.1 * i:.1f},{i % 5}.5,{i % 3}.25" for i in range(300)]
    dirty = rows[:70] + ["7.0,abc,1.25"] + rows[71:]  # data row 70: line 72
    (tmp_path / "cfg" / "log.csv").write_text("t,u,y\n" + "\n".join(dirty) + "\n")
    text = ("task='csv'\n[task_options]\ndata='log.csv'\ninputs='u'\ntargets='y'\ntime='t'\n"
            "[search]\nmodel=['lstm']\n")
    (tmp_path / "cfg" / "s.toml").write_text(text)
    cfg = read_config(tmp_path / "cfg" / "s.toml")
    assert cfg["task_options"]["data"] == str(tmp_path / "cfg" / "log.csv")  # not the working folder's
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(app, ["sweep", "cfg/s.toml", "--out", "o"])
    assert r.exit_code == 1 and calls == [] and "Traceback" not in r.output
    assert r.output.strip() == (f"error: {tmp_path / 'cfg' / 'log.csv'}: input column 'u' is not numeric: "
                                "'abc' at line 72")
    (tmp_path / "cfg" / "s.toml").write_text(text.replace("[search]", "seq_len=8\nsplit=[0.8, 0.15, 0.05]\n[search]"))
    (tmp_path / "cfg" / "log.csv").write_text("t,u,y\n" + "\n".join(rows) + "\n")
    r = CliRunner().invoke(app, ["sweep", "cfg/s.toml", "--out", "o"])
    assert "_NoRay" in r.output and len(calls) == 1
    assert "warning: the test split is 15 rows (2 windows)" in r.output
    for options, msg in (("task_options=3", "task_options must be a [task_options] table"),
                         ("[task_options]\ndata='log.csv'\ninputs='u'\ntargets='y'\nfoo=1",
                          "task csv takes no task_options.foo; it takes data, inputs, targets, time, seq_len, "
                          "stride, split"),
                         ("[task_options]\ninputs='u'\ntargets='y'", "task csv needs data in [task_options]"),
                         ("[task_options]\ndata=3\ninputs='u'\ntargets='y'",
                          "task_options.data must be a non-empty string, got 3"),
                         ("[task_options]\ndata='log.csv'\ninputs=[true]\ntargets='y'",
                          "task_options.inputs must be column names or indices"),
                         ("[task_options]\ndata='log.csv'\ninputs='u'\ntargets='y'\nseq_len='a'",
                          "task_options.seq_len must be an integer >= 1, got 'a'")):
        (tmp_path / "cfg" / "s.toml").write_text(f"task='csv'\n{options}\n[search]\nmodel=['lstm']\n")
        r = CliRunner().invoke(app, ["sweep", "cfg/s.toml", "--out", "o"])
        assert r.exit_code == 1 and r.output.startswith("error: cfg/s.toml: ") and msg in r.output, r.output
        assert len(r.output.strip().splitlines()) == 1
    (tmp_path / "cfg" / "s.toml").write_text("task='digits'\n[task_options]\nseq_len=8\n[search]\nmodel=['lstm']\n")
    r = CliRunner().invoke(app, ["sweep", "cfg/s.toml", "--out", "o"])
    assert "task digits takes no task_options.seq_len; it takes none" in r.output
    from ltc_edge.train.stored import TASK_OPTIONS
    from ltc_edge.train.tasks import TASKS

    assert set(TASK_OPTIONS) == set(TASKS)  # every task says which options it takes


def test_tables_show_the_streamed_metric_beside_the_windowed_one():
    from rich.console import Console

    rows = [{"param_model": "ltc", "param_seed": s, "metric": m, "streaming_metric": sm, "metric_name": "mse",
             "p50_us": 10.0, "parameters": 99, "pareto": s == 0} for s, m, sm in ((0, 0.23, 0.81), (1, 0.25, 0.79))]
    summary = {"task": "csv", "trials": 2, "rows": rows, "groups": groups(rows)}
    assert summary["groups"][0]["streaming_mean"] == pytest.approx(0.80)
    console = Console(record=True, width=200)
    console.print(table(summary))
    console.print(groups_table(summary))
    text = console.export_text()
    assert "test mse (windows)" in text and "streamed mse (whole series)" in text and "streamed mse mean" in text
    assert " 0.23 " in text and " 0.81 " in text and " 0.8 " in text
    rows[1]["streaming_metric"] = None  # not measured for one seed: no mean over the others
    assert groups(rows)[0]["streaming_mean"] is None


@pytest.mark.slow
def test_a_trial_on_a_csv_streams_like_ltc_eval(tmp_path, monkeypatch):
    """One trial (no Ray), the data named relative to the config, run from another folder (as Ray
    runs trials): its streamed metric is `ltc eval --streaming`'s."""
    from ltc_edge.bench.sweep import run_trial

    rows = "\n".join(f"{0.1 * i:.1f},{(i * 7) % 5}.5,{(i * 7) % 5 * 0.3:.2f}" for i in range(300))
    (tmp_path / "log.csv").write_text("t,u,y\n" + rows + "\n")
    (tmp_path / "s.toml").write_text("task='csv'\nepochs=1\nbatch_size=4\n[task_options]\ndata='log.csv'\n"
                                     "inputs='u'\ntargets='y'\ntime='t'\nseq_len=16\n[search]\nmodel=['lstm']\n")
    cfg = read_config(tmp_path / "s.toml")
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    row = run_trial({"trial": {"model": "lstm", "units": 4}, "task": "csv", "task_options": cfg["task_options"],
                     "epochs": 1, "batch_size": 4})
    receive_artifacts(row, tmp_path / "trials" / "t")  # the bytes it sent, written where the driver is
    r = CliRunner().invoke(app, ["eval", row["model_file"], "--streaming", "--json"])
    got = json.loads(r.output.strip().splitlines()[-1])
    assert row["metric"] == pytest.approx(got["mse"], rel=1e-5)
    assert row["streaming_metric"] == pytest.approx(got["streaming_mse"], rel=1e-6) and got["streaming_steps"] == 45
    assert row["streaming_metric"] != pytest.approx(row["metric"], rel=1e-3)  # two different measurements


@pytest.mark.slow
def test_local_two_worker_sweep(tmp_path, monkeypatch, ray_tmpdir):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:1")  # a stale address: no --address must not join it
    cfg = tmp_path / "sweep.toml"
    cfg.write_text('task = "digits"\nepochs = 6\nbatch_size = 32\n'
                   '[[search]]\nmodel = ["ltc"]\nunits = [16]\nlr = [0.02]\nwiring = ["auto-ncp"]\n'
                   '[[search]]\nmodel = ["gru"]\nunits = [16]\nlr = [0.02]\nseed = [0, 1]\n'
                   '[ray]\nnum_cpus = 2\ncpus_per_trial = 1\nmax_concurrent = 2\n')
    r = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    summary = json.loads((tmp_path / "out" / "sweep.json").read_text())
    assert summary["trials"] == 3 and not summary["failed"]
    rows = {(r["param_model"], r.get("param_seed")): r for r in summary["rows"]}
    assert set(rows) == {("ltc", None), ("gru", 0), ("gru", 1)}
    assert summary["ray_address"] == "local"
    for row in rows.values():
        assert 0.0 <= row["metric"] <= 1.0 and row["p50_us"] > 0 and row["onnx_nodes"] > 0
        # digits has no series: its windows stream one by one from the reset state, as windowed
        assert row["streaming_metric"] == pytest.approx(row["metric"], abs=0.01)
        assert 1 <= row["best_epoch"] <= 6 and 0.0 <= row["valid_metric"] <= 1.0
    # two seeds are two different trainings; their group holds both, mean between them
    assert rows[("gru", 0)]["metric"] != rows[("gru", 1)]["metric"]
    g = {x["param_model"]: x for x in summary["groups"]}
    assert g["gru"]["n"] == 2 and g["gru"]["min"] < g["gru"]["mean"] < g["gru"]["max"] and g["gru"]["std"] > 0
    assert g["ltc"]["n"] == 1 and "over seeds" in r.output
    # live progress from the trials' own epoch reports; Tune's tables off the terminal, in OUT/ray.log
    lines = r.output.splitlines()
    for name in ("LTC-NCP-16 lr 0.02", "GRU-16 lr 0.02 seed 0", "GRU-16 lr 0.02 seed 1"):
        assert f"{name}  started" in lines and any(x.startswith(f"{name}  epoch 6/6  valid accuracy ") for x in lines)
        assert any(x.startswith(f"{name}  done  test accuracy ") for x in lines)
    assert any(x.startswith("3/3 done, 0 running") for x in lines) and "Configuration for experiment" not in r.output
    assert "Trial status" not in r.output and (tmp_path / "out" / "ray.log").is_file()
    # a trial's model stores its task as `ltc train` does, so eval / export / analyze default to it
    from ltc_edge.nn.modelfile import read

    config, _ = read(rows[("gru", 1)]["model_file"])
    assert config["task"]["name"] == "digits" and config["task"]["metric"] == "accuracy"
    r = CliRunner().invoke(app, ["eval", rows[("gru", 1)]["model_file"]])
    assert r.exit_code == 0 and f"{rows[('gru', 1)]['metric']:.4f}"[:5] in r.output, r.output
    assert any(r["pareto"] for r in summary["rows"])
    import hashlib

    for row in rows.values():  # every artifact came home under OUT, as its trial hashed it
        folder = Path(row["model_file"]).parent
        assert folder.parent == tmp_path / "out" / "trials" and "onnx/model.onnx" in row["artifacts_sha256"]
        for rel, sha in row["artifacts_sha256"].items():
            assert hashlib.sha256((folder / rel).read_bytes()).hexdigest() == sha
    # digits has 10 classes: after six epochs both beat chance (0.1) clearly (a 16-neuron auto-NCP
    # LTC needs ~5 epochs at lr 0.02 to leave the plateau: 0.27 after 3, 0.57 after 5)
    assert min(r["metric"] for r in summary["rows"]) > 0.4


def test_artifacts_come_home_by_value_sha256_checked(tmp_path):
    """Issue 26: a trial sends its files as bytes (no shared filesystem); the driver writes them
    under its own OUT, every sha256 checked, and refuses a damaged or escaping file."""
    node = tmp_path / "node"
    (node / "onnx").mkdir(parents=True)
    (node / "model.safetensors").write_bytes(b"\x00weights" * 300)
    (node / "onnx" / "model.onnx").write_bytes(b"onnx-bytes")
    (node / "model.metrics.json").write_text('{"test": {"mse": 0.5}}')
    sent = pack_artifacts(node)
    row = receive_artifacts({"metric": 0.5, "artifacts": sent}, tmp_path / "home" / "model=lstm")
    home = tmp_path / "home" / "model=lstm"
    assert row["model_file"] == str(home / "model.safetensors") and "artifacts" not in row
    assert (home / "model.safetensors").read_bytes() == b"\x00weights" * 300
    assert (home / "onnx" / "model.onnx").read_bytes() == b"onnx-bytes"
    assert sorted(row["artifacts_sha256"]) == ["model.metrics.json", "model.safetensors", "onnx/model.onnx"]
    import base64
    import hashlib

    assert row["artifacts_sha256"]["onnx/model.onnx"] == hashlib.sha256(b"onnx-bytes").hexdigest()
    files = json.loads(sent)
    files["model.safetensors"]["data"] = base64.b64encode(b"\x00weightz" * 300).decode()  # damaged on the way
    with pytest.raises(LtcEdgeError, match="model.safetensors arrived damaged .sha256 mismatch.; not written"):
        receive_artifacts({"artifacts": json.dumps(files)}, tmp_path / "bad")
    assert not (tmp_path / "bad").exists()  # nothing written, not even the intact files
    escaping = {"../../evil": {"sha256": hashlib.sha256(b"x").hexdigest(), "data": base64.b64encode(b"x").decode()}}
    with pytest.raises(LtcEdgeError, match="points outside its trial folder"):
        receive_artifacts({"artifacts": json.dumps(escaping)}, tmp_path / "home" / "t2")


def _fake_fit(tmp_path, monkeypatch) -> list:
    """sweep._fit as a stand-in: each trial 'trains' on a node of its own (a temp folder) and
    comes home through record_trial as the Tune callback brings it; the grids it was given."""
    from ltc_edge.bench import sweep

    runs = []

    def fit(cfg, grid, out):
        runs.append([sweep.trial_name(t) for t in grid])
        key = sweep.sweep_key(sweep.trial_base(cfg))
        for i, t in enumerate(grid):
            node = tmp_path / "node" / sweep.trial_name(t)
            node.mkdir(parents=True, exist_ok=True)
            (node / "model.safetensors").write_bytes(f"model {t}".encode())
            row = {"param_model": t["model"], "param_units": t["units"], "metric": 0.1 * t["units"],
                   "metric_name": "mse", "p50_us": 10.0 + i, "parameters": 5, "artifacts": pack_artifacts(node)}
            sweep.record_trial(out, key, t, row)
        return []

    monkeypatch.setattr(sweep, "_fit", fit)
    return runs


def test_resume_runs_only_the_trials_out_does_not_hold(tmp_path, monkeypatch):
    """--resume: finished trials (recorded under the same config, artifacts intact) are not run
    again; a damaged artifact or another config's record is."""
    runs = _fake_fit(tmp_path, monkeypatch)
    cfg = tmp_path / "s.toml"
    cfg.write_text("task='digits'\n[search]\nmodel=['lstm']\nunits=[4, 8, 16]\n")
    out = tmp_path / "out"
    r = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(out)])
    assert r.exit_code == 0, r.output
    assert runs[-1] == ["model=lstm-units=4", "model=lstm-units=8", "model=lstm-units=16"]
    (out / "trials" / "model=lstm-units=8" / "row.json").unlink()  # killed before it came home
    (out / "trials" / "model=lstm-units=16" / "model.safetensors").write_bytes(b"truncated")
    r = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(out), "--resume"])
    assert r.exit_code == 0 and "resumed: 1 finished trial(s)" in r.output, r.output
    assert runs[-1] == ["model=lstm-units=8", "model=lstm-units=16"]
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["resumed"] == 1 and sorted(r["param_units"] for r in summary["rows"]) == [4, 8, 16]
    assert (out / "trials" / "model=lstm-units=16" / "model.safetensors").read_bytes() == b"model {'model': 'lstm', 'units': 16}"
    r = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(out), "--resume"])
    assert runs[-1] == ["model=lstm-units=8", "model=lstm-units=16"] and len(runs) == 2  # all held: no Ray at all
    assert json.loads((out / "sweep.json").read_text())["resumed"] == 3
    cfg.write_text("task='digits'\nepochs=5\n[search]\nmodel=['lstm']\nunits=[4, 8, 16]\n")  # another config
    CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(out), "--resume"])
    assert len(runs[-1]) == 3


def test_tune_gets_the_failure_budget_and_the_artifacts_callback(tmp_path, monkeypatch):
    """ray.max_failures reaches Tune's FailureConfig (a trial whose node dies is re-run, a bounded
    number of times); the driver-side callback brings the artifacts home."""
    import ray
    from ray import tune

    from ltc_edge.bench import sweep

    seen = {}

    class Tuner:
        def __init__(self, trainable, param_space, tune_config, run_config):
            seen.update(run_config=run_config, space=param_space)

        def fit(self):
            return []

    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(tune, "Tuner", Tuner)
    cfg = {"task": "digits", "search": {"model": ["lstm"]}, "ray": {"max_failures": 3}}
    assert sweep._fit(cfg, trials(cfg), tmp_path) == []
    assert seen["run_config"].failure_config.max_failures == 3
    assert type(seen["run_config"].callbacks[0]).__name__ == "TrialEvents" and "out_dir" not in seen["space"]
    assert seen["space"]["report_epochs"] is True and seen["run_config"].verbose == 0
    sweep._fit({**cfg, "ray": {}}, trials(cfg), tmp_path)
    assert seen["run_config"].failure_config.max_failures == 2  # the default


class _Trial:
    """What the progress callback reads of a Tune trial."""

    def __init__(self, config, error=None):
        self.config, self.last_result, self.num_failures, self.error = config, {}, 0, error

    def get_error(self):
        return self.error


def test_progress_is_a_line_per_trial_event_and_rays_own_output_goes_to_its_log(tmp_path, monkeypatch):
    """A 2-trial, 2-epoch sweep through run_trial and the driver, Tune stood in by a fake that calls
    the callback's hooks as Tune does (tune.report each epoch) and training by a scripted one (the
    real one: test_local_two_worker_sweep): a line per start, epoch and end, `k/N done` with an
    ETA; what Tune prints itself lands in OUT/ray.log."""
    import ray
    from ray import tune

    from ltc_edge.bench import sweep

    def trained(params, out, on_epoch):
        seed = params["trial"]["seed"]
        for epoch, valid in ((1, 0.31 + seed), (2, 0.25 + seed)):
            on_epoch({"epoch": epoch, "epochs": 2, "metric": "accuracy", "valid": valid,
                      "best_valid": max(0.31 + seed, valid), "best_epoch": 1})
        (out / "model.safetensors").write_bytes(b"weights %d" % seed)
        return {"param_model": "gru", "param_units": 4, "param_seed": seed, "metric": 0.3 + seed / 10,
                "metric_name": "accuracy", "best_epoch": 1, "epochs_run": 2, "p50_us": 20.0 - seed, "parameters": 9}

    monkeypatch.setattr(sweep, "_train_trial", trained)

    class Tuner:
        def __init__(self, trainable, param_space, tune_config, run_config):
            self.space, self.events = param_space, run_config.callbacks[0]
            ray.cloudpickle.dumps(run_config)  # as Tune keeps it in the experiment's state

        def fit(self):
            print("| Configuration for experiment | sweep |")  # as Tune prints at verbose=0
            for t in self.space["trial"]["grid_search"]:
                trial = _Trial({**self.space, "trial": t})
                self.events.on_trial_start(0, [], trial)
                monkeypatch.setattr(tune, "report", lambda m: self.events.on_trial_result(0, [], trial, m))
                trial.last_result = sweep.run_trial(trial.config)
                self.events.on_trial_result(0, [], trial, trial.last_result)  # the final row: no line
                self.events.on_trial_complete(0, [], trial)
            return []

    monkeypatch.setattr(ray, "is_initialized", lambda: True)
    monkeypatch.setattr(tune, "Tuner", Tuner)
    cfg = tmp_path / "s.toml"
    cfg.write_text("task='digits'\nepochs=2\nbatch_size=64\n[search]\nmodel=['gru']\nunits=[4]\nseed=[0, 1]\n")
    r = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    rows = {row["param_seed"]: row for row in json.loads((tmp_path / "o" / "sweep.json").read_text())["rows"]}
    for seed in (0, 1):
        name = f"GRU-4 seed {seed}"
        mine = [x for x in lines if x.startswith(name + "  ")]
        assert [x.split("  ")[1] for x in mine] == ["started", "epoch 1/2", "epoch 2/2", "done"], mine
        assert f"epoch 1/2  valid accuracy {0.31 + seed:.4g}  best {0.31 + seed:.4g} (epoch 1)  " in mine[1]
        assert f"epoch 2/2  valid accuracy {0.25 + seed:.4g}  best {0.31 + seed:.4g} (epoch 1)  " in mine[2]
        assert " node " in mine[2] and rows[seed]["metric"] == pytest.approx(0.3 + seed / 10)
        assert f"done  test accuracy {0.3 + seed / 10:.4g}  best epoch 1/2  p50 {20.0 - seed:.1f} µs" in mine[3]
    assert lines.index("GRU-4 seed 0  started") < lines.index("GRU-4 seed 1  started")
    overall = [x for x in lines if " done" in x and "running" in x]
    assert overall[0].startswith("1/2 done, 0 running  elapsed ") and "ETA " in overall[0]
    assert overall[1].startswith("2/2 done, 0 running") and overall[1].endswith("ETA -")
    assert "Configuration for experiment" not in r.output
    assert "Configuration for experiment" in (tmp_path / "o" / "ray.log").read_text()


def test_progress_says_failures_retries_and_an_eta_from_the_epochs_done(monkeypatch):
    import io

    from ltc_edge.bench import sweep_progress as P

    clock = [1000.0]
    monkeypatch.setattr(P.time, "monotonic", lambda: clock[0])
    out, homes = io.StringIO(), []
    progress = P.SweepProgress(4, out, lambda t, row: homes.append(t) or None, max_failures=2)
    ltc = {"model": "ltc", "wiring": "auto-ncp", "units": 16, "seed": 1}
    cfc = {"model": "cfc", "units": 8, "lr": 0.003, "ode_unfolds": 6}
    trial = _Trial({"trial": ltc}, error=RuntimeError("Traceback...\nActorDiedError: the actor died"))
    progress.handle({"kind": "start", "trial": ltc})
    progress.handle({"kind": "start", "trial": cfc})
    clock[0] += 30
    progress.handle({"kind": "epoch", "trial": ltc, "report": {"epoch": 1, "epochs": 2, "metric": "mse", "valid": 0.52,
                                                               "best_valid": 0.52, "best_epoch": 1, "node": "10.0.0.2/ab12cd"}})
    progress.handle({"kind": "retry", "trial": ltc, "error": P._error_line(trial), "failures": 1})
    clock[0] += 70
    progress.handle({"kind": "done", "trial": cfc, "row": {"metric": 0.25, "metric_name": "mse", "best_epoch": 2,
                                                          "epochs_run": 2, "p50_us": 12.34}})
    progress.handle({"kind": "epoch", "trial": ltc, "report": {"epoch": 1, "epochs": 2, "metric": "mse", "valid": 0.5,
                                                               "best_valid": 0.5, "best_epoch": 1, "node": "10.0.0.1/ef34ab"}})
    progress.handle({"kind": "error", "trial": ltc, "error": "ValueError: training diverged"})
    lines = out.getvalue().splitlines()
    assert lines[2] == "LTC-NCP-16 seed 1  epoch 1/2  valid mse 0.52  best 0.52 (epoch 1)  30s  node 10.0.0.2/ab12cd"
    assert lines[3] == "LTC-NCP-16 seed 1  lost (ActorDiedError: the actor died); retry 1 of 2"
    assert lines[4] == "CFC-8 unfolds 6 lr 0.003  done  test mse 0.25  best epoch 2/2  p50 12.3 µs  1m40s  node ?"
    # 100 s spent, 1 of 4 trials done (the retried one starts over): 3 more at 100 s each
    assert lines[5] == "1/4 done, 1 running  elapsed 1m40s  ETA 5m00s"
    assert lines[6] == "LTC-NCP-16 seed 1  epoch 1/2  valid mse 0.5  best 0.5 (epoch 1)  1m10s  node 10.0.0.1/ef34ab"
    assert lines[7] == "LTC-NCP-16 seed 1  FAILED after 1m10s: ValueError: training diverged"
    assert lines[8] == "2/4 done (1 failed), 0 running  elapsed 1m40s  ETA 1m40s"
    gru = {"model": "gru", "units": 8}
    progress.handle({"kind": "start", "trial": gru})
    clock[0] += 59
    report = {"epoch": 5, "epochs": 10, "metric": "mse", "valid": 0.4, "best_valid": 0.4, "best_epoch": 5, "node": "n"}
    progress.handle({"kind": "epoch", "trial": gru, "report": report})
    assert out.getvalue().splitlines()[-1].startswith("GRU-8  epoch 5/10")  # the last k/N line is 59 s old
    clock[0] += 1
    progress.handle({"kind": "epoch", "trial": gru, "report": {**report, "epoch": 6}})
    # a minute since the last: 2.6 of 4 in 160 s, 1.4 more take 86 s
    assert out.getvalue().splitlines()[-1] == "2/4 done (1 failed), 1 running  elapsed 2m40s  ETA 1m26s"
    assert homes == [cfc] and P.duration(3725) == "1h02m"


def test_unreachable_or_unauthorised_cluster_is_one_line(tmp_path, monkeypatch):
    """A bad address fails within seconds, one line naming the fix (Ray itself retries for
    minutes, printing warnings); a token refusal names RAY_AUTH_MODE=token and the token."""
    import socket
    import time

    import ray
    from ray.exceptions import AuthenticationError

    from ltc_edge.bench.sweep import connect

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # a port nothing listens on
    cfg = tmp_path / "s.toml"
    cfg.write_text("task='digits'\n[search]\nmodel=['lstm']\n")
    start = time.time()
    r = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(tmp_path / "o"), "--address", f"ray://127.0.0.1:{port}"])
    assert r.exit_code == 1 and time.time() - start < 10 and "Traceback" not in r.output
    assert f"error: cannot reach Ray at ray://127.0.0.1:{port} (Connection refused): start Ray there" in r.output
    assert len(r.output.strip().splitlines()) == 2  # the "sweep: N trials" line, then the error
    with pytest.raises(LtcEdgeError, match="is not auto, local, HOST:PORT or ray://HOST:PORT"):
        connect({"address": "head"})

    def refused(**kwargs):
        raise AuthenticationError("Authentication failed: invalid or missing token")

    monkeypatch.setattr(ray, "init", refused)
    with pytest.raises(LtcEdgeError, match="refused this driver .token authentication.: set RAY_AUTH_MODE=token"
                                           " and the cluster's token here: RAY_AUTH_TOKEN"):
        connect({"address": "auto"})


def test_a_refused_token_is_told_from_rays_retry_noise_which_stays_off_the_terminal(capfd, monkeypatch):
    """What Ray 2.60 does on a wrong or missing token (measured on a token cluster): ~20 s of
    C++ warnings on stderr, then a ConnectionError that does not say why."""
    import os

    import ray

    from ltc_edge.bench import sweep
    from ltc_edge.bench.sweep import connect

    def init(**kwargs):
        for _ in range(3):
            os.write(2, b"[W gcs_client.cc:210] Failed to get cluster ID from GCS server: Unauthenticated: "
                        b"RPC error: InvalidAuthToken: Authentication token is missing or incorrect\n")
        raise ConnectionError("Failed to connect to Ray cluster at 192.0.2.2:6379")

    monkeypatch.setattr(ray, "init", init)
    with pytest.raises(LtcEdgeError, match="refused this driver .token authentication.: set RAY_AUTH_MODE=token"):
        connect({"address": "auto"})
    assert "gcs_client" not in capfd.readouterr().err  # Ray's noise stayed off the terminal

    def fails(**kwargs):
        os.write(2, b"some other retry noise\n")
        raise ConnectionError("Could not find any running Ray instance. Please specify the one to connect to")

    monkeypatch.setattr(ray, "init", fails)
    with pytest.raises(LtcEdgeError, match="^cannot connect to Ray at auto: Could not find any running Ray instance. "
                                           "Please specify the one to connect to; start one with `ray start --head`"):
        connect({"address": "auto"})
    assert "noise" not in capfd.readouterr().err

    def no_client(**kwargs):  # Ray's own words where grpcio is missing (a minimal `pip install ray`)
        raise ValueError("Ray Client requires pip package `ray[client]`. If you installed the minimal Ray (e.g. "
                         "`pip install ray`), please reinstall by executing `pip install ray[client]`.")

    monkeypatch.setattr(ray, "init", no_client)
    monkeypatch.setattr(sweep, "_probe", lambda address: None)
    with pytest.raises(LtcEdgeError, match=r'^ray://head:10001: a ray:// address needs Ray.s client: '
                                           r'pip install "ray\[client\]" \(in ltc-edge\[sweep\]\)$'):
        connect({"address": "ray://head:10001"})


def _kill_ray_of(folder: str) -> None:
    """SIGKILL the Ray processes a killed driver left (their command lines name its RAY_TMPDIR)."""
    import os
    import signal

    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and folder in (proc / "cmdline").read_bytes().decode(errors="replace"):
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ValueError):
            pass


@pytest.mark.slow
def test_driver_killed_then_resume_does_not_rerun_finished_trials(tmp_path, ray_tmpdir):
    """Issue 26: the driver SIGKILLed after its first trial came home; `--resume` runs only the
    others, the finished one's record and model untouched."""
    import os
    import signal
    import subprocess
    import time

    cfg = tmp_path / "s.toml"
    cfg.write_text("task='digits'\nepochs=1\n[search]\nmodel=['lstm']\nunits=[4, 6, 8]\n"
                   "[ray]\nnum_cpus=1\nmax_concurrent=1\n")
    out = tmp_path / "out"
    ltc = Path(sys.executable).with_name("ltc")
    driver = subprocess.Popen([str(ltc), "sweep", str(cfg), "--out", str(out)], start_new_session=True,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    deadline = time.time() + 240
    while not list(out.glob("trials/*/row.json")) and time.time() < deadline and driver.poll() is None:
        time.sleep(0.1)
    os.killpg(driver.pid, signal.SIGKILL)
    driver.wait()
    _kill_ray_of(ray_tmpdir)
    held = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in out.glob("trials/*/row.json")}
    models = {p.parent / "model.safetensors": (p.parent / "model.safetensors").read_bytes() for p in held}
    assert 1 <= len(held) < 3 and not (out / "sweep.json").exists()
    r = CliRunner().invoke(app, ["sweep", str(cfg), "--out", str(out), "--resume"])
    assert r.exit_code == 0 and f"resumed: {len(held)} finished trial(s)" in r.output, r.output
    summary = json.loads((out / "sweep.json").read_text())
    assert summary["resumed"] == len(held) and len(summary["rows"]) == 3 and not summary["failed"]
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in held} == held  # not run again
    assert {p: p.read_bytes() for p in models} == models
    for row in summary["rows"]:
        assert Path(row["model_file"]).is_file() and 0.0 <= row["metric"] <= 1.0


def _free_ports(n: int) -> list:
    import socket

    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports


def _ray_start(ray_bin: Path, tmpdir: str, args: list, prefix: tuple = (), block: bool = False):
    """`ray start` with every port its own (never the defaults another Ray on this machine holds)."""
    import os
    import subprocess

    ports = _free_ports(6)
    names = ("dashboard-agent-listen-port", "dashboard-agent-grpc-port",
             "metrics-export-port", "runtime-env-agent-port", "node-manager-port", "dashboard-port")
    cmd = [*prefix, str(ray_bin), "start", *args, "--num-cpus=1", "--disable-usage-stats",
           *(f"--{n}={p}" for n, p in zip(names, ports)), *(["--block"] if block else [])]
    env = {**os.environ, "RAY_TMPDIR": tmpdir}
    if block:
        return subprocess.Popen(cmd, env=env, start_new_session=True, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    done = subprocess.run(cmd, env=env, timeout=180, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]


def _wait_for_nodes(address: str, n: int, seconds: float = 180) -> None:
    """In a process of its own: a driver's token mode is fixed once Ray is imported."""
    import subprocess

    code = (f"import ray, time\nray.init(address={address!r}, log_to_driver=False)\nt = time.time() + {seconds}\n"
            f"while sum(x['Alive'] for x in ray.nodes()) < {n} and time.time() < t:\n    time.sleep(1)\n"
            f"assert sum(x['Alive'] for x in ray.nodes()) >= {n}\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=seconds + 120)
    assert done.returncode == 0, done.stderr[-2000:]


@pytest.mark.slow
def test_two_node_cluster_without_shared_disk(tmp_path, ray_tmpdir, monkeypatch):
    """Issue 26, on loopback: a worker node whose raylet has its own mount namespace with a private
    tmpfs over the sweep folder (as a second machine's disk). Healthy: every model comes home,
    loadable on the head. Worker killed mid-trial: the trial is re-run on the head, none lost."""
    import os
    import shutil
    import signal
    import subprocess
    import tempfile
    import time

    if os.geteuid() != 0 or not shutil.which("unshare") or subprocess.run(["unshare", "-m", "true"]).returncode:
        pytest.skip("needs root and unshare -m (a mount namespace for the worker node)")
    ray_bin = Path(sys.executable).with_name("ray")
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # as Ray 2.60 clusters need; the token: ~/.ray/auth_token
    worker_tmp = tempfile.mkdtemp(prefix="ltcrayw", dir="/tmp")
    out = tmp_path / "out"
    out.mkdir()
    (gcs,) = _free_ports(1)
    address = f"127.0.0.1:{gcs}"
    worker = None
    try:
        _ray_start(ray_bin, ray_tmpdir, ["--head", f"--port={gcs}", "--include-dashboard=false"])
        private = ("unshare", "-m", "sh", "-c", f'mount -t tmpfs tmpfs "{out}" && exec "$0" "$@"')
        worker = _ray_start(ray_bin, worker_tmp, [f"--address={address}"], prefix=private, block=True)
        _wait_for_nodes(address, 2)
        ltc = str(Path(sys.executable).with_name("ltc"))
        cfg = tmp_path / "s.toml"
        cfg.write_text("task='digits'\nepochs=1\n[search]\nmodel=['lstm']\nunits=[4, 6, 8]\n"
                       "[ray]\nmax_concurrent=2\nmax_failures=2\n")
        r = subprocess.run([ltc, "sweep", str(cfg), "--out", str(out), "--address", address], capture_output=True,
                           text=True, timeout=480)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        summary = json.loads((out / "sweep.json").read_text())
        assert len(summary["rows"]) == 3 and not summary["failed"]
        assert len({row["node"] for row in summary["rows"]}) == 2  # trials trained on both nodes
        for row in summary["rows"]:
            got = CliRunner().invoke(app, ["eval", row["model_file"]])
            assert got.exit_code == 0 and f"accuracy: {row['metric']:.6g}" in got.output, got.output
        # the worker node dies while both trials train: the one it held is re-run on the head
        cfg.write_text("task='digits'\nepochs=2\n[search]\nmodel=['gru']\nunits=[4, 6]\n"
                       "[ray]\nmax_concurrent=2\nmax_failures=2\n")
        driver = subprocess.Popen([ltc, "sweep", str(cfg), "--out",
                                   str(tmp_path / "out2"), "--address", address], stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 240
        while len(list((tmp_path / "out2" / "ray" / "sweep").glob("run_trial_*"))) < 2 and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(3)
        os.killpg(worker.pid, signal.SIGKILL)
        _kill_ray_of(worker_tmp)
        text = driver.communicate(timeout=480)[0]
        assert driver.returncode == 0, text
        summary = json.loads((tmp_path / "out2" / "sweep.json").read_text())
        assert len(summary["rows"]) == 2 and not summary["failed"], summary["failed"]
        assert all(Path(row["model_file"]).is_file() for row in summary["rows"])
        assert len({row["node"] for row in summary["rows"]}) == 1  # both finished on the head
    finally:
        if worker is not None and worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        _kill_ray_of(worker_tmp)
        _kill_ray_of(ray_tmpdir)
        shutil.rmtree(worker_tmp, ignore_errors=True)


@pytest.mark.slow
def test_ray_client_address_end_to_end(tmp_path, ray_tmpdir, monkeypatch):
    """Issue 26: `ltc sweep --address ray://HOST:PORT` on a token-auth head started with the Ray
    Client server. Tune then runs on the head: the progress lines still reach this terminal and
    every artifact comes home under OUT here. Without the token: the one auth line, no retries."""
    import os
    import subprocess

    pytest.importorskip("grpc")  # ray[client]
    ray_bin = Path(sys.executable).with_name("ray")
    monkeypatch.setenv("RAY_AUTH_MODE", "token")  # as Ray 2.60 clusters need; the token: ~/.ray/auth_token
    gcs, client = _free_ports(2)
    ltc = str(Path(sys.executable).with_name("ltc"))
    cfg = tmp_path / "s.toml"
    cfg.write_text("task='digits'\nepochs=2\nbatch_size=64\n[search]\nmodel=['gru']\nunits=[4]\nseed=[0, 1]\n")
    out = tmp_path / "out"
    try:
        _ray_start(ray_bin, ray_tmpdir, ["--head", f"--port={gcs}", f"--ray-client-server-port={client}",
                                         "--include-dashboard=false"])
        sweep = [ltc, "sweep", str(cfg), "--out", str(out), "--address", f"ray://127.0.0.1:{client}"]
        r = subprocess.run(sweep, capture_output=True, text=True, timeout=480)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        lines = r.stdout.splitlines()
        assert lines[0] == f"sweep: 2 trials on task digits (Ray at ray://127.0.0.1:{client})"
        summary = json.loads((out / "sweep.json").read_text())
        assert len(summary["rows"]) == 2 and not summary["failed"]
        assert summary["ray_address"] == f"ray://127.0.0.1:{client}"
        for row in summary["rows"]:
            name = f"GRU-4 seed {row['param_seed']}"
            assert any(x.startswith(f"{name}  epoch 2/2  valid accuracy ") for x in lines), r.stdout
            assert any(x.startswith(f"{name}  done  test accuracy {row['metric']:.4g}  ") for x in lines)
            assert Path(row["model_file"]).parent.parent == out / "trials"
            got = CliRunner().invoke(app, ["eval", row["model_file"]])
            assert got.exit_code == 0 and f"accuracy: {row['metric']:.6g}" in got.output, got.output
        assert any(x.startswith("2/2 done, 0 running") for x in lines) and "Trial status" not in r.stdout
        env = {k: v for k, v in os.environ.items() if k != "RAY_AUTH_MODE"}
        r = subprocess.run(sweep[:4] + [str(tmp_path / "o2")] + sweep[5:], capture_output=True, text=True,
                           timeout=300, env=env)
        assert r.returncode == 1 and r.stderr.startswith(
            f"error: Ray at ray://127.0.0.1:{client} refused this driver (token authentication): "
            "set RAY_AUTH_MODE=token"), r.stdout + r.stderr
        assert len(r.stderr.strip().splitlines()) == 1 and len(r.stdout.strip().splitlines()) == 1
    finally:
        _kill_ray_of(ray_tmpdir)
        _kill_ray_of(f"--port={client}\x00")  # the client server's command line does not name the folder
