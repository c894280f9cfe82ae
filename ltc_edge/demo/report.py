"""The demo's report.md: every stage (training, export drift, bench, ARM targets, pendulum
closed loop) and a conclusion computed from its own numbers. Pure formatting: summary dict
(demo.json) + bench results (results.json) in, markdown out."""

from __future__ import annotations

from pathlib import Path

from ..precision import REFERENCE


def _f(v, digits: int = 3) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.{digits}g}"
    return str(v)


def _label(r: dict) -> str:
    return f"{r['backend']}/{r['precision']} @ {r['target']}"


def _train_section(summary: dict) -> list[str]:
    lines = ["## 1. Training (HalfCheetah next-observation prediction, LTC paper protocol)", "",
             f"{summary.get('epochs', '?')} epochs each (the paper trains 200), seed {summary['seed']}.", "",
             "| model | parameters | train s | test MSE |", "|---|---|---|---|"]
    for name in ("ltc-ncp", "lstm"):
        m = summary.get(name) or {}
        lines.append(f"| {name} | {_f(m.get('parameters'))} | {_f(m.get('train_s'))} | {_f(m.get('test_mse'), 4)} |")
    return lines + [""]


def _drift_section(results: dict) -> list[str]:
    lines = ["## 2. Export drift (each exported file against the torch model on held-out data)", "",
             "| model | export | max abs drift | test-metric change | within budget |", "|---|---|---|---|---|"]
    for r in results["rows"]:
        if r.get("skipped") or r.get("drift_within_budget") is None:
            continue
        rel = r.get("drift_metric_rel_change")
        lines.append(f"| {r['model']} | {r['backend']}/{r['precision']} | {_f(r.get('drift_max_abs'))} | "
                     f"{'-' if rel is None else f'{100 * rel:+.2f}%'} | "
                     f"{'yes' if r['drift_within_budget'] else '**no**'} |")
    return lines + [""]


def _bench_section(results: dict) -> list[str]:
    lines = ["## 3. Benchmark (host CPU; latency through the Python runtime, one run)", "",
             "Test MSE on the test windows (each from the reset state) and streamed (the state carried over each "
             "whole test series, as a controller runs).", "",
             "| model | run on | test MSE (windows) | test MSE (streamed) | p50 µs @B=1 (host) | p99 µs (host) | "
             "steps/s @B=16 (host) | file KiB |", "|---|---|---|---|---|---|---|---|"]
    for r in results["rows"]:
        if r["target"] != "cpu":
            continue
        if r.get("skipped"):
            lines.append(f"| {r['model']} | {_label(r)} | skipped — {r['skipped']} | | | | | |")
            continue
        lat = r.get("latency", {})
        one, many = lat.get("1", {}), lat.get("16", {})
        lines.append(f"| {r['model']} | {_label(r)} | {_f(r.get('metric'), 4)} | {_f(r.get('metric_streaming'), 4)} | "
                     f"{_f(one.get('p50_us'))} | {_f(one.get('p99_us'))} | {_f(many.get('throughput_steps_per_s'))} | "
                     f"{_f(r['file_bytes'] / 1024 if r.get('file_bytes') else None)} |")
    return lines + [""]


def _arm_section(results: dict) -> list[str]:
    lines = ["## 4. ARM targets (the exported C under qemu: golden check, instructions per step, flash/RAM)", "",
             "Instructions are counted under qemu; cycles are estimated from the executed instruction mix and "
             "the core's TRM timings (zero-wait-state memory); the time per step is cycles ÷ the stated clock. "
             "Estimates, not measurements. Test MSE: the host build of the same C source.", "",
             "| model | run on | test MSE (windows) | test MSE (streamed) | instructions / step (qemu) | "
             "est. cycles / step | est. µs / step @ clock | flash bytes | RAM bytes |",
             "|---|---|---|---|---|---|---|---|---|"]
    rows = [r for r in results["rows"] if r["target"] != "cpu"]
    for r in rows:
        if r.get("skipped"):
            lines.append(f"| {r['model']} | {_label(r)} | skipped — {r['skipped']} | | | | | | |")
            continue
        clock = f" @ {r['clock_hz'] / 1e6:g} MHz" if r.get("clock_hz") else ""
        lines.append(f"| {r['model']} | {_label(r)} | {_f(r.get('metric'), 4)} | {_f(r.get('metric_streaming'), 4)} | "
                     f"{_f(r.get('instructions_per_step'))} | {_f(r.get('cycles_per_step'))} | "
                     f"{_f(r.get('est_step_us'))}{clock} | "
                     f"{_f(r.get('flash_bytes'))} | {_f(r.get('ram_bytes'))} |")
    if not rows:
        lines.append("| - | - | not requested (`--quick` benches the host CPU only) | | | | | | |")
    return lines + [""]


