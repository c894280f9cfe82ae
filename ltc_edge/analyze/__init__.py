"""`ltc analyze`: checks of the paper's claims on your models: trajectory-length expressivity
(expressivity.py), the LTC bounds on states and time constants (bounds.py), the solver study
(solvers.py) and robustness under perturbations (robustness.py); analyses.py runs each by name.

Stands on nn, train, export and runtime (robustness runs exported models); never imports bench,
demo or cli (bench --robustness and the demo call into it)."""
