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
# Extra packages for one job, e.g. CI's aarch64 stage: scripts/install-deps.sh g++-aarch64-linux-gnu
packages+=("$@")
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
