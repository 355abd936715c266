#!/usr/bin/env bash
# Installs everything qgan's build, tests, examples and CI need, from Debian 12 packages
# only. Runs apt-get directly as root (CI, containers) and through sudo otherwise.
# Arguments name extra packages to install with the same checks.
set -euo pipefail
if [ "$(id -u)" -eq 0 ]; then as_root=(); else as_root=(sudo); fi
packages=(
  build-essential cmake ninja-build clang-14 libclang-rt-14-dev nlohmann-json3-dev
  libeigen3-dev libxsimd-dev catch2 libbenchmark-dev libxxhash-dev
  libfuzzer-14-dev qemu-user libstb-dev time
)
# --python adds what the Python bridge and its tests need (scripts/test.sh passes it):
# pybind11 and Python's headers to build it, pytest, NumPy/SciPy, and PyTorch with OpenBLAS
# (without libopenblas0-openmp Debian's torch runs on the reference BLAS, ~30x slower).
# python3-torch takes minutes to install on a fresh machine. The fine-tuning smoke test
# reads Fashion-MNIST (dataset-fashion-mnist).
python_packages=(
  python3-dev python3-pybind11 python3-pytest python3-numpy python3-scipy python3-torch
  libopenblas0-openmp dataset-fashion-mnist
)
# Other arguments name extra packages for one job, e.g. CI's aarch64 stage:
# scripts/install-deps.sh g++-aarch64-linux-gnu
for argument in "$@"; do
  if [ "$argument" = --python ]; then packages+=("${python_packages[@]}"); else packages+=("$argument"); fi
done
missing=()
for package in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" ||
    missing+=("$package")
done
if [ "${#missing[@]}" -gt 0 ]; then
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get update
  "${as_root[@]}" apt-get install -y --no-install-recommends "${missing[@]}"
fi
