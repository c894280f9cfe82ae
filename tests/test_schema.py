"""nn.schema: every crafted config the fuzz campaign found is one ModelFileError line naming
the key, and random mutations of valid configs either fail that way or still run finitely."""

import copy
import json
import struct

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file

from ltc_edge import runtime
from ltc_edge.nn import ModelFileError, build_model, describe, read
from ltc_edge.nn import functional as F
from ltc_edge.nn import model as nn_model
from ltc_edge.nn import schema
from ltc_edge.nn.wirings import WIRINGS

KINDS = ("ltc", "cfc", "ctrnn", "node", "lstm", "gru")


def _numpy(model):
    return copy.deepcopy(model.config), {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}


BASES = {kind: _numpy(build_model(kind, 3, 2, units=6, seed=1)) for kind in KINDS}
BASES["ltc_ncp"] = _numpy(build_model(
    "ltc", 5, wiring="auto-ncp", units=14, output_size=3, seed=2,
    normalization={"input_mean": [0.1] * 5, "input_std": [2.0] * 5, "output_mean": [0.0] * 3,
                   "output_std": [1.5] * 3}))
BASES["cfc_ncp"] = _numpy(build_model("cfc", 3, 2, units=8, wiring="auto-ncp", seed=3))
BASES["node_hidden"] = _numpy(build_model("node", 3, 2, units=5, ode_hidden=7, seed=4))


def _write(path, config, tensors, text=None):
    """A model file holding exactly this config (no validation on the way in)."""
    meta = text if text is not None else json.dumps(config)
    save_file({k: np.ascontiguousarray(v, dtype=np.float32) for k, v in tensors.items()}, str(path),
              metadata={"ltc_edge": meta})
    return path


def _rejects(tmp_path, config, tensors, pattern):
    path = _write(tmp_path / "bad.safetensors", config, tensors)
    with pytest.raises(ModelFileError, match=pattern) as info:
        read(path)
    assert "\n" not in str(info.value)
    with pytest.raises(ModelFileError, match=pattern):  # `ltc info` reads the same way
        describe(path)
    return str(info.value)


def _mutated(base, edit):
    config, tensors = copy.deepcopy(BASES[base][0]), dict(BASES[base][1])
    edit(config)
    return config, tensors