def _pendulum_section(p: dict) -> list[str]:
    seeds = p["seeds"]
    cols = [("expert", p["expert"])] + [(f"LTC clone ({b})", r) for b, r in p["clone"].items()]
    lines = ["## 5. Pendulum-v1 closed loop (clone of the swing-up expert)", "",
             f"{p['method']}. Trained {p['train_s']} s ({p.get('train_cpu_s', '-')} s CPU); episode seeds {seeds[0]}–{seeds[-1]} (the ones "
             "`ltc eval` uses; `ltc control` uses the first 3). Returns: higher is better, 0 is the best.", "",
             "| seed | " + " | ".join(c for c, _ in cols) + " |", "|---" * (len(cols) + 1) + "|"]
    for i, s in enumerate(seeds):
        lines.append(f"| {s} | " + " | ".join(f"{r['returns'][i]:.1f}" for _, r in cols) + " |")
    lines.append("| **mean** | " + " | ".join(f"**{r['return_mean']:.1f}**" for _, r in cols) + " |")
    gap = p["gap"]
    lines += ["", f"The LTC clone's mean return is {abs(gap) * 100:.1f}% {'worse' if gap > 0 else 'better'} than the "
              f"expert's ({'within' if p['within_10_percent'] else '**not** within'} 10%).", ""]
    return lines


def _loss(rel: float, higher_is_better: bool) -> float:
    """How many times worse than clean (1 = unchanged) from metric / clean."""
    return (1.0 / rel if rel else float("inf")) if higher_is_better else rel


def _verdicts(r: dict, name: str) -> list[tuple]:
    """[(level, verdict, a's ratio, b's ratio)] of the first model against the second."""
    a, b = r["models"][:2]
    out = []
    for lv, pa, pb in zip(r["levels"][name], a["perturbations"][name], b["perturbations"][name]):
        if pa["relative"] is None or pb["relative"] is None:
            out.append((lv, None, pa["relative"], pb["relative"]))
            continue
        la, lb = _loss(pa["relative"], r["higher_is_better"]), _loss(pb["relative"], r["higher_is_better"])
        verdict = "as much as" if abs(la - lb) <= 0.01 * max(la, lb) else "less than" if la < lb else "more than"
        out.append((lv, verdict, pa["relative"], pb["relative"]))
    return out


def _standing(r: dict, name: str) -> str:
    """Both metrics at the perturbation's last level, and whether the first model is still the better one."""
    a, b = r["models"][:2]
    ma, mb = a["perturbations"][name][-1]["mean"], b["perturbations"][name][-1]["mean"]
    better = (ma > mb) if r["higher_is_better"] else (ma < mb)
    was = (a["clean"] > b["clean"]) if r["higher_is_better"] else (a["clean"] < b["clean"])
    verdict = ("still " if better == was else "now ") + ("the better one" if better else "the worse one")
    return f"{r['metric'].upper()} {ma:.4g} vs {mb:.4g}: {verdict}"


def robustness_sentence(r: dict, name: str) -> str:
    """Where the first model (the LTC) degrades less or more than the second, from the ratios."""
    a, b = (m["name"].upper() for m in r["models"][:2])
    metric = r["metric"].upper()
    rows = _verdicts(r, name)
    if any(v is None for _, v, _, _ in rows):
        return f"**{name}**: no ratio to compare (a clean {metric} of 0)."
    if all(abs(rb - 1.0) < 1e-6 for *_, rb in rows):
        why = " (it ignores dt)" if name == "jitter" else ""
        return (f"**{name}**: the {a}'s {metric} changes by up to {max(abs(ra - 1.0) for *_, ra, _ in rows):.1%}; "
                f"the {b} is unaffected{why}; at {rows[-1][0]:g}, {_standing(r, name)}.")
    if len({v for _, v, _, _ in rows}) == 1:
        lv, v, ra, rb = rows[-1]
        where = f"at every level (at {lv:g}: " if len(rows) > 1 else f"at {lv:g} ("
        return (f"**{name}**: the {a} degrades {v} the {b} {where}{ra:.2f}x clean vs {rb:.2f}x, "
                f"{_standing(r, name)}).")
    return f"**{name}**: the {a} degrades " + ", ".join(f"{v} the {b} at {lv:g} ({ra:.2f}x vs {rb:.2f}x)"
                                                      for lv, v, ra, rb in rows) + "."


