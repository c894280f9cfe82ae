"""The Controller drives native guards through the Backend contract alone (runtime/backend.py:
native_guards, bind_guards, run_guarded, guarded_call, where), never by naming a backend: a
pure-Python backend that implements the contract gets the same fast path, the same outputs and
the same errors as the numpy backend under the Controller's own guards."""

import numpy as np
import pytest

from ltc_edge.nn import build_model, save
from ltc_edge.runtime import Controller, NonFiniteInputError, StateBoundError
from ltc_edge.runtime.backend import STATUS_NONFINITE_INPUT, STATUS_OK, STATUS_OUT_OF_BOUNDS
from ltc_edge.runtime.numpy_backend import NumpyBackend


class GuardedNumpy(NumpyBackend):
    """The numpy step with the guards done 'natively' (here in Python), as the C backend does them."""

    native_guards = True

    def bind_guards(self, lo, hi, mode, x=None):
        self.guard = (lo, hi, x)
        self.calls = 0

    def run_guarded(self):
        lo, hi, x = self.guard
        self.calls += 1
        src = self.x if x is None else x
        if not np.isfinite(src).all():
            return STATUS_NONFINITE_INPUT
        h_old, x_old = self.h.copy(), self.x.copy()
        self.x[...] = src
        self.run()
        if lo is not None and ((self.h_new < lo) | (self.h_new > hi)).any():
            self.where = int(np.argmax(((self.h_new < lo) | (self.h_new > hi)).any(0)))
            self.h[...], self.x[...] = h_old, x_old
            return STATUS_OUT_OF_BOUNDS
        self.h[...] = self.h_new
        return STATUS_OK

    def guarded_call(self):
        return self.run_guarded


@pytest.fixture(scope="module")
def model_file(tmp_path_factory):
    m = build_model("ltc", 5, seed=0, wiring="auto-ncp", units=12, output_size=2)
    m.apply_constraints()
    return save(m, tmp_path_factory.mktemp("contract") / "ltc.safetensors")


def test_the_controller_takes_the_fast_path_of_any_backend_with_native_guards(model_file):
    plain, native = Controller(NumpyBackend(model_file)), Controller(GuardedNumpy(model_file))
    xs = np.random.default_rng(0).standard_normal((50, 5)).astype(np.float32)
    for x in xs:
        np.testing.assert_allclose(native.step(x, 0.1), plain.step(x, 0.1), rtol=0, atol=1e-6)
    assert native.backend.calls == 50  # every step went through guarded_call
    np.testing.assert_allclose(native.state, plain.state, rtol=0, atol=1e-6)


def test_native_guard_statuses_become_the_controllers_errors(model_file):
    ctrl = Controller(GuardedNumpy(model_file))
    ctrl.step(np.zeros(5, np.float32))
    before = ctrl.state.copy()
    with pytest.raises(NonFiniteInputError):
        ctrl.step(np.array([0, np.nan, 0, 0, 0], np.float32))
    lo, hi = ctrl.meta.bounds
    ctrl.backend.guard[0][...] = lo + 0.49 * (hi - lo)  # bounds narrowed to a sliver: the next step leaves them
    ctrl.backend.guard[1][...] = lo + 0.51 * (hi - lo)
    with pytest.raises(StateBoundError, match="neuron"):
        ctrl.step(np.full(5, 3.0, np.float32))
    np.testing.assert_array_equal(ctrl.state, before)  # nothing committed
