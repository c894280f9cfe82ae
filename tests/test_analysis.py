"""LTC theorem checks, pruning, and trajectory-length expressivity."""

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from ltc_edge.analyze import bounds, expressivity
from ltc_edge.cli import app
from ltc_edge.nn import build_model, save, load
from ltc_edge.nn.prune import prune_config, prune_model, synapse_counts


def _tensors(m):
    return {k: v.detach().numpy() for k, v in m.state_dict().items()}


@pytest.mark.parametrize("implicit", [False, True])
def test_theorems_hold_on_random_inputs(implicit):
    m = build_model("ltc", 4, 3, wiring="auto-ncp", units=16, seed=3, implicit_param_constraints=implicit)
    rng = np.random.default_rng(0)
    x = (5 * rng.normal(size=(6, 200, 4))).astype(np.float32)
    dt = rng.uniform(0.01, 3.0, size=(6, 200))
    report = bounds.check(m.config, _tensors(m), x, dt)
    assert report["ok"], report["violations"]
    n0 = report["neurons"][0]
    lo, hi = n0["tau_bound"]
    assert lo <= n0["tau_observed"][0] <= n0["tau_observed"][1] <= hi
    assert lo < hi


def test_bounds_report_flags_out_of_range_states():
    m = build_model("ltc", 3, 2, wiring="auto-ncp", units=10, seed=1)
    x = np.zeros((2, 5, 3), np.float32)
    states = np.zeros((4, 10))
    states[:, 7] = 3.0  # beyond every reversal potential (|erev| = 1 at init)
    report = bounds.check(m.config, _tensors(m), x, states=states)
    assert report["ok"] and report["external"]["violations"] == [7]


def test_bounds_reject_non_ltc():
    m = build_model("lstm", 3, 2, units=4)
    with pytest.raises(ValueError, match="LTC cells only"):
        bounds.check(m.config, _tensors(m), np.zeros((1, 2, 3), np.float32))


def test_prune_removes_weakest_synapses_and_survives_save(tmp_path):
    m = build_model("ltc", 8, 4, wiring="auto-ncp", units=19, seed=0)
    before = synapse_counts(m.config)
    p = prune_model(m, 0.5)
    after = synapse_counts(p.config)
    assert after["synapses"] == before["synapses"] - round(0.5 * before["synapses"])
    assert after["sensory_synapses"] == before["sensory_synapses"] - round(0.5 * before["sensory_synapses"])
    adj0 = np.array(m.config["cell"]["wiring"]["adjacency"])
    adj1 = np.array(p.config["cell"]["wiring"]["adjacency"])
    w = m.cell.w.detach().numpy()
    kept, removed = w[(adj1 != 0)], w[(adj0 != 0) & (adj1 == 0)]
    assert np.abs(kept).min() >= np.abs(removed).max()  # magnitude order
    assert ((adj1 == 0) | (adj1 == adj0)).all()  # polarity kept, nothing added
    # pruned synapses carry no signal: zeroing their weights changes nothing
    p2 = load(save(p, tmp_path / "p.safetensors"))
    with torch.no_grad():
        p2.cell.w[torch.tensor(adj1 == 0)] = 0.0
        x = torch.randn(2, 15, 8)
        assert torch.allclose(p(x)[0], p2(x)[0], atol=1e-6)
        # ...and pruning did change the function
        assert not torch.allclose(m(x)[0], p(x)[0], atol=1e-3)


def test_prune_rejects_bad_arguments():
    m = build_model("ltc", 3, units=5)
    with pytest.raises(ValueError, match="sparsity"):
        prune_config(m.config, _tensors(m), 1.0)
    with pytest.raises(ValueError, match="LTC"):
        prune_model(build_model("gru", 3, units=4), 0.5)


def test_trajectory_length_measures_arc_length():
    # a unit circle sampled finely has length ~ 2*pi
    t = np.linspace(0, 2 * np.pi, 2001)
    circle = np.stack([np.cos(t), np.sin(t)], 1)
    assert abs(expressivity.arc_length(circle) - 2 * np.pi) < 1e-3
    assert abs(expressivity.arc_length(expressivity.pca2(np.c_[circle, np.zeros_like(t)])) - 2 * np.pi) < 1e-3


