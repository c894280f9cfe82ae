"""Robustness (`ltc analyze robustness`): a model's task metric under perturbed test data,
through the runtime backend it will be deployed with, swept over levels and averaged over
seeds. Open-loop perturbations work on a Split (x [N, T, in], y, dt [N, T]) and return a new
one; each is a plain function in PERTURBATIONS.

Time: a step's dt is the time elapsed since the previous sample, so sample times are
cumsum(dt) and every perturbation that moves samples keeps that time axis (dropping samples
hands their dt to the next kept sample; resampling inserts or removes samples on the same
span). Only true targets are scored (inserted samples have NaN targets).
Continuous-time cells are told the true dt; discrete ones (LSTM/GRU) ignore it and see the
sequence as it arrives, which is exactly what a deployed discrete model gets.

JSON schema (robustness.json, "schema": "ltc-edge/robustness/1"):
  {schema, machine, versions, task, metric, higher_is_better, seeds, levels: {name: [...]},
   models: [{name, path, backend, kind, precision, clean, clean_streaming,
             perturbations: {name: [{level, mean, std, values[seeds], relative,
                                     state: {checked, outside_fraction, neurons_outside}}]}}]}
  `relative` = mean / clean (MSE: > 1 is worse; accuracy: < 1 is worse). `clean` is over the test
  windows (state reset each); `clean_streaming` over the whole test series with the state carried,
  as the model runs on a device (`ltc analyze robustness` only).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Callable

import numpy as np

from ..machine import machine_info
from ..train.taskdata import Split

SCHEMA = "ltc-edge/robustness/1"


@dataclass(frozen=True)
class Context:
    """What perturbations may need besides the split: per-feature training std of the inputs."""
    input_std: np.ndarray


def with_dt(split: Split) -> Split:
    """The split with an explicit dt array (None means 1.0 per step)."""
    if split.dt is not None:
        return split
    return replace(split, dt=np.ones(split.x.shape[:2], np.float32))


def sample_times(dt: np.ndarray) -> np.ndarray:
    """[N, T] time of each sample (float64), the first at dt[:, 0]."""
    return np.cumsum(dt.astype(np.float64), axis=1)


# --- perturbations: (split with dt, level, rng, ctx) -> list of perturbed splits ----------
# (a list: sensor faults try each channel in turn and the worst one is reported)


def noise(split, sigma, rng, ctx):
    """Additive Gaussian input noise, sigma as a fraction of each feature's training std."""
    x = split.x + rng.normal(size=split.x.shape).astype(np.float32) * (sigma * ctx.input_std)
    return [replace(split, x=x.astype(np.float32))]


def drop(split, p, rng, ctx):
    """A fraction p of time steps removed (the same count in every row, never the last, so the
    elapsed time sums exactly); each kept sample's dt is the time since the previous kept one."""
    n, t = split.x.shape[:2]
    k = int(round(p * (t - 1)))
    keep = np.stack([np.sort(rng.permutation(t - 1)[k:]) for _ in range(n)]).reshape(n, t - 1 - k)
    keep = np.concatenate([keep, np.full((n, 1), t - 1)], axis=1)
    times = sample_times(split.dt)
    kept_t = np.take_along_axis(times, keep, axis=1)
    dt = np.diff(kept_t, axis=1, prepend=0.0)
    x = np.take_along_axis(split.x, keep[:, :, None], axis=1)
    y = np.take_along_axis(split.y, keep[:, :, None], axis=1) if split.y.ndim == 3 else split.y
    return [Split(x=x, y=y, dt=dt.astype(np.float32))]


def _upsample(split, r: int):
    """r - 1 samples inserted evenly into every interval (inputs linearly interpolated); the
    inserted samples have no true target, so their targets are NaN and are not scored."""
    n, t, c = split.x.shape
    frac = np.arange(r, dtype=np.float32) / r                       # position inside an interval
    x0, x1 = split.x[:, :-1], split.x[:, 1:]
    x = (x0[:, :, None] * (1 - frac)[:, None] + x1[:, :, None] * frac[:, None]).reshape(n, (t - 1) * r, c)
    x = np.concatenate([x, split.x[:, -1:]], axis=1)
    dt = np.concatenate([split.dt[:, :1], np.repeat(split.dt[:, 1:] / r, r, axis=1)], axis=1)
    y = split.y
    if y.ndim == 3:
        y = np.full((n, x.shape[1], y.shape[2]), np.nan, np.float32)
        y[:, ::r] = split.y
    return Split(x=x.astype(np.float32), y=y, dt=dt.astype(np.float32))


