"""Training-step speed of ltc-edge's LTC against ncps's LTC, side by side in one run.

Same configuration as the LTC paper's cheetah run: 17 inputs, fully connected wiring of
32 neurons, linear readout to 17, batch 16, windows of 32 steps, MSE, Adam lr 0.01, the
parameter clipping after each step (implicit_param_constraints=False in both). All three
models start from the same parameters (ours are converted from ncps's with from_ncps) and
see the same batches. ltc_edge_compiled compiles one step per graph; ..._chunk4 four steps
per graph (what `ltc train --compile` uses for models the native kernel does not cover);
ltc_edge_native runs whole windows in the native C kernel with its closed-form backward (what
`ltc train --compile` runs for a dense LTC, train/native.py). Their losses must agree to float
noise; the step times are measured in interleaved rounds (median per step).

    .venv/bin/python benchmarks/train_speed.py [--steps 30] [--rounds 7] [--max-threads 2]

Each side runs with 1 and with 2 torch threads (ncps's eager step is fastest with 1 on a 2-core CPU,
the compiled step with 2, which is what `ltc train` uses: torch's default); best_vs_best compares
each side's fastest variant.

Writes benchmarks/results/train_speed.json. Timing is never asserted in tests; this records the ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from ltc_edge.nn.model import Model, from_ncps  # noqa: E402
from ltc_edge.machine import machine_info  # noqa: E402
from ltc_edge.train.loop import make_step_fn, run_sequence  # noqa: E402
from ltc_edge.train.tasks import load_task  # noqa: E402


def build(seed=0):
    import ncps
    from ncps.torch import LTC
    from ncps.wirings import FullyConnected

    torch.manual_seed(seed)
    rnn = LTC(17, FullyConnected(32), batch_first=True, implicit_param_constraints=False)
    lin = torch.nn.Linear(32, 17)
    ref = torch.nn.ModuleDict({"rnn": rnn, "lin": lin})
    ours_cell = from_ncps(rnn)
    config = dict(ours_cell.config, readout=True, output_size=17)
    params = {k: v.detach().clone() for k, v in ours_cell.state_dict().items()}
    params["readout.weight"], params["readout.bias"] = lin.weight.detach().clone(), lin.bias.detach().clone()
    return ref, Model(config, params), Model(config, {k: v.clone() for k, v in params.items()}), ncps.__version__


def ncps_trainer(ref):
    opt = torch.optim.Adam(ref.parameters(), lr=0.01)  # ncps's examples: the default (for-loop) Adam

    def step(x, y):
        out, _ = ref["rnn"](x)
        loss = ((ref["lin"](out) - y) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        ref["rnn"].rnn_cell.apply_weight_constraints()
        return float(loss.detach())
    return step


def ours_trainer(model, compile, chunk=1, fused=False, save_gates=False, native=False):
    opt = torch.optim.Adam(model.parameters(), lr=0.01, fused=fused or None)
    step_fn = make_step_fn(model.config, compile=compile, chunk=chunk, save_gates=save_gates, use_native=native)
    assert bool(getattr(step_fn, "native", False)) == native, getattr(step_fn, "notice", "")

    def step(x, y):
        loss = ((run_sequence(model, step_fn, x, None) - y) ** 2).mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        model.apply_constraints()
        return float(loss.detach())
    return step


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=40, help="training steps per timed round and model")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--loss-steps", type=int, default=60, help="steps for the loss comparison")
    ap.add_argument("--max-threads", type=int, default=2,
                    help="measure the variants with up to this many torch intra-op threads (each side is "
                         "also measured with 1)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks/results/train_speed.json"))
    args = ap.parse_args()

    task = load_task("cheetah")
    rng = np.random.default_rng(0)
    perm = rng.permutation(len(task.train))
    n_b = len(perm) // 16
    batches = [(torch.from_numpy(task.train.x[perm[i * 16:(i + 1) * 16]]),
                torch.from_numpy(task.train.y[perm[i * 16:(i + 1) * 16]])) for i in range(n_b)]

    # name -> (trainer, torch intra-op threads it runs with). Inductor bakes the thread count into
    # its kernels when it compiles (the first call), so each compiled variant is its own function.
    from ltc_edge.train import native

    t = time.perf_counter()
    native.library()  # the native kernel's build (once per process), before any trainer is made
    native_build_s = round(time.perf_counter() - t, 2)
    ref1, eager, comp, ncps_version = build(0)
    ref2, _, comp4, _ = build(0)
    _, _, comp4_2, _ = build(0)
    _, _, comp4_2f, _ = build(0)
    _, _, comp4_2fs, _ = build(0)
    _, _, nat1, _ = build(0)
    _, _, nat2, _ = build(0)
    trainers = {"ncps": (ncps_trainer(ref1), 1), "ncps_2threads": (ncps_trainer(ref2), 2),
                "ltc_edge_eager": (ours_trainer(eager, False), 1),
                "ltc_edge_compiled": (ours_trainer(comp, True, chunk=1), 1),
                "ltc_edge_compiled_chunk4": (ours_trainer(comp4, True, chunk=4), 1),
                "ltc_edge_compiled_chunk4_2threads": (ours_trainer(comp4_2, True, chunk=4), 2),
                "ltc_edge_compiled_chunk4_2threads_fused_adam": (ours_trainer(comp4_2f, True, 4, fused=True), 2),
                # what `ltc train --compile` runs: + the forward's gates kept for the backward
                "ltc_edge_compiled_chunk4_2threads_fused_adam_saved_gates":
                    (ours_trainer(comp4_2fs, True, 4, fused=True, save_gates=True), 2),
                # what `ltc train --compile` runs for a dense LTC: the native window kernel (train/native.py)
                "ltc_edge_native": (ours_trainer(nat1, True, fused=True, native=True), 1),
                "ltc_edge_native_2threads": (ours_trainer(nat2, True, fused=True, native=True), 2)}
    trainers = {k: v for k, v in trainers.items() if v[1] <= args.max_threads}

    def call(name, x, y):
        trainer, threads = trainers[name]
        torch.set_num_threads(threads)
        return trainer(x, y)

    # 1) same start, same batches: the loss curves must agree (and compile happens here)
    t0 = time.time()
    losses, first_step_s = {k: [] for k in trainers}, {}
    for i in range(args.loss_steps):
        x, y = batches[i % n_b]
        for k in trainers:
            t = time.perf_counter()
            losses[k].append(call(k, x, y))
            if i == 0:  # the first step pays for compiling (torch.compile's graph, or the native kernel's build)
                first_step_s[k] = round(time.perf_counter() - t, 2)
    loss_s = time.time() - t0
    ref_l = np.array(losses["ncps"])
    loss_cmp = {k: {"max_rel_diff_vs_ncps": float(np.max(np.abs(np.array(v) - ref_l) / np.abs(ref_l))),
                    "first": v[0], "last": v[-1]} for k, v in losses.items()}

    # 2) timing, interleaved rounds
    times = {k: [] for k in trainers}
    j = args.loss_steps
    for _ in range(args.rounds):
        for k in trainers:
            t = time.perf_counter()
            for s in range(args.steps):
                x, y = batches[(j + s) % n_b]
                call(k, x, y)
            times[k].append((time.perf_counter() - t) / args.steps)
        j += args.steps
    med = {k: statistics.median(v) for k, v in times.items()}
    best_ncps = min(v for k, v in med.items() if k.startswith("ncps"))
    best_ours = min(v for k, v in med.items() if not k.startswith("ncps"))
    res = {
        "benchmark": "training step (forward + BPTT + Adam + constraints), cheetah configuration",
        "config": {"inputs": 17, "wiring": "full", "units": 32, "readout": 17, "batch": 16, "seq_len": 32,
                   "ode_unfolds": 6, "solver": "semi-implicit", "lr": 0.01, "implicit_param_constraints": False},
        "step_ms_median": {k: round(v * 1e3, 3) for k, v in med.items()},
        "step_ms_rounds": {k: [round(t * 1e3, 3) for t in v] for k, v in times.items()},
        "threads": {k: v[1] for k, v in trainers.items()},
        "speedup_vs_ncps": {k: round(med["ncps"] / v, 3) for k, v in med.items() if k != "ncps"},
        "best_vs_best": {"ncps_ms": round(best_ncps * 1e3, 3), "ltc_edge_ms": round(best_ours * 1e3, 3),
                         "speedup": round(best_ncps / best_ours, 3),
                         "what": "each side's fastest variant in this run (threads, compile, optimizer)"},
        "first_step_s": first_step_s, "native_kernel_build_s": native_build_s,
        "first_step_note": "the first training step of each variant, compile or build included (the torch.compile "
                           "variants hit torch's FX graph cache when an earlier run compiled the same graph; the "
                           "native kernel is built once per process)",
        "losses": loss_cmp, "loss_steps": args.loss_steps, "loss_phase_s_incl_compile": round(loss_s, 1),
        "steps_per_round": args.steps, "rounds": args.rounds,
        "versions": {"ncps": ncps_version, "torch": torch.__version__, "numpy": np.__version__},
        "machine": machine_info(), "load_average_at_end": os.getloadavg(),
        "command": "python benchmarks/train_speed.py " + " ".join(sys.argv[1:]),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(args.out + ".tmp")
    tmp.write_text(json.dumps(res, indent=1))
    os.replace(tmp, args.out)
    print(json.dumps({k: res[k] for k in ("step_ms_median", "speedup_vs_ncps", "best_vs_best")}, indent=1))
    for k, v in loss_cmp.items():
        print(f"{k}: loss {v['first']:.4f} -> {v['last']:.4f}, max rel diff vs ncps {v['max_rel_diff_vs_ncps']:.2e}")


if __name__ == "__main__":
    main()
