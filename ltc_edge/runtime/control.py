"""Closed loop: a Controller driving a gymnasium environment (numpy + gymnasium only)."""

from __future__ import annotations

import math

import numpy as np

from .errors import InputShapeError

MAX_EPISODES = 100_000
MAX_SEED = 2**32 - 1 - MAX_EPISODES  # gymnasium seeds are 32-bit; episode k uses seed + k


def env_dt(env, default: float = 1.0) -> float:
    """The environment's time step: env.unwrapped.dt (classic control, MuJoCo), else 1/fps."""
    u = getattr(env, "unwrapped", env)
    for attr in ("dt", "tau"):
        v = getattr(u, attr, None)
        if isinstance(v, (int, float)) and v > 0:
            return float(v)
    fps = (getattr(u, "metadata", None) or {}).get("render_fps")
    return 1.0 / fps if fps else default


def make_action(y: np.ndarray, space):
    """Model output -> a valid action: Box: reshaped and clipped; Discrete: argmax."""
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return int(np.argmax(y)) + int(space.start)
    if isinstance(space, spaces.Box):
        if y.size != int(np.prod(space.shape)):
            raise InputShapeError(f"the model has {y.size} outputs but the action space is {space.shape}")
        return np.clip(np.asarray(y, dtype=space.dtype).reshape(space.shape), space.low, space.high)
    raise InputShapeError(f"unsupported action space {type(space).__name__} (Box or Discrete)")


def check_episode_options(episodes: int, seed: int, max_steps: int | None, dt: float | None) -> None:
    """One-line errors for options no loop can use (before the env or model is touched)."""
    if not 1 <= int(episodes) <= MAX_EPISODES:
        raise ValueError(f"--episodes must be from 1 to {MAX_EPISODES}, got {episodes}")
    if not 0 <= int(seed) <= MAX_SEED:
        raise ValueError(f"--seed must be from 0 to {MAX_SEED}, got {seed}")
    if max_steps is not None and int(max_steps) < 1:
        raise ValueError(f"--max-steps must be at least 1, got {max_steps}")
    if dt is not None:
        with np.errstate(over="ignore"):
            ok = math.isfinite(dt) and dt > 0 and bool(np.isfinite(np.float32(dt))) and np.float32(dt) > 0
        if not ok:
            raise ValueError(f"--dt must be a finite number > 0 (within float32 range), got {dt}")


def _make_env(env_id: str, env_kwargs: dict | None, input_size: int):
    import gymnasium as gym

    try:
        env = gym.make(env_id, **(env_kwargs or {}))
    except gym.error.Error as e:
        raise ValueError(f"cannot make gymnasium env {env_id!r}: {e}") from None
    obs_shape = env.observation_space.shape
    n_obs = int(np.prod(obs_shape)) if obs_shape else None
    if n_obs != input_size:
        env.close()
        raise InputShapeError(f"{env_id} observations have {n_obs} values but the model takes {input_size} inputs")
    return env


def _episode(ctrl, env, seed: int, max_steps: int | None, step_dt: float) -> tuple[float, int]:
    obs, _ = env.reset(seed=seed)
    ctrl.reset(batch=1)
    total, t = 0.0, 0
    while True:
        y = ctrl.step(np.asarray(obs, dtype=np.float32).reshape(-1), step_dt)
        obs, r, term, trunc, _ = env.step(make_action(y, env.action_space))
        total += float(r)
        t += 1
        if term or trunc or (max_steps is not None and t >= max_steps):
            return total, t


def run_episodes(ctrl, env_id: str = "Pendulum-v1", episodes: int = 3, seed: int = 0,
                 max_steps: int | None = None, dt: float | None = None, env_kwargs: dict | None = None) -> dict:
    """Episode returns of a controller in a gymnasium env (episode k uses seed + k; the
    controller is reset at the start of each). Returns {"returns", "steps", "dt", ...}."""
    check_episode_options(episodes, seed, max_steps, dt)
    env = _make_env(env_id, env_kwargs, ctrl.input_size)
    try:
        step_dt = env_dt(env) if dt is None else float(dt)
        runs = [_episode(ctrl, env, int(seed) + ep, max_steps, step_dt) for ep in range(int(episodes))]
    finally:
        env.close()
    returns, lengths = [r for r, _ in runs], [n for _, n in runs]
    return {"env": env_id, "backend": ctrl.backend_name, "episodes": int(episodes), "seed": int(seed),
            "dt": step_dt, "returns": returns, "steps": lengths,
            "return_mean": float(np.mean(returns)), "return_std": float(np.std(returns))}
