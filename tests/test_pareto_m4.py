"""benchmarks/pareto_m4.py's verdict at equal accuracy (pure functions: no training, no qemu)."""

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import pareto_m4 as P  # noqa: E402


def _p(kind, units, mse, cycles, precision="fp32"):
    return {"source": "sweep", "kind": kind, "units": units, "precision": precision, "test_mse": mse, "cost": cycles}


POINTS = [_p("LTC-NCP", 32, 2.65, 60000.0), _p("LSTM", 32, 2.42, 43000.0), _p("LTC", 32, 2.16, 462000.0),
          _p("CfC", 32, 2.29, 121500.0), _p("LSTM", 8, 7.0, 8000.0), _p("GRU", 8, 4.9, 6000.0, "int8")]


def test_equal_accuracy_names_the_cheapest_other_kind_at_least_as_accurate():
    eq = {e["point"]: e for e in P.equal_accuracy(POINTS, "test_mse")}
    ncp = eq["LTC-NCP-32 fp32"]
    assert ncp["cheapest_other_kind_as_accurate"] == "LSTM-32 fp32" and ncp["cost_ratio"] == pytest.approx(60 / 43)
    assert eq["LTC-32 fp32"]["cheapest_other_kind_as_accurate"] is None  # nothing else is as accurate
    assert eq["LSTM-8 fp32"]["cheapest_other_kind_as_accurate"] == "GRU-8 int8"  # another kind only, any precision
    assert eq["LSTM-32 fp32"]["cheapest_other_kind_as_accurate"] == "CfC-32 fp32"


def test_levels_walk_the_front_and_say_who_does_not_reach_it():
    lines = P.levels(POINTS, "test_mse")
    assert [ln.split(":")[0] for ln in lines] == ["MSE <= 4.900", "MSE <= 2.420", "MSE <= 2.290", "MSE <= 2.160"]
    assert lines[1] == ("MSE <= 2.420: cheapest LSTM-32 fp32 (43,000 cycles/step); the cheapest of each other kind "
                        "as accurate: CfC-32 fp32 2.83x, LTC-32 fp32 10.74x; not reached by LTC-NCP, GRU")


def test_trial_folders_and_cut_short_trials(tmp_path):
    assert P.trial_params(Path("model=ltc-seed=1-units=16-wiring=auto-ncp")) == {
        "model": "ltc", "seed": 1, "units": 16, "wiring": "auto-ncp"}
    assert P.kind_name("ltc", "full") == "LTC" and P.kind_name("ltc", None) == "LTC"
    assert P.kind_name("ltc", "auto-ncp") == "LTC-NCP" and P.kind_name("gru", None) == "GRU"
    folder = tmp_path / "trials" / "model=gru-seed=0-units=8"
    folder.mkdir(parents=True)
    (folder / "model.safetensors").write_bytes(b"x")
    (folder / "model.metrics.json").write_text(json.dumps(
        {"epochs_run": 12, "best_epoch": 7, "stopped_early": True, "options": {"epochs": 20},
         "test": {"mse": 4.5}, "test_streaming": {"mse": 4.7}}))
    (tmp_path / "trials" / "model=lstm-seed=0-units=8").mkdir()  # not one epoch yet: left out
    (t,) = P.sweep_trials(tmp_path)
    assert (t["kind"], t["units"], t["seed"], t["status"], t["epochs_run"], t["stopped_early"]) == \
        ("GRU", 8, 0, "finished", 12, True)


def _proto(converged, at_cap=()):
    return {"converged": converged, "epochs_cap": 200 if converged else 20, "patience": 20 if converged else 5,
            "trials_finished": 4, "trials_planned": 4, "trials_at_cap": list(at_cap), "trials_cut_short": [],
            "trials_not_started": []}


def test_a_converged_sweep_and_the_converged_table_are_one_verdict():
    table = [{**p, "source": "converged table"} for p in POINTS if p["units"] == 32]
    sweep = [{**_p("LSTM", 8, 3.8, 8000.0), "status": ["finished"], "test_mse_streamed": 3.7},
             {**_p("GRU", 8, 3.4, 6000.0), "status": ["finished"], "test_mse_streamed": 3.4}]
    lines = P.answer(table + sweep, _proto(True, ["GRU-8 seed 1"]))
    assert lines[0].startswith("Converged, fp32, test MSE over windows, every size (this sweep: at most 200 epochs")
    assert "1 at the cap (GRU-8 seed 1)" in lines[0]
    # the 8-unit GRU from the sweep is the cheapest at its accuracy, beside the table's 32-unit cells
    assert lines[1].startswith("  MSE <= 3.400: cheapest GRU-8 fp32 (6,000 cycles/step); the cheapest of each other "
                               "kind as accurate: LSTM-32 fp32 7.17x")
    assert lines[2].startswith("  MSE <= 2.420: cheapest LSTM-32 fp32 (43,000 cycles/step)")
    # a sweep cell replaces the table's cell of the same kind and size (one protocol at every size)
    lstm32 = {**_p("LSTM", 32, 2.5, 43000.0), "status": ["finished"]}
    both = P.converged_points(table + sweep + [lstm32], _proto(True))
    assert [p["test_mse"] for p in both if p["kind"] == "LSTM" and p["units"] == 32] == [2.5]
    assert len([p for p in both if p["source"] == "converged table"]) == 3
    short = P.answer(table + sweep, _proto(False))
    assert short[0].startswith("Converged (the recorded 200-epoch, 5-seed table; 32 units only")
    assert not any("GRU-8" in s for s in short[:5])  # a short schedule stays out of the converged lines


def test_converged_schedule_needs_a_long_cap_and_early_stopping():
    assert P.converged_schedule({"epochs": 200, "patience": 20})
    assert not P.converged_schedule({"epochs": 20, "patience": 5})
    assert not P.converged_schedule({"epochs": 200})
