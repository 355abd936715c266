// qgan's version, written once: CMake reads these three lines to set the project version.
#pragma once

#define QGAN_VERSION_MAJOR 0
#define QGAN_VERSION_MINOR 1
#define QGAN_VERSION_PATCH 0

#define QGAN_STRINGIFY_DETAIL(x) #x
#define QGAN_STRINGIFY(x) QGAN_STRINGIFY_DETAIL(x)
/// "0.1.0", for messages and file metadata.
#define QGAN_VERSION_STRING \
  QGAN_STRINGIFY(QGAN_VERSION_MAJOR) "." QGAN_STRINGIFY(QGAN_VERSION_MINOR) "." QGAN_STRINGIFY(QGAN_VERSION_PATCH)

namespace qgan {
inline constexpr int version_major = QGAN_VERSION_MAJOR;
inline constexpr int version_minor = QGAN_VERSION_MINOR;
inline constexpr int version_patch = QGAN_VERSION_PATCH;
}  // namespace qgan
