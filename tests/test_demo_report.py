"""The demo's report.md: every stage, skipped targets with their reason, a conclusion whose
words come from the run's own numbers (pure formatting, no training)."""

from pathlib import Path

from ltc_edge.demo.report import conclusion, markdown


def _row(model, backend, target="cpu", precision="fp32", p50=10.0, skipped=None, **kw):
    return {"model": model, "backend": backend, "precision": precision, "target": target, "skipped": skipped,
            "file_bytes": 2048, "metric": 3.0, "latency": {"1": {"p50_us": p50, "p99_us": 2 * p50},
                                                            "16": {"throughput_steps_per_s": 1e5}},
            "drift_within_budget": kw.pop("drift", None), "drift_max_abs": 1e-5, "drift_metric_rel_change": 0.01, **kw}


def _inputs(m4_skipped: bool):
    rows = [_row("ltc-ncp", "c", p50=30.0), _row("lstm", "c", p50=10.0),
            _row("ltc-ncp", "onnxruntime", precision="int8", p50=50.0, drift=True),
            _row("ltc-ncp", "tflite", skipped="ai_edge_litert not installed")]
    for model, flash, instr in (("ltc-ncp", 8000, 80000), ("lstm", 32000, 40000)):
        if m4_skipped:
            rows.append(_row(model, "c", target="cortex-m4", skipped="ARM tools missing: arm-none-eabi-gcc"))
        else:
            rows.append(_row(model, "c", target="cortex-m4", flash_bytes=flash, instructions_per_step=instr, ram_bytes=1000))
    results = {"rows": rows, "machine": {"processor": "cpu", "cpu_count": 2, "platform": "linux"}}
    pend = {"method": "DAgger", "train_s": 60.0, "seeds": [0, 1], "expert": {"returns": [-100.0, -200.0], "return_mean": -150.0},
            "clone": {"numpy": {"returns": [-110.0, -220.0], "return_mean": -165.0}}, "clone_mean": -165.0,
            "gap": 0.1, "within_10_percent": True}
    summary = {"seed": 0, "epochs": 12, "total_s": 300.0, "stage_s": {"train": 100.0},
               "ltc-ncp": {"test_mse": 3.0, "train_s": 40.0, "parameters": 6571},
               "lstm": {"test_mse": 4.5, "train_s": 8.0, "parameters": 6961}, "pendulum": pend}
    return summary, results


def test_report_covers_every_stage_and_shows_skipped_targets():
    summary, results = _inputs(m4_skipped=True)
    md = markdown(summary, results, ["/x/bench/latency_vs_accuracy.png"], Path("/x"))
    for section in ("## 1. Training", "## 2. Export drift", "## 3. Benchmark", "## 4. ARM targets",
                    "## 5. Pendulum-v1 closed loop", "## Conclusion"):
        assert section in md
    assert md.count("skipped — ARM tools missing: arm-none-eabi-gcc") == 2
    assert "skipped — ai_edge_litert not installed" in md
    assert "| 1 | -200.0 | -220.0 |" in md and "**-150.0**" in md and "**-165.0**" in md
    assert "10.0% worse than the expert's (within 10%)" in md
    assert "![latency_vs_accuracy](bench/latency_vs_accuracy.png)" in md
    assert "+1.00%" in md  # the int8 export's test-metric change


def test_conclusion_states_the_trade_off_from_the_numbers():
    summary, results = _inputs(m4_skipped=False)
    summary["m4_steps"] = {"ltc-ncp": "fpv4", "lstm": "fpv4"}
    text = conclusion(summary, results)
    assert "At 12 epochs (a short schedule; the paper trains 200)" in text
    assert "test MSE of 3.000 vs the LSTM's 4.500" in text and "the LTC-NCP is more accurate" in text
    assert "30.0 µs vs 10.0 µs: 3.0x slower" in text
    assert "both fpv4 steps" in text
    assert "8000 vs 32000 bytes of flash (4.0x smaller)" in text and "(2.0x more)" in text
    assert "-165.0 vs the expert's -150.0 (10.0% worse)" in text
    summary["ltc-ncp"]["test_mse"] = 5.0
    assert "the LSTM is more accurate" in conclusion(summary, results)


