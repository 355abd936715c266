// Run-time dispatch: one binary that runs on any x86-64 and uses AVX-512 where the CPU has
// it. The kernels are compiled once per instruction set, each in a translation unit of
// its own whose code sits in an anonymous namespace (cmake/dispatch/kernels_isa.cpp.in,
// added to a target by qgan_add_dispatched_kernels() from cmake/qgan_dispatch.cmake), so
// the linker can never hand one instruction set's code to another's caller. Those units
// publish a table of function pointers; best_kernel_table() picks one with CPUID.
#pragma once

#include <vector>

#include "qgan/simd/kernels_prelude.hpp"

namespace qgan::simd {

struct kernel_table {
  const char* arch_name;
  void (*minmax)(const float* values, std::size_t count, float& lowest, float& highest) noexcept;
  void (*encode_uniform)(const float* values, std::size_t count, const uniform_params& grid,
                         std::uint8_t* codes) noexcept;
  em_sums (*em_pass)(const float* values, std::size_t count, const uniform_params& grid,
                     float mean) noexcept;
  void (*pack_codes)(const std::uint8_t* codes, std::size_t count, int bits,
                     std::uint8_t* packed) noexcept;
  void (*unpack)(const std::uint8_t* packed, std::size_t first, std::size_t count, int bits,
                 std::uint8_t* codes) noexcept;
  void (*dequantize_uniform)(const std::uint8_t* packed, std::size_t first, std::size_t count,
                             int bits, const uniform_params& grid, float* values) noexcept;
  bool fused_multiply_add;  ///< decode is bit-exact with the std::fma references
  std::size_t streaming_threshold;  ///< dequantize outputs this long use streaming stores
};

template <class Kernels>
constexpr kernel_table make_kernel_table(const char* arch_name) noexcept {
  return kernel_table{arch_name,
                      &Kernels::minmax,
                      &Kernels::encode_uniform,
                      &Kernels::em_pass,
                      &Kernels::pack_codes,
                      &Kernels::unpack,
                      &Kernels::dequantize_uniform,
                      Kernels::has_fused_multiply_add,
                      Kernels::streaming_threshold};
}

/// Every table compiled into this binary whose instruction set the CPU supports, widest
/// last. Defined by the dispatcher unit qgan_add_dispatched_kernels() adds.
std::vector<const kernel_table*> available_kernel_tables();

/// The widest of available_kernel_tables(), chosen once.
const kernel_table& best_kernel_table();

}  // namespace qgan::simd