def _robustness_summary(r: dict) -> str:
    """One sentence: under which perturbations the LTC degrades less / more than the LSTM at every level."""
    a, b = (m["name"].upper() for m in r["models"][:2])
    groups = {"less than": [], "more than": [], "mixed": []}
    for name in r["levels"]:
        verdicts = {v for _, v, _, _ in _verdicts(r, name)}
        key = verdicts.pop() if len(verdicts) == 1 and verdicts <= {"less than", "more than"} else "mixed"
        groups[key].append(name)
    words = [f"{k} the {b} under {', '.join(v)}" for k, v in groups.items() if v and k != "mixed"]
    mixed = ", ".join(groups["mixed"])
    if not words:
        return (f"On perturbed inputs (section 6) the {a} and the {b} degrade about as much, or each more at "
                f"some level ({mixed}).")
    rest = f" (about as much, or mixed across levels, under {mixed})" if mixed else ""
    return f"On perturbed inputs (section 6) the {a} degrades {' and '.join(words)} at every level{rest}."


def _robustness_section(r: dict) -> list[str]:
    a, b = r["models"][:2]
    metric = r["metric"].upper()
    lines = [f"## 6. Robustness ({r['task']}: {a['name'].upper()} vs {b['name'].upper()} on perturbed test inputs)", "",
             f"Both fp32 on the {r['backend']} backend, on the same perturbed data: {r['test_sequences']} test "
             f"sequences, mean over {len(r['seeds'])} seed(s); a sensor fault counts its worst channel. Cells: "
             f"{metric} (its ratio to clean; {'< 1' if r['higher_is_better'] else '> 1'} is worse). "
             f"Cost: {r['cpu_s']} s of CPU (+{r['children_cpu_s']} s compiling); `ltc analyze robustness` "
             "sweeps more levels and seeds.", "",
             f"| perturbation | level | {a['name'].upper()} | {b['name'].upper()} |", "|---|---|---|---|",
             f"| clean | - | {a['clean']:.4g} | {b['clean']:.4g} |"]
    for name, levels in r["levels"].items():
        for i, (lv, pa, pb) in enumerate(zip(levels, a["perturbations"][name], b["perturbations"][name])):
            cells = [f"{p['mean']:.4g}" + ("" if p["relative"] is None else f" ({p['relative']:.2f}x)") for p in (pa, pb)]
            what = f"{name}: {r['units'][name]}" if i == 0 else name
            lines.append(f"| {what} | {lv:g} | {cells[0]} | {cells[1]} |")
    return lines + [""] + [f"- {robustness_sentence(r, name)}" for name in r["levels"]] + [""]


def _ratio_words(a: float, b: float, more: str, less: str) -> str:
    if a <= 0 or b <= 0:
        return "-"
    return f"{a / b:.1f}x {more}" if a >= b else f"{b / a:.1f}x {less}"


def _pick(results: dict, model: str, backend: str, target: str = "cpu"):
    for r in results["rows"]:
        if (r["model"], r["backend"], r["precision"], r["target"]) == (model, backend, REFERENCE, target) \
                and not r.get("skipped"):
            return r
    return None


def _recorded_sentence(rec: dict) -> str:
    """The recorded converged figures (benchmarks/results/pareto_m4.json) beside this run's short schedule."""
    mse = ", ".join(f"{k} {v['test_mse']:.3f}" for k, v in sorted(rec["converged"].items(), key=lambda kv: kv[1]["test_mse"]))
    schedule = f"up to {rec['epochs']} epochs, early stop" if rec.get("early_stop") else f"{rec['epochs']} epochs"
    text = (f"Converged, as recorded ({schedule}; {rec['seeds']} seeds, {rec['units']} units; "
            f"{rec['source']}), the test MSE is {mse}.")
    return text + (f" At equal accuracy on the Cortex-M4: {rec['answer']}" if rec.get("answer") else "")


