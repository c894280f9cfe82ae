#!/usr/bin/env bash
# Cross-build the golden harness + a generated model for a bare-metal Cortex-M4 (MPS2-AN386)
# and optionally run it under qemu-system-arm with semihosting and instruction counting.
#   usage: build_m4.sh BUILD_DIR PREFIX [--run]
# Also builds size probes (a firmware that only resets and steps the model, and the same
# without the model) so the model's own flash/RAM can be told apart from the harness.
set -euo pipefail
DIR=$1; PREFIX=$2; HERE=$(cd "$(dirname "$0")" && pwd); FW="$HERE/../../codegen/firmware"; CM="$FW/cortex_m"
CC=${ARM_NONE_EABI_CC:-arm-none-eabi-gcc}
OPT=${OPT:--O2}  # may hold several words (flags)
CFLAGS=(-mcpu=cortex-m4 -mthumb -mfloat-abi=hard -mfpu=fpv4-sp-d16 $OPT -std=c99 -Wall -Werror
        -ffunction-sections -fdata-sections -fstack-usage)
LDFLAGS=(-nostartfiles --specs=nosys.specs -T "$CM/mps2.ld" -Wl,--gc-sections)
# the Cortex-M platform, printing instructions (25 MHz SysTick: 40 per tick under -icount shift=0)
PLATFORM=(-DPLATFORM_COUNT_SCALE=40u "$CM/platform_cm.c" "$CM/startup_cm.c")
cd "$DIR"
$CC "${CFLAGS[@]}" -I. -o golden_m4.elf "$FW/golden_main.c" "${PLATFORM[@]}" \
    "$PREFIX.c" "${LDFLAGS[@]}" -lm
$CC "${CFLAGS[@]}" -I. -o probe_model.elf size_probe.c "${PLATFORM[@]}" \
    "$PREFIX.c" "${LDFLAGS[@]}" -lm
$CC "${CFLAGS[@]}" -DNO_MODEL -I. -o probe_base.elf size_probe.c "${PLATFORM[@]}" \
    "${LDFLAGS[@]}" -lm
$CC "${CFLAGS[@]}" -pedantic -c -o model_m4.o "$PREFIX.c"
if [ -f cycles_main_fp32.c ]; then  # the cycle estimate's timing-only harness (ltc_edge/bench/arm/cycles.py)
    $CC "${CFLAGS[@]}" -DGOLDEN_TIMING_STEPS="${CYCLES_STEPS:-4}" -I. -I"$FW" -o cycles_m4.elf cycles_main_fp32.c \
        "${PLATFORM[@]}" "$PREFIX.c" "${LDFLAGS[@]}" -lm
fi
arm-none-eabi-size model_m4.o probe_model.elf probe_base.elf golden_m4.elf
if [ "${3:-}" = "--run" ]; then
    exec timeout 120 qemu-system-arm -M mps2-an386 -nographic -monitor none -serial none \
        -semihosting-config enable=on,target=native -icount shift=0 -kernel golden_m4.elf
fi