def test_trajectory_lengths_grow_with_weight_scale_for_ctrnn():
    small = expressivity.trajectory_lengths("ctrnn", width=16, depth=2, sigma_w=1.0, steps=100)
    large = expressivity.trajectory_lengths("ctrnn", width=16, depth=2, sigma_w=8.0, steps=100)
    assert len(small["length_per_layer"]) == 2
    assert large["pca2_length_per_layer"][-1] > 2 * small["pca2_length_per_layer"][-1]


def test_solver_study_orders_and_adjoint():
    from ltc_edge.analyze import solvers

    m = build_model("ltc", 4, 2, wiring="auto-ncp", units=10, seed=2)
    table = solvers.solver_table(m, unfolds=[2, 4, 8], steps=10, batch=2)
    err = {(r["solver"], r["unfolds"]): r["max_abs_error"] for r in table["rows"]}
    # RK4 converges fastest; every solver improves with more unfolds
    for s in solvers.SOLVERS:
        assert err[(s, 8)] < err[(s, 2)]
    assert err[("rk4", 8)] < err[("euler", 8)] and err[("rk4", 8)] < err[("semi_implicit", 8)]
    assert err[("rk4", 8)] < 1e-3
    res = solvers.adjoint_vs_bptt(m, unfolds=8, steps=8, batch=2)
    assert res["bptt"]["grad_rel_error"] < 1e-5
    assert res["adjoint"]["grad_rel_error"] < 1e-3
    assert res["memory_ratio_bptt_over_adjoint"] > 5