# (base model, edit of its config, the message that must come back)
CRAFTED = [
    ("ltc", lambda c: c["cell"]["wiring"].update(kind="full */ int x; /*"), r"cell\.wiring\.kind must be one of"),
    ("cfc", lambda c: c["cell"].update(mode="default */\nvoid f(){}"), r"cell\.mode must be one of default"),
    ("ltc", lambda c: c["cell"].update(ode_unfolds=10 ** 9), r"cell\.ode_unfolds must be an integer in \[1, 256\]"),
    ("ltc", lambda c: c["cell"].update(ode_unfolds=100000),
     r"cell\.ode_unfolds must be an integer in \[1, 256\], got 100000"),
    ("ctrnn", lambda c: c["cell"].update(ode_unfolds=10 ** 5), r"cell\.ode_unfolds must be an integer"),
    ("node", lambda c: c["cell"].update(ode_unfolds=-1), r"cell\.ode_unfolds must be an integer in \[1, 256\], got -1"),
    ("ltc", lambda c: c["cell"].update(ode_unfolds=0), r"cell\.ode_unfolds"),
    ("lstm", lambda c: c.update(input_size=10 ** 9), r"^.*: invalid model config: input_size must be an integer"),
    ("gru", lambda c: c["cell"].update(units=100000), r"cell\.units must be an integer in \[1, 2048\], got 100000"),
    ("lstm", lambda c: c["cell"].update(units=8.0), r"cell\.units must be an integer .* got 8\.0"),
    ("lstm", lambda c: c["cell"].update(units=True), r"cell\.units must be an integer .* got True"),
    ("lstm", lambda c: c.update(readout=1), r"readout must be true or false, got 1"),
    ("ltc", lambda c: c.pop("input_size"), r"input_size is missing"),
    ("ltc", lambda c: c.pop("output_size"), r"output_size is missing"),
    ("ltc", lambda c: c.pop("readout"), r"readout is missing"),
    ("ltc", lambda c: c["cell"].pop("wiring"), r"cell\.wiring is missing"),
    ("ltc", lambda c: c["cell"]["wiring"].pop("adjacency"), r"cell\.wiring\.adjacency is missing"),
    ("ltc", lambda c: c["cell"].pop("kind"), r"cell\.kind is missing"),
    ("ltc", lambda c: c["cell"]["wiring"].update(adjacency=[[1] * 6] * 5),
     r"cell\.wiring\.adjacency must be a list of 6"),
    ("ltc", lambda c: c["cell"]["wiring"]["adjacency"][2].append(1),
     r"cell\.wiring\.adjacency\[2\] must be a list of 6"),
    ("ltc", lambda c: c["cell"]["wiring"]["sensory_adjacency"][0].__setitem__(1, 2),
     r"cell\.wiring\.sensory_adjacency\[0\] entries must be -1, 0 or 1"),
    ("ltc", lambda c: c["cell"]["wiring"]["adjacency"][0].__setitem__(0, 1.0), r"cell\.wiring\.adjacency\[0\] entries"),
    ("ltc", lambda c: c.update(normalization=[1.0, 2.0]), r"normalization must be a JSON object"),
    ("ltc_ncp", lambda c: c["normalization"].update(input_std=[2.0]), r"normalization\.input_std must be a list of 5"),
    ("ltc_ncp", lambda c: c["normalization"]["input_std"].__setitem__(0, 0.0),
     r"normalization\.input_std\[0\] must be a finite number in \[1e-12, 1e\+12\], got 0\.0"),
    ("ltc_ncp", lambda c: c["normalization"]["output_std"].__setitem__(2, -1.5), r"normalization\.output_std\[2\]"),
    ("ltc_ncp", lambda c: c["normalization"]["input_mean"].__setitem__(1, float("nan")),
     r"normalization\.input_mean\[1\]"),
    ("ltc_ncp", lambda c: c["normalization"].pop("output_std"), r"normalization\.output_std is missing"),
    ("ltc_ncp", lambda c: c["normalization"].update(scale=[1.0]), r"'scale' is not a known key"),
    ("cfc", lambda c: c["cell"].update(mode="bogus"), r"cell\.mode must be one of default, no_gate, pure, got 'bogus'"),
    ("cfc", lambda c: c["cell"].update(activation="swish"), r"cell\.activation must be one of lecun_tanh"),
    ("cfc", lambda c: c["cell"].update(backbone_layers=100), r"cell\.backbone_layers must be an integer in \[0, 16\]"),
    ("ltc", lambda c: c["cell"].update(epsilon=float("nan")), r"cell\.epsilon must be a finite number"),
    ("ltc", lambda c: c["cell"].update(epsilon=10 ** 400),
     r"cell\.epsilon must be a finite number in \[0, 1\], got an integer of 1329 bits"),
    ("ltc_ncp", lambda c: c["normalization"]["output_mean"].__setitem__(0, -10 ** 400),
     r"normalization\.output_mean\[0\]"),
    ("ltc", lambda c: c["cell"]["wiring"].update(args={"seed": 10 ** 400}),
     r"cell\.wiring\.args\.seed must be a finite"),
    ("ltc", lambda c: c["cell"].update(solver="Euler"), r"cell\.solver must be one of semi_implicit, euler, rk4"),
    ("ctrnn", lambda c: c["cell"].update(solver="semi_implicit"), r"cell\.solver must be one of euler, rk4"),
    ("ltc", lambda c: c["cell"].update(input_mapping="bogus"), r"cell\.input_mapping must be one of affine"),
    ("ltc", lambda c: c["cell"].update(motor_size=3), r"cell\.motor_size must equal cell\.wiring\.output_dim"),
    ("ltc", lambda c: c["cell"].update(surprise=1), r"cell\.'surprise' is not a known key"),
    ("gru", lambda c: c["cell"].update(ode_unfolds=6), r"cell\.'ode_unfolds' is not a known key"),
    ("ltc", lambda c: c["cell"].update(kind="mystery"), r"cell\.kind must be one of ltc, cfc, ctrnn, node, lstm, gru"),
    ("ltc", lambda c: c["cell"].update(input_size=4), r"cell\.input_size must equal input_size \(3\)"),
    ("ltc", lambda c: c["cell"]["wiring"].update(units=7), r"cell\.wiring\.units must equal cell\.units"),
    ("ltc_ncp", lambda c: c["cell"]["wiring"]["neuron_types"].__setitem__(0, "*/"),
     r"neuron_types\[0\] must be one of"),
    ("cfc_ncp", lambda c: c["cell"]["wiring"]["layers"][0].append(0), r"cell\.wiring\.layers\[\d\]\[\d+\] repeats"),
    ("cfc_ncp", lambda c: c["cell"]["wiring"].pop("layers"), r"cell\.wiring\.layers is missing"),
    ("cfc_ncp", lambda c: c["cell"]["wiring"]["layers"].pop(), r"cell\.wiring\.layers must hold each of the 8"),
    ("ltc_ncp", lambda c: c.update(output_size=4),
     r"output_size must equal the cell's 3 outputs when readout is false"),
    ("ltc", lambda c: c.update(format_version=True), r"format version True is not supported"),
    ("ltc", lambda c: c.update(task={"name": "csv */", "options": {}}), r"task\.name must be a plain name"),
    ("ltc", lambda c: c.update(task={"name": "csv", "options": {"data": {"deep": 1}}}), r"task\.options\.data"),
    ("ltc", lambda c: c["cell"]["wiring"].update(args={"seed": "1; rm -rf"}), r"cell\.wiring\.args\.seed"),
]


