"""`ltc demo`: the whole pipeline end to end (pipeline.py: train, export, bench, robustness,
the pendulum clone) and its report.md (report.py). The top command family: it may import
every package below it (bench, analyze, train, export, runtime); nothing imports it but cli."""
