"""Behaviour cloning with on-policy correction (DAgger, Ross et al. 2011) for Pendulum-v1.

Plain behaviour cloning trains on the expert's states only; the clone's small errors take it
to states the expert never visits and it flies much worse than the expert. DAgger rolls the
current student out (mixed with the expert with probability beta, decaying per iteration),
labels every visited state with the expert's action, adds those episodes to the data and
trains on, keeping the iteration whose closed-loop return on selection seeds (never the
evaluation seeds) is best.

Training windows are short and start from the state the current student carries at that
point of the episode (re-computed every round by running it over all stored episodes), so a
recurrent clone is trained for the way it runs, one long episode carrying its state, at the
cost of a few steps of backpropagation per window.

The expert is mostly bang-bang (it pumps and brakes at the torque limit), so the loss does
not penalise a prediction beyond the limit the expert saturates at (the env clips both to
the same torque), and the model's output scale (3, not the demonstrations' std of about 0.7)
lets its motor neuron reach the limit without first growing its output weight. Inputs are
scaled by fixed ranges (cos, sin: 0.7; speed: 3), not by the statistics of the expert's
states, which the student leaves (hanging, spinning).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch

from ..nn import functional as F
from .loop import adam
from .pendulum import DT, MAX_TORQUE, Expert, demonstrations, evaluate_pendulum

SELECT_SEED = 50_000   # selection episodes: disjoint from eval seeds (0, 1, ...) and demonstrations
ROLLOUT_SEED = 20_000  # student rollouts of iteration i use ROLLOUT_SEED + 1000 i + k
REFRESH_STEPS = 50     # gradient steps between re-computations of the windows' start states


@dataclass
class DaggerOptions:
    iterations: int = 16         # DAgger rounds (at most) after the behaviour-cloning start
    demo_episodes: int = 24      # expert demonstrations the start trains on
    episodes: int = 8            # student rollouts per round
    bc_steps: int = 400          # gradient steps on the demonstrations
    steps: int = 200             # gradient steps per round (on all data so far)
    beta: float = 0.5            # expert share of round 1's rollouts, times `beta` each round
    batch_size: int = 64
    seq_len: int = 8             # steps per window (each starts from the student's own state)
    lr: float = 0.02
    lr_decay: float = 1.0        # learning rate times this every round
    grad_clip: float = 1.0
    select_episodes: int = 20    # selection episodes per iteration (batched: cheap)
    input_std: tuple = (0.7, 0.7, 3.0)  # input scales (cos, sin, thdot; mean 0)
    output_std: float = 3.0      # output scale (mean 0): the motor neuron reaches +-MAX_TORQUE inside its range
    stop_within: float | None = 0.01  # stop once the selection return is this close to the expert's; None: never
    seed: int = 0


class _Data:
    """Aggregated episodes: observations [E, T, 3], expert actions [E, T, 1] and the state the
    current student carries before each step [E, T, S] (re-computed by `refresh`)."""

    def __init__(self):
        self.obs, self.act, self.states = [], [], None

    def add(self, obs, act):
        self.obs.append(np.asarray(obs, np.float32))
        self.act.append(np.asarray(act, np.float32))

    @torch.no_grad()
    def refresh(self, model):
        """The current student's state along every stored episode (its own observations in)."""
        x = torch.from_numpy(np.stack(self.obs))
        P, xp = model.prepared(), F.ops_for(x)
        h = model.initial_state(x.shape[0])
        states = []
        for t in range(x.shape[1]):
            states.append(h)
            _, h = F.model_step(xp, P, x[:, t], h, DT, model.config)
        self.states = torch.stack(states, 1)

    def batch(self, rng, n: int, seq_len: int):
        """n random windows: (x [n, seq_len, 3], y [n, seq_len, 1], start state [n, S])."""
        E, T = len(self.obs), self.obs[0].shape[0]
        e, s = rng.integers(0, E, n), rng.integers(0, T - seq_len + 1, n)
        x = torch.from_numpy(np.stack([self.obs[i][j:j + seq_len] for i, j in zip(e, s)]))
        y = torch.from_numpy(np.stack([self.act[i][j:j + seq_len] for i, j in zip(e, s)]))
        return x, y, self.states[torch.from_numpy(e), torch.from_numpy(s)]

    def __len__(self):
        return len(self.obs)