def _decimate(split, r: int):
    """Every r-th sample kept (the last one too), dt = the time since the previous kept one."""
    t = split.x.shape[1]
    keep = np.unique(np.append(np.arange(0, t, r), t - 1))
    kept_t = sample_times(split.dt)[:, keep]
    dt = np.diff(kept_t, axis=1, prepend=kept_t[:, :1] - split.dt[:, :1])
    y = split.y[:, keep] if split.y.ndim == 3 else split.y
    return Split(x=split.x[:, keep], y=y, dt=dt.astype(np.float32))


def resample(split, rate, rng, ctx):
    """The series at `rate` x its sampling rate on the same time span: an integer rate inserts
    interpolated samples into each interval, 1/integer keeps every 1/rate-th sample. Scored
    only where a true target exists (the original samples)."""
    r = rate if rate >= 1 else 1.0 / rate
    if abs(r - round(r)) > 1e-9:
        raise ValueError(f"resample rate must be an integer or 1/integer, got {rate}")
    return [_upsample(split, int(round(r))) if rate >= 1 else _decimate(split, int(round(r)))]


def jitter(split, amount, rng, ctx):
    """A noisy clock: the samples stay, but the dt the model is told is drawn uniformly from
    [(1 - amount) dt, (1 + amount) dt] (amount < 1). Discrete cells ignore dt."""
    factor = rng.uniform(1.0 - amount, 1.0 + amount, size=split.dt.shape)
    return [replace(split, dt=(split.dt * factor).astype(np.float32))]


def _fault(split, window, rng, stuck: bool):
    n, t, c = split.x.shape
    width = max(1, int(round(window * t)))
    start = int(rng.integers(0, t - width + 1))
    out = []
    for ch in range(c):
        x = split.x.copy()
        x[:, start:start + width, ch] = x[:, max(start - 1, 0), ch][:, None] if stuck else 0.0
        out.append(replace(split, x=x))
    return out


def stuck(split, window, rng, ctx):
    """One channel stuck at its last value for a window (fraction of the sequence); each channel in turn."""
    return _fault(split, window, rng, stuck=True)


def zeroed(split, window, rng, ctx):
    """One channel reading 0 for a window (fraction of the sequence); each channel in turn."""
    return _fault(split, window, rng, stuck=False)


@dataclass(frozen=True)
class Perturbation:
    apply: Callable
    levels: tuple
    unit: str


PERTURBATIONS = {
    "noise": Perturbation(noise, (0.1, 0.3, 1.0), "sigma / training std"),
    "drop": Perturbation(drop, (0.1, 0.3, 0.5), "fraction of steps dropped"),
    "resample": Perturbation(resample, (0.5, 2.0, 4.0), "x sampling rate"),
    "jitter": Perturbation(jitter, (0.1, 0.3, 0.6), "dt error (fraction of dt)"),
    "stuck": Perturbation(stuck, (0.25, 0.5), "window (fraction of sequence)"),
    "zeroed": Perturbation(zeroed, (0.25, 0.5), "window (fraction of sequence)"),
}


def sample_rows(split: Split, n: int, seed: int) -> Split:
    """At most n rows of the split (a seeded sample, in their original order)."""
    if len(split) <= n:
        return split
    idx = np.sort(np.random.default_rng(seed).permutation(len(split))[:n])
    return replace(split, x=split.x[idx], y=split.y[idx], dt=None if split.dt is None else split.dt[idx])


def input_std(train: Split) -> np.ndarray:
    """Per-feature training std of the inputs (floored at 1e-8): the scale of `noise`."""
    return np.maximum(train.x.reshape(-1, train.x.shape[-1]).std(axis=0), 1e-8).astype(np.float32)


# --- running a deployed model over a split -----------------------------------------------


