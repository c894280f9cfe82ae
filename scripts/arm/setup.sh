#!/usr/bin/env bash
# Install the ARM cross toolchains and qemu (the script lives in the package so installs have it too).
exec bash "$(dirname "$0")/../../ltc_edge/bench/arm/setup.sh" "$@"