@pytest.mark.parametrize("base,edit,pattern", CRAFTED, ids=[f"{i}-{c[0]}" for i, c in enumerate(CRAFTED)])
def test_crafted_config_is_one_line_error_naming_the_key(tmp_path, base, edit, pattern):
    config, tensors = _mutated(base, edit)
    _rejects(tmp_path, config, tensors, pattern)
    with pytest.raises(ModelFileError, match=pattern.lstrip("^").replace(".*: invalid model config: ", "")):
        schema.validate_config(config)


def test_too_many_parameters(tmp_path):
    config, tensors = _mutated("lstm", lambda c: None)
    config.update(input_size=4096)
    config["cell"].update(input_size=4096, units=2048)
    config.update(output_size=2048)
    with pytest.raises(ModelFileError, match=r"cell implies \d{8} parameters, more than MAX_PARAMETERS = 33554432"):
        schema.validate_config(config)


@pytest.mark.parametrize("tensor", ["cell.output_b", "cell.w", "readout.bias"])
@pytest.mark.parametrize("value", [np.nan, np.inf, -np.inf])
def test_non_finite_tensor_is_rejected(tmp_path, tensor, value):
    base = "ltc" if tensor.startswith("cell") else "lstm"
    config, tensors = _mutated(base, lambda c: None)
    if tensor == "readout.bias":
        config, tensors = _numpy(build_model("lstm", 3, 2, units=4, seed=0))
    tensors[tensor] = tensors[tensor].copy()
    tensors[tensor].flat[0] = value
    _rejects(tmp_path, config, tensors, rf"tensor {tensor} holds NaN or infinite values")


def test_float64_tensor_beyond_float32_is_rejected(tmp_path):
    config, tensors = BASES["gru"]
    data = {k: v.astype(np.float64) for k, v in tensors.items()}
    data["cell.bias_ih"][0] = 1e300  # finite in float64, inf in float32
    save_file(data, str(tmp_path / "m.safetensors"), metadata={"ltc_edge": json.dumps(config)})
    with pytest.raises(ModelFileError, match="cell.bias_ih holds NaN or infinite"):
        read(tmp_path / "m.safetensors")


def _raw_file(path, header_text: bytes, body=b""):
    path.write_bytes(struct.pack("<Q", len(header_text)) + header_text + body)
    return path


