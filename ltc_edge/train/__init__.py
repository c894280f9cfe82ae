"""Training: tasks (offline data), the loop (Adam + BPTT, best-on-validation, exact resume)
and the `ltc train` / `ltc eval` commands.

    from ltc_edge.train.tasks import load_task          # numpy only
    task = load_task("cheetah")                          # .train/.valid/.test: .x, .y, .dt
    x, dt = task.calibration_inputs(64)                  # held-out inputs for calibration
    from ltc_edge.train.pendulum import evaluate_pendulum  # closed-loop return of a policy

Importing this package imports nothing heavy; `ltc_edge.train.loop` needs torch.
"""

from .tasks import TASKS, Split, TaskData, calibration_inputs, load_task  # noqa: F401
