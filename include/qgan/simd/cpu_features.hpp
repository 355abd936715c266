// What the running CPU and its operating system support, read with CPUID and XGETBV.
// xsimd 8.1's own detection cannot be used: it knows no AVX-512 VNNI, never asks the OS
// (XGETBV) whether it saves the AVX and AVX-512 registers, and reads SSE2 from the wrong
// register (ECX bit 26, which is XSAVE), so a CPU without XSAVE such as Nehalem would lose
// SSE2. Compiled with the includer's flags: nothing here needs more than x86-64 itself.
// On aarch64, Linux's auxiliary vector says whether UDOT runs; elsewhere (macOS, say) the
// dot-product set is never chosen, and the plain NEON one runs.
#pragma once

#include <cstdint>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif
#if defined(__aarch64__) && defined(__linux__)
#include <sys/auxv.h>
#endif

namespace qgan::simd {

struct cpu_features {
  bool sse2 = false;
  bool sse4_2 = false;      ///< with SSSE3 and SSE4.1
  bool avx2_fma = false;    ///< AVX2 and FMA, with the OS saving YMM state
  bool avx512bw = false;    ///< AVX-512 F, BW, DQ, CD, VL, with the OS saving ZMM state
  bool avx512vnni = false;  ///< the above plus AVX512_VNNI
  bool neon64 = false;      ///< aarch64 Advanced SIMD (part of ARMv8-A)
  bool neon64_dotprod = false;  ///< plus the dot-product extension (UDOT; Armv8.2-A onwards, optional)
};

namespace cpuid {
#if defined(__x86_64__) || defined(__i386__)
inline std::uint64_t read_xcr0() noexcept {
  std::uint32_t low = 0, high = 0;
  // The xgetbv instruction by its bytes: the intrinsic would need -mxsave on this unit.
  __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(low), "=d"(high) : "c"(0));
  return (std::uint64_t{high} << 32) | low;
}

inline bool bit(std::uint32_t value, int index) noexcept { return ((value >> index) & 1u) != 0; }
#endif
}  // namespace cpuid

inline cpu_features detect_cpu_features() noexcept {
  cpu_features cpu;
#if defined(__x86_64__) || defined(__i386__)
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (__get_cpuid(0, &eax, &ebx, &ecx, &edx) == 0) return cpu;
  const unsigned max_leaf = eax;
  __get_cpuid(1, &eax, &ebx, &ecx, &edx);
  cpu.sse2 = cpuid::bit(edx, 26);
  cpu.sse4_2 = cpu.sse2 && cpuid::bit(ecx, 9) && cpuid::bit(ecx, 19) && cpuid::bit(ecx, 20);
  const bool osxsave = cpuid::bit(ecx, 27), avx = cpuid::bit(ecx, 28), fma = cpuid::bit(ecx, 12);
  std::uint64_t xcr0 = 0;
  if (osxsave) xcr0 = cpuid::read_xcr0();
  const bool os_ymm = (xcr0 & 0x6) == 0x6;            // SSE and AVX state
  const bool os_zmm = (xcr0 & 0xe6) == 0xe6;          // plus opmask, ZMM_Hi256, Hi16_ZMM
  unsigned ebx7 = 0, ecx7 = 0;
  if (max_leaf >= 7) {
    __cpuid_count(7, 0, eax, ebx7, ecx7, edx);
  }
  cpu.avx2_fma = cpu.sse4_2 && avx && fma && os_ymm && cpuid::bit(ebx7, 5);
  cpu.avx512bw = cpu.avx2_fma && os_zmm && cpuid::bit(ebx7, 16) && cpuid::bit(ebx7, 17) &&
                 cpuid::bit(ebx7, 28) && cpuid::bit(ebx7, 30) && cpuid::bit(ebx7, 31);
  cpu.avx512vnni = cpu.avx512bw && cpuid::bit(ecx7, 11);
#elif defined(__aarch64__)
  cpu.neon64 = true;
#if defined(__linux__)
  // The kernel reports what it lets user space run; HWCAP_ASIMDDP is bit 20 (the constant
  // is missing from older headers).
  cpu.neon64_dotprod = (getauxval(AT_HWCAP) & (1ul << 20)) != 0;
#endif
#endif
  return cpu;
}

}  // namespace qgan::simd