@pytest.mark.parametrize("header,pattern", [
    (b'{"__metadata__": [1, 2]}', "__metadata__ is not a JSON object"),
    (b'{"__metadata__": "ltc_edge"}', "__metadata__ is not a JSON object"),
    (b'{"__metadata__": {"ltc_edge": 5}}', "config in the metadata is not a JSON string"),
    (b'{"__metadata__": {"ltc_edge": {"format": "ltc-edge-model"}}}', "not a JSON string"),
    (b"[1, 2, 3]", r"header is not a JSON object"),
    (b"[" * 100_000 + b"]" * 100_000, r"header is not JSON"),
    (b'{"a": ' + b"9" * 5000 + b"}", r"header is not JSON"),
    (b"\xff\xfe{}", r"header is not JSON"),
])
def test_malformed_header(tmp_path, header, pattern):
    with pytest.raises(ModelFileError, match=pattern):
        read(_raw_file(tmp_path / "h.safetensors", header))


@pytest.mark.parametrize("text", ["[" * 100_000 + "]" * 100_000, '{"a": ' + "9" * 5000 + "}", "[]", '"ltc"', "null"])
def test_malformed_config_text(tmp_path, text):
    config, tensors = BASES["gru"]
    with pytest.raises(ModelFileError) as info:
        read(_write(tmp_path / "c.safetensors", config, tensors, text=text))
    assert "\n" not in str(info.value)


def test_schema_is_derived_from_the_registries():
    assert set(schema.CELL_OPTIONS) == set(F.CELLS)
    assert set(WIRINGS) <= set(schema.WIRING_KINDS)
    for kind, (checks, _) in schema.CELL_OPTIONS.items():
        # the options make_config accepts, plus the ones it derives itself
        assert set(checks) - {"wiring", "motor_size"} == nn_model._CELL_OPTIONS.get(kind, set()), kind
    for mode in F.CFC_MODES:
        config, _ = _mutated("cfc", lambda c: c["cell"].update(mode=mode))
        schema.validate_config(config)
    for solver in F.SOLVERS:
        config, _ = _mutated("ltc", lambda c: c["cell"].update(solver=solver))
        schema.validate_config(config)


def test_maxima_cover_the_shipped_models():
    # the largest trained ones: benchmarks/cheetah.py (48-unit NCP, 17 inputs/outputs), the CfC
    # default backbone, the most unfolds a test uses, Fashion-MNIST rows (28 inputs, 10 classes)
    for model in (build_model("ltc", 17, 17, units=48, wiring="auto-ncp",
                              wiring_args={"sparsity_level": 0.2, "output_size": 12}, ode_unfolds=64),
                  build_model("cfc", 28, 10, units=64), build_model("lstm", 28, 10, units=128),
                  build_model("ltc", 17, 17, units=32, wiring="full")):
        schema.validate_config(model.config)
    assert schema.MAX_UNFOLDS >= 64 and schema.MAX_UNITS >= 128


def test_every_valid_base_round_trips(tmp_path):
    for name, (config, tensors) in BASES.items():
        back, _ = read(_write(tmp_path / f"{name}.safetensors", config, tensors))
        assert back == config


# --------------------------------------------------------------------------------------
# properties: a mutated config is a ModelFileError, or it loads and steps finitely


def _paths(obj, prefix=(), depth=4):
    out = [prefix]
    if depth and isinstance(obj, dict):
        for k, v in obj.items():
            out += _paths(v, prefix + (k,), depth - 1)
    elif depth and isinstance(obj, list) and obj:
        for i in sorted({0, len(obj) - 1}):
            out += _paths(obj[i], prefix + (i,), depth - 1)
    return [p for p in out if p]


_STRINGS = ["*/", "a */ b", "x\ny", "", "bogus", *F.CFC_MODES, *F.solvers_for("ltc"), *F.LTC_MAPPINGS, *F.ACTIVATIONS,
            *schema.WIRING_KINDS, *schema.NEURON_TYPES, *F.CELLS]
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 300),
    st.sampled_from([10 ** 5, 10 ** 9, 2 ** 63, 2048, 2049, 4097, -(2 ** 64), 10 ** 400]),
    st.floats(allow_nan=True, allow_infinity=True), st.sampled_from(_STRINGS), st.text(max_size=6),
    st.lists(st.integers(-2, 2), max_size=4), st.lists(st.floats(-3, 3), max_size=6),
    st.dictionaries(st.sampled_from(["a", "kind", "input_std"]), st.integers(-1, 1), max_size=2))