def _m4_sentence(a: dict, b: dict, steps: dict) -> str:
    """Flash and instructions on the Cortex-M4; a ratio only when both steps got the same care (both
    their FPv4 form, or both the portable C): never our best against a baseline's least."""
    fa, fb = steps.get("ltc-ncp"), steps.get("lstm")
    ia, ib = a.get("instructions_per_step"), b.get("instructions_per_step")
    ca, cb = a.get("cycles_per_step"), b.get("cycles_per_step")
    if fa is None or fa != fb:
        return (f"On a Cortex-M4 (qemu) it needs {a['flash_bytes']} vs {b['flash_bytes']} bytes of flash and "
                f"{_f(ia)} vs {_f(ib)} instructions per step; no ratio: the two steps are not built with the same care "
                f"(LTC-NCP: {fa or 'unknown'} step, LSTM: {fb or 'unknown'} step).")
    cycles = (f", an estimated {_f(ca)} vs {_f(cb)} cycles ({_ratio_words(ca, cb, 'more', 'fewer')})"
              if ca and cb else "")
    return (f"On a Cortex-M4 (qemu; both {fa} steps) it needs {a['flash_bytes']} vs {b['flash_bytes']} bytes of flash "
            f"({_ratio_words(a['flash_bytes'], b['flash_bytes'], 'larger', 'smaller')}) and {_f(ia)} vs {_f(ib)} "
            f"instructions per step ({_ratio_words(ia, ib, 'more', 'fewer')}){cycles}.")


def conclusion(summary: dict, results: dict) -> str:
    """One paragraph comparing the LTC-NCP with the LSTM from this run's own numbers, beside the recorded
    converged figures where the repository has them."""
    ltc, lstm = summary["ltc-ncp"], summary["lstm"]
    parts = [f"At {summary.get('epochs', '?')} epochs (a short schedule; the paper trains 200) the LTC-NCP "
             f"({ltc['parameters']} parameters) reaches a test MSE "
             f"of {ltc['test_mse']:.3f} vs the LSTM's {lstm['test_mse']:.3f} ({lstm['parameters']} parameters): "
             f"{'the LTC-NCP is more accurate' if ltc['test_mse'] < lstm['test_mse'] else 'the LSTM is more accurate'}."]
    if summary.get("recorded"):
        parts.append(_recorded_sentence(summary["recorded"]))
    for backend in ("c", "onnxruntime", "numpy"):
        a, b = _pick(results, "ltc-ncp", backend), _pick(results, "lstm", backend)
        if a and b:
            ta, tb = a["latency"]["1"]["p50_us"], b["latency"]["1"]["p50_us"]
            parts.append(f"Per step on the host ({backend}, batch 1) the LTC-NCP takes {ta:.1f} µs vs {tb:.1f} µs: "
                         f"{_ratio_words(ta, tb, 'slower', 'faster')} than the LSTM.")
            break
    a, b = _pick(results, "ltc-ncp", "c", "cortex-m4"), _pick(results, "lstm", "c", "cortex-m4")
    if a and b and a.get("flash_bytes") and b.get("flash_bytes"):
        parts.append(_m4_sentence(a, b, summary.get("m4_steps") or {}))
    p = summary.get("pendulum")
    if p:
        parts.append(f"As a controller, the cloned {p.get('network', 'LTC')} flies Pendulum-v1 at a mean return of "
                     f"{p['clone_mean']:.1f} vs the expert's {p['expert']['return_mean']:.1f} "
                     f"({abs(p['gap']) * 100:.1f}% {'worse' if p['gap'] > 0 else 'better'}).")
    if summary.get("robustness"):
        parts.append(_robustness_summary(summary["robustness"]))
    return " ".join(parts)


def markdown(summary: dict, results: dict, plots: list[str], out: Path) -> str:
    m = results.get("machine", {})
    lines = ["# ltc-edge demo", "",
             f"- machine: {m.get('processor')} ({m.get('cpu_count')} cores), {m.get('platform')}",
             f"- total: {summary.get('total_s')} s (" + ", ".join(f"{k} {v} s" for k, v in summary.get("stage_s", {}).items())
             + f"); load average at the start {summary.get('load_start', '-')}, at the end {summary.get('load_end', '-')}",
             ""]
    lines += _train_section(summary) + _drift_section(results) + _bench_section(results) + _arm_section(results)
    if summary.get("pendulum"):
        lines += _pendulum_section(summary["pendulum"])
    if summary.get("robustness"):
        lines += _robustness_section(summary["robustness"])
    for p in plots:
        lines += [f"![{Path(p).stem}]({Path(p).relative_to(out) if Path(p).is_relative_to(out) else p})", ""]
    lines += ["## Conclusion", "", conclusion(summary, results), ""]
    return "\n".join(lines)