def _robustness(ltc_rel: dict, lstm_rel: dict) -> dict:
    """A demo robustness result (the sweep's schema) from ratios to clean per perturbation level."""
    from ltc_edge.analyze.robustness import DEMO_LEVELS, PERTURBATIONS

    def model(name, clean, rel):
        return {"name": name, "clean": clean,
                "perturbations": {p: [{"level": lv, "mean": clean * r, "std": 0.0, "relative": r}
                                      for lv, r in zip(DEMO_LEVELS[p], rel[p])] for p in DEMO_LEVELS}}
    return {"task": "cheetah", "metric": "mse", "higher_is_better": False, "backend": "c", "test_sequences": 128,
            "seeds": [0, 1], "levels": DEMO_LEVELS, "units": {p: PERTURBATIONS[p].unit for p in DEMO_LEVELS},
            "cpu_s": 3.1, "children_cpu_s": 0.7,
            "models": [model("ltc-ncp", 2.0, ltc_rel), model("lstm", 4.0, lstm_rel)]}


def test_robustness_section_says_where_the_ltc_degrades_less_or_more():
    from ltc_edge.demo.report import robustness_sentence

    ltc = {"noise": (1.1, 1.5), "drop": (1.4, 2.5), "resample": (1.2, 1.0), "jitter": (1.05, 1.2),
           "stuck": (1.3,), "zeroed": (1.002,)}
    lstm = {"noise": (1.3, 2.0), "drop": (1.2, 1.5), "resample": (1.1, 1.5), "jitter": (1.0, 1.0),
            "stuck": (1.6,), "zeroed": (1.0,)}
    r = _robustness(ltc, lstm)
    assert robustness_sentence(r, "noise") == ("**noise**: the LTC-NCP degrades less than the LSTM at every level "
                                               "(at 1: 1.50x clean vs 2.00x, MSE 3 vs 8: still the better one).")
    assert robustness_sentence(r, "drop").startswith("**drop**: the LTC-NCP degrades more than the LSTM at every")
    assert robustness_sentence(r, "resample") == ("**resample**: the LTC-NCP degrades more than the LSTM at 0.5 "
                                                  "(1.20x vs 1.10x), less than the LSTM at 2 (1.00x vs 1.50x).")
    assert robustness_sentence(r, "jitter") == ("**jitter**: the LTC-NCP's MSE changes by up to 20.0%; the LSTM is "
                                                "unaffected (it ignores dt); at 0.6, MSE 2.4 vs 4: still the better one.")
    assert robustness_sentence(r, "stuck") == ("**stuck**: the LTC-NCP degrades less than the LSTM at 0.25 "
                                               "(1.30x clean vs 1.60x, MSE 2.6 vs 6.4: still the better one).")
    r["models"][0]["perturbations"]["drop"][-1]["mean"] = 4.5  # the LSTM: 4 x 1.5 = 6
    assert "MSE 4.5 vs 6: still the better one" in robustness_sentence(r, "drop")
    r["models"][0]["perturbations"]["drop"][-1]["mean"] = 6.5
    assert "MSE 6.5 vs 6: now the worse one" in robustness_sentence(r, "drop")
    summary, results = _inputs(m4_skipped=True)
    summary["robustness"] = r
    md = markdown(summary, results, [], Path("/x"))
    assert "## 6. Robustness (cheetah: LTC-NCP vs LSTM on perturbed test inputs)" in md
    assert "| clean | - | 2 | 4 |" in md and "| noise: sigma / training std | 0.3 | 2.2 (1.10x) | 5.2 (1.30x) |" in md
    assert "| noise | 1 | 3 (1.50x) | 8 (2.00x) |" in md
    assert md.count("\n- **") == len(r["levels"])  # one sentence per perturbation
    assert ("On perturbed inputs (section 6) the LTC-NCP degrades less than the LSTM under noise, stuck and more "
            "than the LSTM under drop, jitter at every level (about as much, or mixed across levels, under "
            "resample, zeroed).") in conclusion(summary, results)
    del summary["robustness"]
    assert "## 6. Robustness" not in markdown(summary, results, [], Path("/x"))