def _edit(config, path, value, drop):
    obj = config
    for key in path[:-1]:
        obj = obj[key]
    if drop:
        del obj[path[-1]]
    elif isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0 and \
            type(obj[path[-1]]) in (int, float) and not isinstance(obj[path[-1]], bool):
        obj[path[-1]] = -obj[path[-1]]  # numbers: also try the same magnitude negated
    else:
        obj[path[-1]] = value


def _runs_finitely_or_is_rejected(tmp_path, config, tensors):
    path = _write(tmp_path / "m.safetensors", config, tensors)
    try:
        read(path)
    except ModelFileError as e:
        assert "\n" not in str(e)
        return "rejected"
    ctrl = runtime.load(path, backend="numpy", state_check="off")
    ctrl.reset()
    y = ctrl.step(np.full(config["input_size"], 0.5, dtype=np.float32), dt=0.1)
    assert np.isfinite(y).all(), (config["cell"], y)
    return "ran"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_mutated_configs_fail_cleanly_or_run_finitely(tmp_path, data):
    base = data.draw(st.sampled_from(sorted(BASES)))
    config, tensors = copy.deepcopy(BASES[base][0]), BASES[base][1]
    for _ in range(data.draw(st.integers(1, 2))):
        paths = _paths(config)
        if not paths:
            break
        _edit(config, data.draw(st.sampled_from(paths)), data.draw(VALUES), data.draw(st.booleans()))
    event(_runs_finitely_or_is_rejected(tmp_path, config, tensors))


OPTION_VALUES = {"ode_unfolds": st.integers(1, schema.MAX_UNFOLDS), "epsilon": st.floats(0, 1),
                 "solver": st.sampled_from(F.solvers_for("ltc")), "activation": st.sampled_from(sorted(F.ACTIVATIONS)),
                 "mode": st.sampled_from(F.CFC_MODES), "implicit_param_constraints": st.booleans(),
                 "input_mapping": st.sampled_from(F.LTC_MAPPINGS), "output_mapping": st.sampled_from(F.LTC_MAPPINGS)}


def _option_keys(base):
    return sorted(set(schema.CELL_OPTIONS[BASES[base][0]["cell"]["kind"]][0]) & set(OPTION_VALUES))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_valid_option_values_run_finitely(tmp_path, data):
    """Each option of a cell kind set to a value from its registry: mostly accepted (a mode or
    mapping that changes the tensors is not), and what is accepted must run finitely."""
    base = data.draw(st.sampled_from([b for b in sorted(BASES) if _option_keys(b)]))  # lstm, gru: none
    config, tensors = copy.deepcopy(BASES[base][0]), BASES[base][1]
    keys = _option_keys(base)
    for key in data.draw(st.lists(st.sampled_from(keys), min_size=1, max_size=min(3, len(keys)), unique=True)):
        config["cell"][key] = data.draw(OPTION_VALUES[key])
    event(_runs_finitely_or_is_rejected(tmp_path, config, tensors))


# --------------------------------------------------------------------------------------
# parameter magnitudes: one rule (schema.MAX_PARAM_ABS, checked on load) for every command


@pytest.mark.parametrize("name,value", [("cell.sigma", 3e38), ("cell.w", -3e38), ("cell.erev", 1e7),
                                        ("cell.sensory_mu", np.nextafter(np.float32(schema.MAX_PARAM_ABS),
                                                                          np.float32(np.inf)))])
