#!/usr/bin/env bash
# Cross-build the golden harness + a generated model for aarch64 Linux (static) and run it
# under qemu-aarch64.   usage: build_aarch64.sh BUILD_DIR PREFIX [--run]
set -euo pipefail
DIR=$1; PREFIX=$2; HERE=$(cd "$(dirname "$0")" && pwd); FW="$HERE/../../codegen/firmware"
CC=${AARCH64_CC:-aarch64-linux-gnu-gcc}
$CC -O2 -std=c99 -Wall -Werror -pedantic -static ${EXTRA_CFLAGS:-} -I"$DIR" -o "$DIR/golden_aarch64" \
    "$FW/golden_main.c" "$FW/platform_linux.c" "$DIR/$PREFIX.c" -lm
if [ "${3:-}" = "--run" ]; then
    exec qemu-aarch64 -L /usr/aarch64-linux-gnu "$DIR/golden_aarch64"
fi