def run_split(ctrl, split: Split) -> tuple[np.ndarray, dict]:
    """Stream every row of the split through the controller (batch = rows, state reset first,
    dt per step): outputs [N, T, out] and how often the states left the bounds the runtime
    guard checks (ctrl.state_bounds: the model's LTC bounds, which hold the reset state)."""
    n, t = split.x.shape[:2]
    ctrl.reset(batch=n)
    bounds = ctrl.state_bounds
    ys = np.empty((n, t, ctrl.output_size), np.float32)
    outside = 0
    neurons = set()
    for k in range(t):
        ys[:, k] = ctrl.step(np.ascontiguousarray(split.x[:, k]), split.dt[:, k].reshape(n, 1))
        if bounds is not None:
            h = ctrl.state
            bad = (h < bounds[0]) | (h > bounds[1]) | ~np.isfinite(h)
            outside += int(bad.any(axis=1).sum())
            neurons.update(np.nonzero(bad.any(axis=0))[0].tolist())
    state = {"checked": bounds is not None, "outside_fraction": outside / (n * t), "neurons_outside": sorted(neurons)}
    return ys, state


def metric(ys: np.ndarray, split: Split, kind: str) -> float:
    """The task metric on raw outputs: MSE over every element, or accuracy of the last step."""
    if kind == "classification":
        return float((ys[:, -1].argmax(-1) == split.y).mean())
    err = (ys - split.y).astype(np.float64)
    return float(np.nanmean(err ** 2))  # NaN targets: inserted samples, not scored


# --- the sweep ------------------------------------------------------------------------------


@dataclass
class Deployed:
    """One model as deployed: a name for tables, its file, the runtime controller."""
    name: str
    path: str
    backend: str
    ctrl: object


def _worst(values, kind):
    return min(values) if kind == "classification" else max(values)


def _point(models, variants_by_seed, kind, clean) -> list[dict]:
    """Per model: the metric at one level, each seed's worst variant, mean/std over seeds."""
    rows = []
    for m, base in zip(models, clean):
        values, states = [], []
        for variants in variants_by_seed:
            per_variant = []
            for v in variants:
                ys, st = run_split(m.ctrl, v)
                per_variant.append(metric(ys, v, kind))
                states.append(st)
            values.append(_worst(per_variant, kind))
        mean = float(np.mean(values))
        rows.append({"mean": mean, "std": float(np.std(values)), "values": values,
                     "relative": mean / base if base else None, "state": _merge_states(states)})
    return rows


def _merge_states(states) -> dict:
    return {"checked": any(s["checked"] for s in states),
            "outside_fraction": float(np.mean([s["outside_fraction"] for s in states])),
            "neurons_outside": sorted(set().union(*(s["neurons_outside"] for s in states)))}


def sweep(models: list[Deployed], test: Split, ctx: Context, kind: str, *, seeds: int = 3,
          perturbations=None, levels=None, progress=None) -> dict:
    """Every model on the clean split and on each perturbation x level x seed (the same
    perturbed data for every model: common random numbers make the comparison fair)."""
    test = with_dt(test)
    names = list(perturbations or PERTURBATIONS)
    levels = {n: tuple((levels or {}).get(n, PERTURBATIONS[n].levels)) for n in names}
    clean, clean_states = [], []
    for m in models:
        ys, st = run_split(m.ctrl, test)
        clean.append(metric(ys, test, kind))
        clean_states.append(st)
    result = [{"name": m.name, "path": m.path, "backend": m.backend, "kind": m.ctrl.meta.kind,
               "precision": m.ctrl.meta.precision, "clean": c, "clean_state": s, "perturbations": {}}
              for m, c, s in zip(models, clean, clean_states)]
    for i, name in enumerate(names):
        p = PERTURBATIONS[name]
        for j, level in enumerate(levels[name]):
            if progress:
                progress(f"{name} {level:g}")
            variants = [p.apply(test, level, np.random.default_rng([seed, i, j]), ctx) for seed in range(seeds)]
            for entry, row in zip(result, _point(models, variants, kind, clean)):
                entry["perturbations"].setdefault(name, []).append({"level": level, **row})
    return {"schema": SCHEMA, "machine": machine_info(), "seeds": list(range(seeds)), "levels": levels,
            "units": {n: PERTURBATIONS[n].unit for n in names}, "models": result}


def add_streaming(result: dict, models: list[Deployed], td) -> None:
    """Each model's clean metric streamed over the task's whole test series, state carried (how
    it runs on a device), beside the windowed `clean`: models[i]["clean_streaming"]."""
    from ..train.streaming import stream_metric

    for entry, m in zip(result["models"], models):
        entry["clean_streaming"] = stream_metric(lambda batch, ctrl=m.ctrl: ctrl, td)[td.metric]


# a spread under this fraction of the mean is float rounding between seeds (a model that ignores
# the perturbation scores the same each time), not a spread: printed as ± 0
SPREAD_ZERO = 1e-6


