"""`ltc sweep` on a local 2-worker Ray: trains, exports and times every trial."""

import json
import statistics
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ltc_edge.bench.sweep import groups, read_config, trials
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
                                      ("task='digits'\n[search]\nmodel=['ltc']\n[ray]\nnum_cpus=0",
                                       "ray.num_cpus must be >= 1"),
                                      ("task='digits'\n[search]\nmodel=['ltc']\n[ray]\ncpus_per_trial=0",
                                       "ray.cpus_per_trial must be > 0")])
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


@pytest.mark.slow
def test_local_two_worker_sweep(tmp_path):
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
    for row in rows.values():
        assert 0.0 <= row["metric"] <= 1.0 and row["p50_us"] > 0 and row["onnx_nodes"] > 0
        assert 1 <= row["best_epoch"] <= 6 and 0.0 <= row["valid_metric"] <= 1.0
    # two seeds are two different trainings; their group holds both, mean between them
    assert rows[("gru", 0)]["metric"] != rows[("gru", 1)]["metric"]
    g = {x["param_model"]: x for x in summary["groups"]}
    assert g["gru"]["n"] == 2 and g["gru"]["min"] < g["gru"]["mean"] < g["gru"]["max"] and g["gru"]["std"] > 0
    assert g["ltc"]["n"] == 1 and "over seeds" in r.output
    # a trial's model stores its task as `ltc train` does, so eval / export / analyze default to it
    from ltc_edge.nn.modelfile import read

    config, _ = read(rows[("gru", 1)]["model_file"])
    assert config["task"]["name"] == "digits" and config["task"]["metric"] == "accuracy"
    r = CliRunner().invoke(app, ["eval", rows[("gru", 1)]["model_file"]])
    assert r.exit_code == 0 and f"{rows[('gru', 1)]['metric']:.4f}"[:5] in r.output, r.output
    assert any(r["pareto"] for r in summary["rows"])
    # digits has 10 classes: after six epochs both beat chance (0.1) clearly (a 16-neuron auto-NCP
    # LTC needs ~5 epochs at lr 0.02 to leave the plateau: 0.27 after 3, 0.57 after 5)
    assert min(r["metric"] for r in summary["rows"]) > 0.4