def _fit(model, data: _Data, steps: int, opts: DaggerOptions, optim, rng) -> float:
    """`steps` Adam steps on random windows (each from its recorded start state); mean loss."""
    norm = model.config.get("normalization") or {}
    scale = float((norm.get("output_std") or [1.0])[0])
    xp = F.ops_for(torch.zeros(1))
    losses = []
    model.train()
    for _ in range(steps):
        x, y, h = data.batch(rng, opts.batch_size, opts.seq_len)
        P = model.prepared()
        ys = []
        for t in range(x.shape[1]):
            out, h = F.model_step(xp, P, x[:, t], h, DT, model.config)
            ys.append(out)
        loss = ((_error(torch.stack(ys, 1), y) / scale) ** 2).mean()
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), opts.grad_clip)
        optim.step()
        model.apply_constraints()
        losses.append(float(loss.detach()))
    return float(np.mean(losses)) if losses else float("nan")


def _error(pred, y):
    """pred - y, but 0 where the expert applies the full torque and the prediction goes at
    least as far: the env clips both to the same action (bang-bang swing-up)."""
    err, top = pred - y, MAX_TORQUE - 1e-4
    return torch.where(y >= top, err.clamp(max=0.0), torch.where(y <= -top, err.clamp(min=0.0), err))


@torch.no_grad()
def rollouts(model, episodes: int, seed: int, beta: float, rng, max_steps: int = 200):
    """Student episodes (each step the expert acts instead with probability beta), batched
    over episodes: ([(obs [T, 3], the expert's action in each visited state [T, 1])], returns)."""
    import gymnasium as gym

    envs = [gym.make("Pendulum-v1") for _ in range(episodes)]
    expert, P, xp = Expert(), model.prepared(), F.ops_for(torch.zeros(1))
    obs = np.stack([env.reset(seed=seed + k)[0] for k, env in enumerate(envs)]).astype(np.float32)
    h = model.initial_state(episodes)
    rec, returns = [([], []) for _ in envs], np.zeros(episodes)
    try:
        for _ in range(max_steps):
            y, h_next = F.model_step(xp, P, torch.from_numpy(obs), h, DT, model.config)
            nxt = []
            for k, env in enumerate(envs):
                a = expert.act(obs[k])
                rec[k][0].append(obs[k])
                rec[k][1].append([a])
                u = a if beta > 0 and rng.random() < beta else float(y[k, 0])
                o, r, *_ = env.step(np.array([np.clip(u, -MAX_TORQUE, MAX_TORQUE)], np.float32))
                nxt.append(o)
                returns[k] += float(r)
            obs, h = np.stack(nxt).astype(np.float32), h_next
    finally:
        for env in envs:
            env.close()
    return [(np.stack(o).astype(np.float32), np.asarray(a, np.float32)) for o, a in rec], returns