def test_no_speed_ratio_against_a_baseline_built_with_less_care():
    """Issue 24: the LTC's FPv4 step against the LSTM's portable C is no speed ratio."""
    summary, results = _inputs(m4_skipped=False)
    for steps in ({"ltc-ncp": "fpv4", "lstm": "portable"}, {}):
        summary["m4_steps"] = steps
        text = conclusion(summary, results)
        assert "80000 vs 40000 instructions per step; no ratio: the two steps are not built with the same care" in text
        assert "x more" not in text and "x fewer" not in text and "x smaller" not in text


def test_conclusion_cites_the_recorded_converged_pareto(tmp_path):
    import json

    from ltc_edge.demo.pipeline import recorded_pareto

    rec = {"points": [{"source": "converged table", "precision": "fp32", "kind": k, "units": 32, "test_mse": m,
                       "epochs_cap": 200, "seeds": [0, 1, 2, 3, 4], "cost": c}
                      for k, m, c in (("LTC-NCP", 2.648, 30000.0), ("LSTM", 2.420, 20000.0))]
                     + [{"source": "sweep", "precision": "fp32", "kind": "GRU", "units": 8, "test_mse": 9.0}],
           "equal_accuracy_converged": [{"point": "LTC-NCP-8 fp32", "test_mse": 5.5, "cycles": 9000.0,
                                         "cheapest_other_kind_as_accurate": "GRU-8 fp32", "its_mse": 3.4,
                                         "its_cycles": 6000.0, "cost_ratio": 1.5},
                                        {"point": "LTC-NCP-32 fp32", "test_mse": 2.648, "cycles": 30000.0,
                                         "cheapest_other_kind_as_accurate": "LSTM-32 fp32", "its_mse": 2.42,
                                         "its_cycles": 20000.0, "cost_ratio": 1.5}]}
    (tmp_path / "p.json").write_text(json.dumps(rec))
    got = recorded_pareto(tmp_path / "p.json")
    assert got["converged"] == {"LTC-NCP-32": {"test_mse": 2.648, "cycles_per_step": 30000.0},
                                "LSTM-32": {"test_mse": 2.42, "cycles_per_step": 20000.0}}
    summary, results = _inputs(m4_skipped=False)
    summary["recorded"] = got
    text = conclusion(summary, results)
    assert ("Converged, as recorded (200 epochs; 5 seeds, 32 units; benchmarks/results/pareto_m4.json), the test "
            "MSE is LSTM-32 2.420, LTC-NCP-32 2.648.") in text
    assert "matched or beaten by the LSTM-32 fp32 (MSE 2.420) at 20,000 cycles: the LTC-NCP costs 1.50x" in text
    assert recorded_pareto(tmp_path / "missing.json") is None
    # a sweep trained to convergence stands for the table: its 32-unit cells, "up to N epochs, early stop"
    rec["protocol"] = {"converged": True, "epochs_cap": 200}
    rec["points"].append({"source": "sweep", "precision": "fp32", "kind": "GRU", "units": 32, "test_mse": 2.417,
                          "seeds": [0, 1], "status": ["finished", "finished"], "cost": 33605.0})
    (tmp_path / "p.json").write_text(json.dumps(rec))
    summary["recorded"] = recorded_pareto(tmp_path / "p.json")
    assert ("Converged, as recorded (up to 200 epochs, early stop; 2 seeds, 32 units; "
            "benchmarks/results/pareto_m4.json), the test MSE is GRU-32 2.417.") in conclusion(summary, results)
