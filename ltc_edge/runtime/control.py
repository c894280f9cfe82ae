"""Closed loop: a Controller driving a gymnasium environment (numpy + gymnasium only)."""

from __future__ import annotations

import numpy as np

from .errors import InputShapeError


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


def run_episodes(ctrl, env_id: str = "Pendulum-v1", episodes: int = 3, seed: int = 0,
                 max_steps: int | None = None, dt: float | None = None, env_kwargs: dict | None = None) -> dict:
    """Episode returns of a controller in a gymnasium env (episode k uses seed + k; the
    controller is reset at the start of each). Returns {"returns", "steps", "dt", ...}."""
    import gymnasium as gym

    try:
        env = gym.make(env_id, **(env_kwargs or {}))
    except gym.error.Error as e:
        raise ValueError(f"cannot make gymnasium env {env_id!r}: {e}") from None
    try:
        obs_shape = env.observation_space.shape
        n_obs = int(np.prod(obs_shape)) if obs_shape else None
        if n_obs != ctrl.input_size:
            raise InputShapeError(f"{env_id} observations have {n_obs} values but the model takes "
                                  f"{ctrl.input_size} inputs")
        step_dt = env_dt(env) if dt is None else float(dt)
        returns, lengths = [], []
        for ep in range(int(episodes)):
            obs, _ = env.reset(seed=int(seed) + ep)
            ctrl.reset(batch=1)
            total, t = 0.0, 0
            while True:
                y = ctrl.step(np.asarray(obs, dtype=np.float32).reshape(-1), step_dt)
                obs, r, term, trunc, _ = env.step(make_action(y, env.action_space))
                total += float(r)
                t += 1
                if term or trunc or (max_steps is not None and t >= max_steps):
                    break
            returns.append(total)
            lengths.append(t)
    finally:
        env.close()
    return {"env": env_id, "backend": ctrl.backend_name, "episodes": int(episodes), "seed": int(seed),
            "dt": step_dt, "returns": returns, "steps": lengths,
            "return_mean": float(np.mean(returns)), "return_std": float(np.std(returns))}
