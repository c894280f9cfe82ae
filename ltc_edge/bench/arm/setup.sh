#!/usr/bin/env bash
# Install the ARM toolchains and emulators used by scripts/arm/*.sh and the qemu tests, and
# openssh (a loopback sshd is the "board" of the SSH-target tests).
# Needs root (or sudo) and apt. Idempotent: skips packages that are already installed.
set -euo pipefail

PKGS=(gcc-aarch64-linux-gnu libc6-dev-arm64-cross gcc-arm-none-eabi libnewlib-arm-none-eabi
      binutils-arm-none-eabi qemu-user qemu-system-arm openssh-client openssh-server
      libstdc++-arm-none-eabi-newlib)  # the last: C++ headers for benchmarks/tflm_m4.py (TFLite-Micro)

missing=()
for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    echo "ARM toolchain already installed"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "installed: ${missing[*]}"