def spread(mean: float, std: float) -> str:
    """'± 0.0012' (two significant figures), or '± 0' below SPREAD_ZERO of the mean."""
    return "± 0" if std <= SPREAD_ZERO * abs(mean) else f"± {std:.2g}"


def _worst_level(m: dict, name: str, key: str, higher_is_better: bool) -> float:
    """A model's worst value of `key` (mean or relative) over a perturbation's levels."""
    values = [r[key] for r in m["perturbations"][name] if r[key] is not None]
    return (min if higher_is_better else max)(values) if values else float("nan")


def _ranked(models, values, fmt: str, higher_is_better: bool) -> tuple[str | None, str]:
    """(the best model's name, None on a tie as printed, and 'a 1.02x, b 1.10x', best first)."""
    order = sorted(range(len(models)), key=lambda i: -values[i] if higher_is_better else values[i])
    shown = [fmt.format(values[i]) for i in order]
    listing = ", ".join(f"{models[i]['name']} {v}" for i, v in zip(order, shown))
    return (None if shown[0] == shown[1] else models[order[0]]["name"]), listing


def _verdict_line(name: str, least: tuple, best: tuple, best_word: str) -> str:
    (r_who, r_list), (a_who, a_list) = least, best
    rel = (f"{r_who} degrades least relative to its clean score ({r_list})" if r_who
           else f"no model degrades less than another ({r_list})")
    absolute = f"{a_who} has the {best_word} under it ({a_list})" if a_who else f"the {best_word} is a tie ({a_list})"
    if r_who and r_who == a_who:
        return f"- {name}: {r_who} is the more robust: it degrades least ({r_list}) and has the {best_word} ({a_list})"
    return f"- {name}: {rel}; {absolute}"


def verdict(result: dict) -> list[str]:
    """Per perturbation, at each model's worst level: which model degrades least relative to
    its clean score, and which has the best absolute score under it (they can differ: a model
    can lose less of its accuracy and still be the less accurate); then a count over all."""
    models, hib = result["models"], bool(result.get("higher_is_better"))
    best_word = ("highest " if hib else "lowest ") + result.get("metric", "metric")
    lines, wins = [], ({}, {})
    for name in result["levels"]:
        least = _ranked(models, [_worst_level(m, name, "relative", hib) for m in models], "{:.2f}x", hib)
        best = _ranked(models, [_worst_level(m, name, "mean", hib) for m in models], "{:.4g}", hib)
        for tally, (who, _) in zip(wins, (least, best)):
            tally[who or "a tie"] = tally.get(who or "a tie", 0) + 1
        lines.append(_verdict_line(name, least, best, best_word))
    n = len(result["levels"])
    for tally, what in zip(wins, ("degrades least", f"has the {best_word}")):
        counts = ", ".join(f"{who} under {k} of {n}" for who, k in sorted(tally.items(), key=lambda kv: -kv[1]))
        lines.append(f"- overall, {what}: {counts} perturbations")
    return lines


def markdown(result: dict) -> str:
    """A table per perturbation: mean ± std of the metric per level, and relative to clean."""
    metric_name = result.get("metric", "metric")
    lines = [f"# Robustness ({metric_name}; mean ± std over {len(result['seeds'])} seeds)", ""]
    models = result["models"]
    lines += ["| model | backend | precision | clean (test windows) | clean, streamed (whole test series) |",
              "|---|---|---|---|---|"]
    lines += [f"| {m['name']} | {m['backend']} | {m['precision']} | {m['clean']:.4g} | "
              f"{'-' if m.get('clean_streaming') is None else format(m['clean_streaming'], '.4g')} |" for m in models]
    for name, levels in result["levels"].items():
        lines += ["", f"## {name} ({result['units'][name]})", "",
                  "| model | " + " | ".join(f"{lv:g}" for lv in levels) + " |",
                  "|---|" + "---|" * len(levels)]
        for m in models:
            cells = [f"{r['mean']:.4g} {spread(r['mean'], r['std'])}"
                     + ("" if r["relative"] is None else f" ({r['relative']:.2f}x)") for r in m["perturbations"][name]]
            lines.append(f"| {m['name']} | " + " | ".join(cells) + " |")
    if len(models) > 1:
        lines += ["", "## Verdict (each model at its worst level of each perturbation)", "", *verdict(result)]
    lines += ["", "## LTC state bounds", ""]
    for m in models:
        s = [m["clean_state"]] + [r["state"] for rows in m["perturbations"].values() for r in rows]
        if not any(x["checked"] for x in s):
            lines.append(f"- {m['name']}: no proven bounds for a {m['kind']} (not checked)")
            continue
        worst = max(x["outside_fraction"] for x in s)
        bad = sorted(set().union(*(x["neurons_outside"] for x in s)))
        lines.append(f"- {m['name']}: states inside the LTC bounds, clean and under every perturbation" if not bad else
                     f"- {m['name']}: states left the bounds (neurons {bad}; up to {worst:.2%} of steps)")
    if "closed_loop" in result:
        lines += closed_loop_markdown(result["closed_loop"])
    return "\n".join(lines) + "\n"


