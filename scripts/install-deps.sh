#!/usr/bin/env bash
# Installs everything qgan's build, tests, examples and CI need, from Debian 12 packages
# only. Runs apt-get directly as root (CI, containers) and through sudo otherwise.
# Arguments name extra packages to install with the same checks.
set -euo pipefail
if [ "$(id -u)" -eq 0 ]; then as_root=(); else as_root=(sudo); fi
# What scripts/build.sh compiles against, then the tools of the sanitized, fuzzing and
# emulated runs.
build_packages=(
  build-essential cmake ninja-build nlohmann-json3-dev libeigen3-dev libxsimd-dev catch2
  libbenchmark-dev libxxhash-dev libstb-dev
)
packages=("${build_packages[@]}" clang-14 libclang-rt-14-dev libfuzzer-14-dev qemu-user time)
# --python adds what the Python bridge and its tests need (scripts/test.sh passes it):
# pybind11 and Python's headers to build it, pytest, NumPy/SciPy, and PyTorch with OpenBLAS
# (without libopenblas0-openmp Debian's torch runs on the reference BLAS, ~30x slower).
# python3-torch takes minutes to install on a fresh machine. The fine-tuning smoke test
# reads Fashion-MNIST (dataset-fashion-mnist).
python_build_packages=(python3-dev python3-pybind11)
python_packages=(
  "${python_build_packages[@]}" python3-pytest python3-numpy python3-scipy python3-torch
  libopenblas0-openmp dataset-fashion-mnist
)
# --build-only installs just what scripts/test.sh's build compiles against, the Python
# module included (without its headers the build would leave it out): CI installs the
# rest, PyTorch above all, beside that build.
# Other arguments name extra packages for one job, e.g. CI's aarch64 stage:
# scripts/install-deps.sh g++-aarch64-linux-gnu
for argument in "$@"; do
  case $argument in
    --python) packages+=("${python_packages[@]}") ;;
    --build-only) packages=("${build_packages[@]}" "${python_build_packages[@]}") ;;
    *) packages+=("$argument") ;;
  esac
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
