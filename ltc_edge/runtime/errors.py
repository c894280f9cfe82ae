"""Runtime errors: re-exported from ltc_edge.errors (one hierarchy for the whole API)."""

from ltc_edge.errors import (BackendUnavailableError, InputDtypeError, InputShapeError,  # noqa: F401
                             LtcEdgeError, ModelLoadError, NonFiniteInputError, RuntimeInputError,
                             StateBoundError, UnsafeFileError)
