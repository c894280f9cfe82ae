"""The demo's report.md: every stage, skipped targets with their reason, a conclusion whose
words come from the run's own numbers (pure formatting, no training)."""

from pathlib import Path

from ltc_edge.bench.demo_report import conclusion, markdown


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
    text = conclusion(summary, results)
    assert "test MSE of 3.000 vs the LSTM's 4.500" in text and "the LTC-NCP is more accurate" in text
    assert "30.0 µs vs 10.0 µs: 3.0x slower" in text
    assert "8000 vs 32000 bytes of flash (4.0x smaller)" in text and "(2.0x more)" in text
    assert "-165.0 vs the expert's -150.0 (10.0% worse)" in text
    summary["ltc-ncp"]["test_mse"] = 5.0
    assert "the LSTM is more accurate" in conclusion(summary, results)
