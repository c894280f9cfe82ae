"""Generated own-data CSVs, shared by the tests and benchmarks/onnx_int8.py (data no shipped task
has: a driven, damped oscillator logged at irregular times)."""

import numpy as np


def oscillator_csv(path, rows: int = 360, seed: int = 11):
    """x'' = u - 0.5 x' - 6 x, integrated semi-implicitly at irregular steps (20-55 ms), written
    as time_s,force,position; returns the columns as logged (time, force, position)."""
    rng = np.random.default_rng(seed)
    t = np.cumsum(rng.uniform(0.02, 0.055, rows))
    u = np.sin(0.9 * t) + 0.6 * np.sign(np.sin(0.31 * t))
    x, v = np.zeros(rows), np.zeros(rows)
    for i in range(1, rows):
        h = t[i] - t[i - 1]
        v[i] = v[i - 1] + h * (u[i - 1] - 0.5 * v[i - 1] - 6.0 * x[i - 1])
        x[i] = x[i - 1] + h * v[i]
    path.write_text("time_s,force,position\n" + "".join(f"{t[i]:.6f},{u[i]:.6f},{x[i]:.6f}\n" for i in range(rows)))
    return np.loadtxt(path, delimiter=",", skiprows=1).T


def small_digits(n_train: int = 256, n_eval: int = 64):
    """The digits task cut to n_train training and n_eval validation/test sequences: training tests
    that must stay fast."""
    from ltc_edge.train import tasks

    t = tasks.load_task("digits")
    t.train = tasks.Split(t.train.x[:n_train], t.train.y[:n_train])
    t.valid = tasks.Split(t.valid.x[:n_eval], t.valid.y[:n_eval])
    t.test = tasks.Split(t.test.x[:n_eval], t.test.y[:n_eval])
    return t
