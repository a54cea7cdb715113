#!/usr/bin/env bash
# Set up everything rt3d-mlir needs on a fresh Debian machine (run as root or
# with sudo available): the LLVM 22 toolchain, the AArch64 cross tools and
# qemu, SPIR-V tools and Mesa's lavapipe Vulkan driver from Debian, the headers and libraries
# of the C Vulkan runtime for the host and (Debian multiarch) for AArch64, with lavapipe for
# AArch64 so that qemu-aarch64 runs that runtime, and a project-local
# Python 3.11 virtual environment (.venv) with the pinned dependencies.
# Safe to run again: it installs only what is missing.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  llvm-22 llvm-22-tools clang-22 lld-22 mlir-22-tools   # code generation (host)
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross qemu-user  # AArch64 target: C library, run harness, emulator
  spirv-tools mesa-vulkan-drivers libvulkan1              # SPIR-V target: spirv-val, lavapipe (CPU Vulkan), loader
  libvulkan-dev libjansson-dev libminizip-dev             # the C Vulkan runtime (rt3d_mlir/runtime/rt3d_vulkan.c)
  libvulkan-dev:arm64 libjansson-dev:arm64 libminizip-dev:arm64 mesa-vulkan-drivers:arm64  # ... for AArch64
)
FOREIGN_ARCHITECTURES=(arm64)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]})); then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  for arch in "${FOREIGN_ARCHITECTURES[@]}"; do
    if ! dpkg --print-foreign-architectures | grep -qx "$arch"; then
      echo "setup: adding the Debian architecture $arch (multiarch libraries for cross builds)"
      $SUDO dpkg --add-architecture "$arch"
    fi
  done
  echo "setup: installing Debian packages: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-$(command -v python3.11 || true)}"
if [ -z "$PYTHON" ]; then
  echo "setup: error: python3.11 is required (set PYTHON=/path/to/python3.11)" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  echo "setup: creating .venv with $PYTHON"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.rt3d-installed
want="$(sha256sum pyproject.toml | cut -d' ' -f1)"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "setup: installing Python dependencies into .venv"
  .venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
  .venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev]"
  echo "$want" > "$stamp"
fi
echo "setup: ready (.venv, LLVM 22, AArch64 cross tools and qemu, SPIR-V tools, lavapipe, the C Vulkan runtime's libraries)"
