"""Pendulum-v1 behaviour cloning: an expert (energy-based swing-up + LQR near upright),
offline demonstrations with fixed seeds, and closed-loop evaluation by episode return.

Only numpy + gymnasium (+ scipy for the Riccati equation, a scikit-learn dependency).
`evaluate_pendulum(policy_step_fn, episodes, seed)` is the shared closed-loop evaluator:
policy_step_fn(obs [1, 3] float32, dt) -> action [1, 1]; the policy keeps its own recurrent
state and may have a .reset() method, called at the start of every episode.
"""

from __future__ import annotations

import math

import numpy as np

from .taskdata import Split, TaskData

DT = 0.05            # Pendulum-v1's time step
MAX_TORQUE = 2.0
G, M, L = 10.0, 1.0, 1.0
_A = 3 * G / (2 * L)  # thdot' = _A sin(th) + _B u
_B = 3.0 / (M * L * L)


def _lqr_gain():
    """Discrete LQR for the pendulum linearised at upright, with gymnasium's semi-implicit
    Euler step and its reward weights (Q = diag(1, 0.1), R = 0.001)."""
    from scipy.linalg import solve_discrete_are

    A = np.array([[1 + _A * DT * DT, DT], [_A * DT, 1.0]])
    B = np.array([[_B * DT * DT], [_B * DT]])
    Q, R = np.diag([1.0, 0.1]), np.array([[0.001]])
    P = solve_discrete_are(A, B, Q, R)
    return np.linalg.solve(R + B.T @ P @ B, B.T @ P @ A)[0]  # u = -K x


class Expert:
    """Energy pumping far from upright, LQR near it. Memoryless: act(obs[3]) -> torque."""

    def __init__(self, switch_angle: float = 0.6, pump_gain: float = 0.5):
        self.K = _lqr_gain()
        self.switch_angle = switch_angle
        self.pump_gain = pump_gain

    def act(self, obs) -> float:
        c, s, thdot = (float(v) for v in np.asarray(obs).reshape(-1)[:3])
        th = math.atan2(s, c)                      # 0 = upright
        if abs(th) < self.switch_angle:
            u = -float(self.K @ np.array([th, thdot]))
        else:
            energy = 0.5 * thdot * thdot + _A * (c - 1.0)  # 0 at upright rest, -2*_A hanging
            # dE/dt = _B u thdot: pump (E < 0) or brake (E > 0) along the velocity
            u = -self.pump_gain * energy * thdot if abs(thdot) > 1e-3 else MAX_TORQUE
        return float(np.clip(u, -MAX_TORQUE, MAX_TORQUE))

    def __call__(self, obs, dt=DT):
        return np.array([[self.act(obs)]], dtype=np.float32)


def _make_env():
    import gymnasium as gym

    return gym.make("Pendulum-v1")


def evaluate_pendulum(policy_step_fn, episodes: int = 10, seed: int = 0, reset_fn=None, max_steps: int = 200) -> dict:
    """Closed-loop return of a policy on Pendulum-v1 over `episodes` episodes (seeds
    seed, seed+1, ...): {"return_mean", "return_std", "returns"}. Higher is better (0 max)."""
    env = _make_env()
    reset_fn = reset_fn or getattr(policy_step_fn, "reset", None)
    returns = []
    try:
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            if reset_fn is not None:
                reset_fn()
            total = 0.0
            for _ in range(max_steps):
                a = np.asarray(policy_step_fn(np.asarray(obs, dtype=np.float32).reshape(1, 3), DT),
                               dtype=np.float32).reshape(1)
                obs, r, term, trunc, _ = env.step(a)
                total += float(r)
                if term or trunc:
                    break
            returns.append(total)
    finally:
        env.close()
    return {"return_mean": float(np.mean(returns)), "return_std": float(np.std(returns)),
            "returns": [float(r) for r in returns]}


