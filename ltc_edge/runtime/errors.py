"""Runtime errors: all ValueError subclasses with one-line messages (the CLI prints them as
`error: ...` and exits 1)."""


class RuntimeInputError(ValueError):
    """Base class of everything the runtime rejects."""


class ModelLoadError(RuntimeInputError):
    """A model file that is missing, corrupt, of an unknown kind, or lacks its manifest."""


class InputShapeError(RuntimeInputError):
    """x, dt or a state with the wrong shape."""


class InputDtypeError(RuntimeInputError):
    """x, dt or a state of a non-numeric dtype (strings, objects, complex, bool)."""


class NonFiniteInputError(RuntimeInputError):
    """NaN or inf in x (policy 'raise') or in dt."""


class StateBoundError(RuntimeInputError):
    """A state left its proven bounds (LTC) or became NaN/inf: the step is not committed."""


class BackendUnavailableError(RuntimeInputError):
    """The backend's package (onnxruntime, ai-edge-litert, a C compiler) is not installed."""
