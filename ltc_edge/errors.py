"""The one error hierarchy of ltc-edge's API. Every error a user can fix is a `LtcEdgeError`
(a ValueError) with a one-line message; the CLI prints it as `error: ...` and exits 1.

    LtcEdgeError
      UnsafeFileError          a path that is not a regular file, too large, or an input reused as output
      RuntimeInputError        everything the runtime rejects
        ModelLoadError         a model file, manifest or export folder that is missing, corrupt or unverified
          (nn.modelfile.ModelFileError, a model file's own)
        InputShapeError, InputDtypeError, NonFiniteInputError, StateBoundError, BackendUnavailableError
        BoardError             a microcontroller over a serial port: no answer, garbage, a reset, a failed flash

This module imports nothing: every package may use it.
"""


class LtcEdgeError(ValueError):
    """Base of every error ltc-edge raises on bad input (files, arguments, data)."""


class UnsafeFileError(LtcEdgeError):
    """A path that is not a regular file (FIFO, device, folder), is larger than allowed, or an
    output that would overwrite an input."""


class RuntimeInputError(LtcEdgeError):
    """Base class of everything the runtime rejects."""


class ModelLoadError(RuntimeInputError):
    """A model file or export folder that is missing, corrupt, of an unknown kind, fails its
    schema or its sha256 check, or lacks its manifest."""


class InputShapeError(RuntimeInputError):
    """x, dt or a state with the wrong shape."""


class InputDtypeError(RuntimeInputError):
    """x, dt or a state of a non-numeric dtype (strings, objects, complex, bool)."""


class NonFiniteInputError(RuntimeInputError):
    """NaN or inf in x (policy 'raise') or in dt, or a dt that is not finite in float32."""


class StateBoundError(RuntimeInputError):
    """A state left its proven bounds (LTC) or became NaN/inf: the step is not committed."""


class BackendUnavailableError(RuntimeInputError):
    """The backend's package (onnxruntime, ai-edge-litert, a C compiler) is not installed."""


class BoardError(RuntimeInputError):
    """A board over a serial port (ltc bench --target mcu:..., the mcu backend) that times out,
    answers garbage or a bad checksum, resets mid-run, or whose flash command fails."""