def dagger(model, opts: DaggerOptions | None = None, log=None, demos=None) -> dict:
    """Clone the pendulum expert into `model` (in place: the best iteration's weights).
    Stops early once a round's selection return is within opts.stop_within of the expert's on
    the same episodes. Returns {"history": [{iteration, loss, episodes, select_return, s}],
    "best_iteration", "select_return", "expert_select_return", "select_seeds", "train_s" (wall),
    "train_cpu_s"}."""
    opts = opts or DaggerOptions()
    log = log or (lambda m: None)
    torch.manual_seed(opts.seed)
    rng = np.random.default_rng([opts.seed, 7])
    t0, c0 = time.time(), time.process_time()
    data = _Data()
    X, Y = demos if demos is not None else demonstrations(opts.demo_episodes, seed=10_000 + 1000 * opts.seed)
    for x, y in zip(X, Y):
        data.add(x, y)
    optim = adam(model.parameters(), opts.lr)
    expert = evaluate_pendulum(Expert(), opts.select_episodes, SELECT_SEED)["return_mean"]
    history, best = [], None
    for it in range(opts.iterations + 1):
        if it:
            beta = opts.beta ** it
            for obs, act in rollouts(model, opts.episodes, ROLLOUT_SEED + 1000 * it, beta, rng)[0]:
                data.add(obs, act)
        for group in optim.param_groups:
            group["lr"] = opts.lr * opts.lr_decay ** it
        steps, losses = opts.steps if it else opts.bc_steps, []
        for a in range(0, steps, REFRESH_STEPS):  # start states follow the student as it learns
            data.refresh(model)
            losses.append(_fit(model, data, min(REFRESH_STEPS, steps - a), opts, optim, rng))
        loss = float(np.mean(losses))
        model.eval()
        ret = float(rollouts(model, opts.select_episodes, SELECT_SEED, 0.0, rng)[1].mean())
        history.append({"iteration": it, "loss": loss, "episodes": len(data), "select_return": ret,
                        "s": round(time.time() - t0, 1)})
        log(f"  dagger {it}/{opts.iterations}: loss {loss:.4f}, {len(data)} episodes, "
            f"selection return {ret:.1f} ({time.time() - t0:.0f} s)")
        if best is None or ret > best[1]:
            best = (it, ret, {k: v.detach().clone() for k, v in model.state_dict().items()})
        if opts.stop_within is not None and ret >= expert - opts.stop_within * abs(expert):
            log(f"  within {opts.stop_within:.0%} of the expert's {expert:.1f} on the selection episodes: stop")
            break
    model.load_state_dict(best[2])
    return {"history": history, "best_iteration": best[0], "select_return": best[1], "expert_select_return": expert,
            "select_seeds": [SELECT_SEED, SELECT_SEED + opts.select_episodes - 1],
            "train_s": round(time.time() - t0, 1), "train_cpu_s": round(time.process_time() - c0, 1)}


def _demo_task(X, Y, opts: DaggerOptions):
    """A TaskData around the demonstrations: what build_task_model needs (sizes, dt) with fixed
    normalisation: the states the student visits (spinning, hanging) are far from the expert's
    own, and the output scale lets the clone saturate like the expert."""
    from .taskdata import Split, TaskData

    norm = {"input_mean": [0.0] * 3, "input_std": [float(v) for v in opts.input_std],
            "output_mean": [0.0], "output_std": [float(opts.output_std)]}
    split = Split(X, Y, np.full(X.shape[:2], DT, dtype=np.float32))
    return TaskData("pendulum", "regression", "mse", split, split, split, input_size=3, output_size=1,
                    normalization=norm, info={"dt": DT})


def clone_pendulum(out, *, kind: str = "ltc", units: int = 16, wiring: str | None = None,
                   opts: DaggerOptions | None = None, log=None) -> dict:
    """Build a model, clone the expert into it with DAgger and save it at `out` as a normal model
    file whose stored task is pendulum (so `ltc eval` and `ltc control` take it as it is).
    Returns dagger()'s record plus "model_file"."""
    from ..nn import modelfile
    from .loop import build_task_model

    opts = opts or DaggerOptions()
    X, Y = demonstrations(opts.demo_episodes, seed=10_000 + 1000 * opts.seed)
    model = build_task_model(_demo_task(X, Y, opts), kind, units=units, wiring=wiring, seed=opts.seed)
    rec = dagger(model, opts, log=log, demos=(X, Y))
    model.config["task"] = {"name": "pendulum", "options": {}, "type": "regression", "metric": "mse",
                            "dt": {"median": DT, "min": DT, "max": DT}}
    modelfile.save(model, out)
    return {**rec, "model_file": str(out)}
