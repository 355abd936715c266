# Cross-compiles qgan for 64-bit ARM Linux with Debian's g++-aarch64-linux-gnu; programs
# run under qemu-user (also at build time: catch_discover_tests lists each test binary's
# tests by running it). Used by scripts/ci-aarch64.sh:
#
#   cmake -S . -B build-aarch64 -DCMAKE_TOOLCHAIN_FILE=cmake/toolchains/aarch64-linux-gnu.cmake
#
# qgan's dependencies that reach the aarch64 build (Eigen, xsimd, Catch2 v2, nlohmann-json,
# xxhash with XXH_INLINE_ALL, stb compiled from its header) are header-only, so the host's
# (amd64) packages serve: their headers are arch-independent, and Debian's cross g++
# already searches /usr/include last, after its own aarch64 libc and libstdc++ headers.
# Libraries, on the other hand, must come from the aarch64 tree only. Configure with
# -DQGAN_BUILD_BENCHMARKS=OFF: Google Benchmark is a compiled library with no aarch64 build.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
# GCC's AArch64 back end notes, for every function passing a std::pair<float, float> by
# value, that GCC 10.1 changed how such arguments are passed; that only matters when
# linking with objects built by GCC 9 or older, which this build never does.
set(CMAKE_CXX_FLAGS_INIT "-Wno-psabi")

# Target libraries live under /usr/aarch64-linux-gnu (glibc, libstdc++ from libstdc++-12-dev-arm64-cross).
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
# Programs (ninja, qemu, python) are the build machine's.
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# Libraries only for the target: an amd64 libstb or libbenchmark must not be picked up.
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
# Headers and CMake package configs from both: the header-only packages' configs live in
# the host's /usr/share/eigen3/cmake, /usr/share/cmake, /usr/lib/cmake and
# /usr/lib/x86_64-linux-gnu/cmake.
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)

# Debian installs xsimd's (header-only) config under the host's multiarch directory, which
# find_package does not search for an aarch64 target; point at it. The config computes
# its include directory (/usr/include) from its own location.
if(NOT DEFINED xsimd_DIR AND EXISTS /usr/lib/x86_64-linux-gnu/cmake/xsimd/xsimdConfig.cmake)
  set(xsimd_DIR /usr/lib/x86_64-linux-gnu/cmake/xsimd CACHE PATH
      "xsimd's CMake config (header-only; the host package serves the aarch64 build)")
endif()

# Runs target programs at build time (catch_discover_tests) and under CTest. qemu's
# default CPU ("max") has every ARMv8/9 extension; set QEMU_CPU=cortex-a53 in the
# environment for a plain ARMv8.0-A core.
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/usr/aarch64-linux-gnu)