def demonstrations(episodes: int = 150, seed: int = 10_000, noise: float = 0.5, max_steps: int = 200):
    """Expert episodes: obs [E, T, 3], expert action [E, T, 1] float32, recording the
    expert's clean action in every visited state. A third of the episodes follow the expert;
    a third execute its action plus Gaussian noise (std `noise`); a third start from a
    random angle and speed (|thdot| up to 8, the spinning states a clone falls into) with
    noise, so the clone also learns to recover from its own errors."""
    env = _make_env()
    expert = Expert()
    rng = np.random.default_rng(seed)
    X, Y = [], []
    try:
        for ep in range(episodes):
            obs, _ = env.reset(seed=seed + ep)
            if ep % 3 == 2:
                th, thdot = rng.uniform(-np.pi, np.pi), rng.uniform(-8, 8)
                env.unwrapped.state = np.array([th, thdot])
                obs = np.array([np.cos(th), np.sin(th), thdot], dtype=np.float32)
            xs, ys = [], []
            for _ in range(max_steps):
                a = expert.act(obs)
                xs.append(np.asarray(obs, dtype=np.float32))
                ys.append([a])
                executed = a + (rng.normal(0, noise) if ep % 3 else 0.0)
                obs, _, term, trunc, _ = env.step(np.array([np.clip(executed, -MAX_TORQUE, MAX_TORQUE)],
                                                           dtype=np.float32))
                if term or trunc:
                    break
            X.append(np.stack(xs))
            Y.append(np.asarray(ys, dtype=np.float32))
    finally:
        env.close()
    return np.stack(X), np.stack(Y)


def load_pendulum(episodes: int = 150, seq_len: int = 50, seed: int = 10_000) -> TaskData:
    """Behaviour cloning of the expert: observations (cos, sin, thdot) in, torque out, per
    step, with dt = 0.05 s (Pendulum-v1's step) passed to the model. Episodes are split
    70/15/15 (train/valid/test); sequences are windows of seq_len with stride seq_len // 2
    (200 = whole episodes; the observation is the full state, so short windows suffice).
    The task's closed-loop metric is `evaluate_pendulum` (ltc eval prints it)."""
    X, Y = demonstrations(episodes, seed)
    n = len(X)
    n_tr, n_va = int(round(0.7 * n)), int(round(0.15 * n))
    parts = {"train": slice(0, n_tr), "valid": slice(n_tr, n_tr + n_va), "test": slice(n_tr + n_va, n)}
    T = X.shape[1]
    seq_len = min(int(seq_len), T)
    stride = seq_len if seq_len == T else max(1, seq_len // 2)

    def split(sl):
        xs, ys = [], []
        for e in range(*sl.indices(n)):
            for s in range(0, T - seq_len + 1, stride):
                xs.append(X[e, s:s + seq_len])
                ys.append(Y[e, s:s + seq_len])
        x, y = np.stack(xs), np.stack(ys)
        return Split(x, y, np.full(x.shape[:2], DT, dtype=np.float32))

    tr = split(parts["train"])
    xf, yf = tr.x.reshape(-1, 3), tr.y.reshape(-1, 1)
    norm = {"input_mean": xf.mean(0).tolist(), "input_std": np.maximum(xf.std(0), 1e-6).tolist(),
            "output_mean": yf.mean(0).tolist(), "output_std": np.maximum(yf.std(0), 1e-6).tolist()}
    return TaskData("pendulum", "regression", "mse", tr, split(parts["valid"]), split(parts["test"]),
                    input_size=3, output_size=1, normalization=norm,
                    defaults={"epochs": 200, "batch_size": 16, "grad_clip": 1.0,
                              "lr": {"ltc": 0.01, "default": 0.003}},
                    info={"env": "Pendulum-v1", "dt": DT, "episodes": episodes, "seed": seed,
                          "expert": "energy swing-up + discrete LQR"})


class ModelPolicy:
    """A torch Model as a closed-loop policy (eager, recurrent state kept inside)."""

    def __init__(self, model):
        import torch

        self.model, self._torch = model, torch
        with torch.no_grad():
            self.P = model.prepared()
        self.reset()

    def reset(self):
        self.h = self.model.initial_state(1)

    def __call__(self, obs, dt):
        torch = self._torch
        from ..nn import functional as F

        with torch.no_grad():
            x = torch.as_tensor(np.asarray(obs, dtype=np.float32).reshape(1, -1))
            y, self.h = F.model_step(F.ops_for(x), self.P, x, self.h, float(dt), self.model.config)
        return y.numpy()


def evaluate_model_closed_loop(model, episodes: int = 10, seed: int = 0) -> dict:
    """Closed-loop return of a model and of the expert on the same episodes."""
    m = evaluate_pendulum(ModelPolicy(model), episodes, seed)
    e = evaluate_pendulum(Expert(), episodes, seed)
    return {"return_mean": m["return_mean"], "return_std": m["return_std"],
            "expert_return_mean": e["return_mean"],
            "return_ratio": m["return_mean"] / e["return_mean"] if e["return_mean"] else float("nan")}