def test_analyze_cli(tmp_path):
    from typer.testing import CliRunner

    from ltc_edge.cli import app

    path = save(build_model("ltc", 3, 2, wiring="auto-ncp", units=8, seed=0), tmp_path / "m.safetensors")
    r = CliRunner().invoke(app, ["analyze", "bounds", str(path), "--sequences", "4", "--steps", "30",
                                 "--out", str(tmp_path / "a")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a" / "bounds.json").exists()
    r = CliRunner().invoke(app, ["analyze", "trajectory", "ltc,ctrnn", "--steps", "30", "--depth", "2",
                                 "--width", "8", "--sigma-w", "1,4", "--out", str(tmp_path / "t")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "t" / "trajectory_length.png").stat().st_size > 1000
    r = CliRunner().invoke(app, ["analyze", "nonsense", str(path)])
    assert r.exit_code == 1 and "unknown analysis" in r.output


def test_prune_cli_fine_tunes_and_exports_sparse_c(tmp_path):
    import json
    import shutil

    from typer.testing import CliRunner

    from ltc_edge.cli import app
    from ltc_edge.codegen.c import generate
    from ltc_edge.nn.modelfile import read
    from ltc_edge.train.loop import build_task_model
    from ltc_edge.train.tasks import load_task

    task = load_task("digits")
    path = save(build_task_model(task, "ltc", units=16, wiring="auto-ncp", seed=0), tmp_path / "m.safetensors")
    has_cc = bool(shutil.which("cc") or shutil.which("gcc"))
    r = CliRunner().invoke(app, ["prune", str(path), "--sparsity", "0.5", "--task", "digits", "--fine-tune-epochs", "1",
                                 "--out", str(tmp_path / "p")] + ([] if has_cc else ["--no-time-c"]))
    assert r.exit_code == 0, r.output
    report = json.loads((tmp_path / "p" / "prune_report.json").read_text())
    dense, half = report["rows"]
    assert half["synapses"] == dense["synapses"] - round(0.5 * dense["synapses"])
    assert 0.0 <= half["accuracy"] <= 1.0
    if has_cc:
        assert half["c_step_us"] > 0
    config, raw = read(half["file"])
    info = generate(config, raw)["info"]
    assert info["synapses"] == half["synapses"]  # the C visits the kept synapses only
    r = CliRunner().invoke(app, ["prune", str(path), "--sparsity", "0.2,0.4", "--out", str(tmp_path / "x.safetensors")])
    assert r.exit_code == 1 and "one --sparsity value" in r.output


def test_solver_study_on_instantaneous_neurons():
    """Training's clamp cm >= 0 can leave neurons with cm = 0: no explicit ODE exists for them.
    The study says so, measures against a fine semi-implicit reference, and skips the adjoint."""
    from ltc_edge.analyze import solvers

    m = build_model("ltc", 4, 2, wiring="auto-ncp", units=10, seed=2)
    with torch.no_grad():
        m.cell.cm[[1, 4]] = 0.0
    assert solvers.instantaneous_neurons(m) == [1, 4]
    table = solvers.solver_table(m, unfolds=[2, 8], steps=10, batch=2)
    assert table["reference"].startswith("semi_implicit") and table["instantaneous_neurons"] == [1, 4]
    rows = {(r["solver"], r["unfolds"]): r for r in table["rows"]}
    assert rows[("semi_implicit", 8)]["finite"] and rows[("semi_implicit", 8)]["max_abs_error"] < \
        rows[("semi_implicit", 2)]["max_abs_error"]
    assert not rows[("rk4", 8)]["finite"] and not rows[("euler", 8)]["finite"]
    assert "cm = 0" in solvers.adjoint_vs_bptt(m, unfolds=4, steps=4, batch=1)["skipped"]


def test_bounds_of_an_instantaneous_neuron():
    """cm = 0 (and gleak = 0): the time constant is 0, not 0/0; the neuron is not a violation."""
    m = build_model("ltc", 3, 2, wiring="auto-ncp", units=8, seed=1)
    with torch.no_grad():
        m.cell.cm[2] = 0.0
        m.cell.gleak[2] = 0.0
    tensors = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    rep = bounds.check(m.config, tensors, np.random.default_rng(0).standard_normal((4, 20, 3)).astype(np.float32))
    row = rep["neurons"][2]
    assert row["tau_bound"] == [0.0, 0.0] and row["tau_ok"] and rep["ok"], rep["violations"]


# argument checks: one line, no traceback ---------------------------------------------

runner = CliRunner()


@pytest.mark.parametrize("args,msg", [
    (["trajectory", "ltc", "--width", "0"], "--width must be >= 1"),
    (["trajectory", "ltc", "--depth", "-1"], "--depth must be >= 1"),
    (["trajectory", "ltc", "--steps", "1"], "--steps must be >= 2"),
    (["trajectory", "ltc", "--sigma-w", "1,inf"], "--sigma-w must be a finite number"),
    (["trajectory", "ltc", "--sigma-w", "0"], "--sigma-w must be > 0"),
    (["trajectory", "ltc", "--sigma-w", "1,x"], "--sigma-w must be a comma list of numbers"),
    (["trajectory", "ltc,bogus"], "unknown cell kind(s) bogus; choose from ltc, cfc, ctrnn, node, lstm, gru"),
    (["bounds", "MODEL", "--sequences", "0"], "--sequences must be >= 1"),
    (["bounds", "MODEL", "--steps", "0"], "--steps must be >= 1"),
    (["bounds", "MODEL", "--seed", "-1"], "--seed must be >= 0"),
    (["bounds", "MODEL", "--task", "nope"], "unknown task 'nope'"),
    (["nonsense", "MODEL"], "unknown analysis 'nonsense'; choose trajectory, bounds, solvers"),
])
def test_analyze_numbers_and_names_are_checked(tmp_path, ltc_file, args, msg, one_line_error):
    args = [ltc_file if a == "MODEL" else a for a in args]
    one_line_error(runner.invoke(app, ["analyze", *args, "--out", str(tmp_path / "a")]), msg)


def test_analyze_refuses_an_input_as_out(ltc_file, one_line_error):
    one_line_error(runner.invoke(app, ["analyze", "bounds", ltc_file, "--out", ltc_file]), "is the input")


def test_trajectory_of_every_cell_kind(tmp_path):
    """Any kind in CELLS may be asked for (the plot used to sort by the paper's four only)."""
    r = runner.invoke(app, ["analyze", "trajectory", "cfc,gru", "--steps", "20", "--depth", "1", "--width", "4",
                            "--sigma-w", "1,2", "--out", str(tmp_path / "t")])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "t" / "trajectory_length.png").exists()


@pytest.mark.parametrize("args,msg", [
    (["--sparsity", "0"], "--sparsity must be in (0, 1)"),
    (["--sparsity", "0.5,1"], "--sparsity must be in (0, 1)"),
    (["--sparsity", "nan"], "--sparsity must be a finite number"),
    (["--sparsity", ""], "--sparsity is empty"),
    (["--fine-tune-epochs", "-1"], "--fine-tune-epochs must be >= 0"),
    (["--fine-tune-epochs", "1"], "--fine-tune-epochs needs --task"),
    (["--lr", "0"], "--lr must be > 0"),
    (["--lr", "inf"], "--lr must be a finite number"),
    (["--task", "bogus"], "unknown task 'bogus'"),
    (["--sparsity", "0.2,0.4", "--out", "X.safetensors"], "give one --sparsity value"),
])
def test_prune_numbers_and_names_are_checked(tmp_path, ltc_file, args, msg, one_line_error):
    args = [str(tmp_path / a) if a.endswith(".safetensors") else a for a in args]
    out = [] if "--out" in args else ["--out", str(tmp_path / "p")]
    one_line_error(runner.invoke(app, ["prune", ltc_file, *args, *out]), msg)


def test_prune_never_overwrites_its_input(tmp_path, ltc_file, one_line_error):
    one_line_error(runner.invoke(app, ["prune", ltc_file, "--out", ltc_file, "--no-time-c"]), "is the input")
    # a folder output whose pruned-S file name is the input itself
    folder = tmp_path / "f"
    folder.mkdir()
    import shutil

    shutil.copy(ltc_file, folder / "pruned-0.5.safetensors")
    one_line_error(runner.invoke(app, ["prune", str(folder / "pruned-0.5.safetensors"), "--out", str(folder),
                                        "--no-time-c"]), "is the input")


# backend names (issue 29 #14): one registry, the same names and aliases in every command ----

def _backend_commands(model: str, tmp_path) -> dict:
    """Every command with --backend, with arguments that fail (or finish) soon after the name is read."""
    return {"control": ["control", model, "--episodes", "1", "--max-steps", "2"],
            "eval": ["eval", model],
            "bench": ["bench", model, "--seconds", "0"],
            "analyze robustness": ["analyze", "robustness", str(tmp_path / "missing.safetensors"),
                                   "--out", str(tmp_path / "rob")]}


@pytest.mark.parametrize("command", ["control", "eval", "bench", "analyze robustness"])
def test_every_backend_option_refuses_an_unknown_name_listing_the_registry(command, ltc_file, tmp_path,
                                                                            one_line_error):
    from ltc_edge.runtime import backend_choices

    args = _backend_commands(ltc_file, tmp_path)[command]
    r = runner.invoke(app, [*args, "--backend", "onnxx"])
    common = backend_choices(["numpy", "onnxruntime", "tflite", "c"])  # what every command lists
    assert common == "numpy (np), onnxruntime (onnx, ort), tflite (litert), c"
    one_line_error(r, "unknown backend 'onnxx'; choose from ")
    assert common in r.output, r.output


@pytest.mark.parametrize("command", ["control", "eval", "bench", "analyze robustness"])
def test_every_backend_option_takes_the_same_names_and_aliases(command, ltc_file, tmp_path):
    from ltc_edge.runtime import BACKEND_ALIASES, backend_name

    for name in ["numpy", "onnxruntime", "tflite", "c", *[a for a, b in BACKEND_ALIASES.items() if b != "tflm"]]:
        r = runner.invoke(app, [*_backend_commands(ltc_file, tmp_path)[command], "--backend", name])
        assert "unknown backend" not in r.output and "Traceback" not in r.output, (name, r.output)
        if command == "control" and backend_name(name) in ("onnxruntime", "tflite"):  # told by its canonical name
            assert f"the {backend_name(name)} backend runs an export of the model" in r.output, r.output
        if command == "eval" and backend_name(name) != "numpy":
            assert "--backend applies to --streaming" in r.output, r.output
        if command == "bench":
            assert "--seconds must be > 0" in r.output, r.output