def closed_loop_markdown(cl: dict) -> list[str]:
    """Episode return (higher is better) per policy, clean and perturbed; x expert's return."""
    lines = ["", f"## Closed loop (Pendulum-v1 return, mean ± std over seeds {cl['seeds']}; ratio to the "
                 "expert under the same perturbation, 1.00 = as good)", ""]
    expert = cl["returns"]["expert"]
    for pert, rows in expert.items():
        levels = [r["level"] for r in rows]
        lines += [f"### {pert}", "", "| policy | " + " | ".join(f"{lv:g}" for lv in levels) + " |",
                  "|---|" + "---|" * len(levels)]
        for name, table in cl["returns"].items():
            cells = []
            for r, e in zip(table[pert], rows):
                ratio = e["mean"] / r["mean"] if r["mean"] else float("nan")  # returns are negative
                cells.append(f"{r['mean']:.1f} ± {r['std']:.1f}" + ("" if name == "expert" else f" ({ratio:.2f})"))
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    return lines


def line_styles(models: list[dict]) -> list[dict]:
    """Per model: its cell kind's colour from the plots' shared map (plots.COLORS: a model has
    one colour in every plot) and, for a second model of the same kind (another backend or
    precision), its own line style and marker."""
    from ..plots import COLORS

    seen: dict = {}
    styles = []
    for m in models:
        k = seen[m["kind"]] = seen.get(m["kind"], -1) + 1
        styles.append({"color": COLORS.get(m["kind"], "gray"), "ls": ("-", "--", ":", "-.")[k % 4],
                       "marker": "osd^v"[k % 5]})
    return styles


def plot(result: dict, path) -> str:
    """One panel per perturbation: metric relative to clean vs level, a line per model."""
    from ..plots import pyplot, save

    plt = pyplot()
    names = list(result["levels"])
    cols = min(3, len(names))
    rows = (len(names) + cols - 1) // cols
    fig, axes = plt.subplots(rows, cols, figsize=(4.2 * cols, 3.3 * rows), squeeze=False)
    for ax, name in zip(axes.ravel(), names):
        for m, style in zip(result["models"], line_styles(result["models"])):
            pts = m["perturbations"][name]
            rel = [p["relative"] or np.nan for p in pts]
            err = [p["std"] / m["clean"] if m["clean"] else 0.0 for p in pts]
            ax.errorbar([p["level"] for p in pts], rel, yerr=err, capsize=3, label=m["name"], **style)
        ax.axhline(1.0, color="grey", lw=0.8, ls=":")
        ax.set_title(name)
        ax.set_xlabel(result["units"][name])
        ax.set_ylabel(f"{result.get('metric', 'metric')} / clean")
    for ax in axes.ravel()[len(names):]:
        ax.axis("off")
    axes.ravel()[0].legend(fontsize=7)
    return save(fig, path, dpi=110)


# --- closed loop (pendulum): the deployed model vs the expert under the same perturbation ---


def _delayed(policy, k: int):
    """The policy's action reaches the plant k steps late (zero torque until then)."""
    from collections import deque

    queue = deque([np.zeros((1, 1), np.float32)] * k)

    def act(obs, dt):
        queue.append(np.asarray(policy(obs, dt), np.float32).reshape(1, 1))
        return queue.popleft()
    return act


