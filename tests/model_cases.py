"""Shared by the runtime and C code generation tests (which keep their own CASES): build one
case, {name: (kind, build_model keywords)}, as a 5-input model file."""

from ltc_edge.nn import build_model, save


def make_case(cases: dict, tmp_path, name: str, seed: int = 0):
    """(model, path) of cases[name], constraints applied, saved as tmp_path/<name>.safetensors."""
    kind, kw = cases[name]
    model = build_model(kind, 5, seed=seed, **kw)
    model.apply_constraints()
    return model, save(model, tmp_path / f"{name}.safetensors")
