#!/usr/bin/env sh
# Make (once) a separate venv with the classic tflite-runtime interpreter, which needs
# numpy<2 and so cannot live in the main venv. Prints the venv's python on the last line.
#   scripts/tflite_runtime_venv.sh [VENV_DIR]      (default /tmp/ltc-tflite-venv)
set -eu
VENV="${1:-${LTC_TFLITE_VENV:-/tmp/ltc-tflite-venv}}"
PY="${PYTHON:-python3}"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import tflite_runtime.interpreter" 2>/dev/null; then
    echo "$VENV/bin/python"
    exit 0
fi
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check 'numpy<2' tflite-runtime
"$VENV/bin/python" -c "import tflite_runtime.interpreter, numpy; print('tflite-runtime ok, numpy', numpy.__version__)" >&2
echo "$VENV/bin/python"