def episode_return(policy, seed: int, perturbation: str, level: float, obs_std, steps: int = 200) -> float:
    """One Pendulum-v1 episode under a closed-loop perturbation: obs_noise (sigma x the
    training std of each observation), delay (steps), mass or length (x nominal)."""
    import gymnasium as gym

    from ..train.pendulum import DT

    env = gym.make("Pendulum-v1")
    u = env.unwrapped
    if perturbation == "mass":
        u.m = u.m * level
    elif perturbation == "length":
        u.l = u.l * level
    act = _delayed(policy, int(level)) if perturbation == "delay" else policy
    rng = np.random.default_rng([seed, 7])
    obs, _ = env.reset(seed=seed)
    total = 0.0
    try:
        for _ in range(steps):
            o = np.asarray(obs, np.float32).reshape(1, -1)
            if perturbation == "obs_noise":
                o = o + (rng.normal(size=o.shape) * level * obs_std).astype(np.float32)
            obs, r, term, trunc, _ = env.step(np.asarray(act(o, DT), np.float32).reshape(1))
            total += float(r)
            if term or trunc:
                break
    finally:
        env.close()
    return total


CLOSED_LOOP = {"obs_noise": (0.05, 0.1, 0.2), "delay": (1, 2, 4), "mass": (0.8, 1.2), "length": (0.8, 1.2)}


def _controller_policy(ctrl):
    def policy(obs, dt):
        return ctrl.step(obs.reshape(-1) if ctrl.batch == 1 else obs, dt)

    def reset():
        ctrl.reset(batch=1)
    policy.reset = reset
    return policy


def closed_loop_sweep(models: list[Deployed], obs_std, *, seeds: int = 3, progress=None) -> dict:
    """Returns of each model and of the expert on episodes seeded 0..seeds-1 (the seeds `ltc
    eval` and `ltc control` use), clean and under each CLOSED_LOOP perturbation level."""
    from ..train.pendulum import Expert

    expert = Expert()
    policies = [("expert", lambda o, dt: expert(o, dt), None)]
    policies += [(m.name, p, p.reset) for m in models for p in [_controller_policy(m.ctrl)]]
    points = [("clean", 1.0)] + [(n, lv) for n, levels in CLOSED_LOOP.items() for lv in levels]
    out = {"seeds": list(range(seeds)), "levels": {n: list(v) for n, v in CLOSED_LOOP.items()}, "returns": {}}
    for name, policy, reset in policies:
        rows = out["returns"][name] = {}
        for pert, level in points:
            if progress:
                progress(f"closed loop: {name} {pert} {level:g}")
            values = []
            for seed in range(seeds):
                if reset:
                    reset()
                values.append(episode_return(policy, seed, pert, level, obs_std))
            rows.setdefault(pert, []).append({"level": level, "mean": float(np.mean(values)),
                                              "std": float(np.std(values)), "values": values})
    return out


# --- the demo's short comparison (issue 16) --------------------------------------------------

# two levels of the cheap perturbations, one window of the sensor faults (they try every channel)
DEMO_LEVELS = {"noise": (0.3, 1.0), "drop": (0.3, 0.5), "resample": (0.5, 2.0), "jitter": (0.3, 0.6),
               "stuck": (0.25,), "zeroed": (0.25,)}


def demo_sweep(model_files: dict, *, task: str = "cheetah", backend: str = "c", quick: bool = False, seed: int = 0,
               progress=None) -> dict:
    """`ltc demo`'s robustness section: {name: model file} on `backend` (fp32) under DEMO_LEVELS.
    C: 128 test sequences, 2 seeds (about 4 s of CPU); numpy: 64 and 1 (128 and 2 measured 115 s
    of CPU there); quick: 32 and 1. The sweep's result plus `cpu_s` (this process) and
    `children_cpu_s` (the compilers the C backend ran)."""
    import os
    import time

    from ..runtime import load
    from ..train.tasks import load_task

    cpu0, kids0 = time.process_time(), os.times()
    sequences, seeds = (32, 1) if quick else (128, 2) if backend == "c" else (64, 1)
    td = load_task(task)
    test = sample_rows(td.test, sequences, seed)
    models = [Deployed(name=name, path=str(f), backend=backend,
                       ctrl=load(f, backend, batch=1, state_check="off", nonfinite="raise"))
              for name, f in model_files.items()]
    result = sweep(models, test, Context(input_std=input_std(td.train)), td.kind, seeds=seeds,
                   perturbations=list(DEMO_LEVELS), levels=DEMO_LEVELS, progress=progress)
    kids = os.times()
    result.update({"task": td.name, "metric": td.metric, "higher_is_better": td.higher_is_better,
                   "test_sequences": len(test), "backend": backend,
                   "cpu_s": round(time.process_time() - cpu0, 2),
                   "children_cpu_s": round(kids.children_user + kids.children_system
                                           - kids0.children_user - kids0.children_system, 2)})
    return result