def test_huge_parameter_is_refused_alike_by_every_command(tmp_path, name, value):
    """sigma = 3e38 is finite in float32, but sigma*log2(e) (the C step's gate constant) is not:
    numpy, `ltc info`, `ltc eval` and the ONNX export took the file while the C export refused it.
    Now every command refuses it on load, with the same one line, as a ModelLoadError."""
    from typer.testing import CliRunner

    from ltc_edge.cli import app
    from ltc_edge.codegen import c as cgen
    from ltc_edge.errors import ModelLoadError

    config, tensors = _mutated("ltc_ncp", lambda c: None)
    tensors[name] = np.full_like(tensors[name], value)
    message = _rejects(tmp_path, config, tensors, rf"tensor {name} holds .*beyond \+-1e\+06 \(MAX_PARAM_ABS")
    path = tmp_path / "bad.safetensors"
    if name == "cell.sensory_mu":
        assert "holds 1000000.0625, beyond" in message  # not "1e+06, beyond +-1e+06"
    for backend in ("numpy",) + (("c",) if cgen.find_cc() else ()):
        with pytest.raises(ModelLoadError) as info:
            runtime.load(path, backend=backend)
        assert str(info.value) == message
    outs = {}
    for args in (["info", path], ["eval", path], ["export", path, "-f", "onnx", "-o", tmp_path / "o"],
                 ["export", path, "-f", "c", "-o", tmp_path / "c"]):
        res = CliRunner().invoke(app, [str(a) for a in args])
        outs[args[0] + str(args[3:4])] = (res.exit_code, res.output.strip())
    assert set(outs.values()) == {(1, f"error: {message}")}, outs
    assert not (tmp_path / "o").exists() and not (tmp_path / "c").exists()


def test_parameters_at_the_limit_run_on_every_backend():
    """At +-MAX_PARAM_ABS every constant the backends fold stays finite in float32: the C
    generator (gate records a = -sigma*log2(e), b = -a*mu, w*erev, the FPv4 step's records) takes
    the model, the graph exports' synapse-list constants are finite, and numpy steps finitely."""
    from ltc_edge.codegen import c as cgen
    from ltc_edge.runtime.numpy_backend import NumpyBackend

    cap = schema.MAX_PARAM_ABS
    config, tensors = copy.deepcopy(BASES["ltc_ncp"][0]), dict(BASES["ltc_ncp"][1])
    tensors = {k: np.full_like(v, cap) for k, v in tensors.items()}
    for k in ("cell.mu", "cell.sensory_mu", "cell.vleak"):  # sigma*(input_b - mu) = 2 cap^2
        tensors[k] = -tensors[k]
    for k in ("cell.erev", "cell.sensory_erev"):
        tensors[k] = np.where(np.arange(tensors[k].size).reshape(tensors[k].shape) % 2, cap, -cap).astype(np.float32)
    gen = cgen.generate(config, tensors)  # raises CodegenError on any non-finite constant
    assert "FV_R" in "".join(gen["files"].values())  # the FPv4 records were generated too
    P = F.model_prepare_static(F.NumpyOps, tensors, config)
    for k, v in P["cell"].items():
        if isinstance(v, np.ndarray):
            assert np.isfinite(v).all() and np.abs(v).max() <= 3 * cap * cap, k
    ctrl = runtime.Controller(NumpyBackend.from_arrays(config, tensors), state_check="off")
    for _ in range(5):
        y = ctrl.step(np.full(5, 0.5, np.float32), dt=0.1)
    assert np.isfinite(y).all() and np.abs(y).max() <= 1.5 * (cap * cap + cap)  # (v*output_w + output_b)*std


def test_in_memory_models_are_checked_like_files():
    """An in-memory model with a huge parameter: the numpy backend from arrays and every
    exporter (their one as_model step) refuse it as they refuse its file."""
    import torch

    from ltc_edge.export.manifest import as_model
    from ltc_edge.runtime.numpy_backend import NumpyBackend

    m = build_model("ltc", 3, wiring="auto-ncp", units=8, output_size=2, seed=0)
    with torch.no_grad():
        m.cell.sigma.fill_(3e38)
    raw = {k: v.detach().numpy() for k, v in m.state_dict().items()}
    for make in (lambda: NumpyBackend.from_arrays(m.config, raw), lambda: as_model(m)):
        with pytest.raises(ModelFileError, match=r"tensor cell\.sigma holds 3e\+38, beyond"):
            make()
