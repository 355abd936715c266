# qgan_add_dispatched_kernels(<target>)
#
# Compiles qgan's kernels once per instruction set of the target processor into <target>
# and adds a dispatcher, so every qgan entry point in the program calls the widest set the
# running CPU supports (or the one QGAN_KERNELS names). x86-64: SSE2, SSE4.2, AVX2+FMA,
# AVX-512BW and AVX-512 VNNI; aarch64: NEON, and NEON with the dot-product extension;
# elsewhere only the scalar reference set.
# Each set's unit gets only its own -m flags (and -O2, so that no helper is left out of
# line in a debug build); the target's other sources keep theirs, and must not be built
# with -march flags above the oldest CPU the binary should run on. Every unit is built
# with -ffp-contract=off: a fused multiply-add the source did not ask for would change
# sums that every set must compute alike. The target and its users get
# QGAN_DISPATCHED_KERNELS_ONLY: their own units call the dispatcher and never compile a
# kernel set themselves (a library target holding the kernels passes that on to the
# programs that link it, and a program linking such units without the kernels fails to
# link).
set(_qgan_dispatch_dir "${CMAKE_CURRENT_LIST_DIR}/dispatch")
set(QGAN_DISPATCH_ISAS "" CACHE STRING
    "Kernel sets qgan_add_dispatched_kernels compiles, a subset of the processor's (empty: all); each costs a unit's compile time")

function(qgan_add_dispatched_kernels target)
  string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" processor)
  if(processor MATCHES "^(x86_64|amd64|x64)$")
    set(isas sse2 sse4_2 avx2 avx512bw avx512vnni)
  elseif(processor MATCHES "^(aarch64|arm64)$")
    set(isas neon64 neon64_dotprod)
  else()
    set(isas "")
  endif()
  if(QGAN_DISPATCH_ISAS)
    foreach(isa IN LISTS QGAN_DISPATCH_ISAS)
      if(NOT isa IN_LIST isas)
        message(FATAL_ERROR "QGAN_DISPATCH_ISAS: '${isa}' is not a kernel set of ${processor} (${isas})")
      endif()
    endforeach()
    set(isas ${QGAN_DISPATCH_ISAS})
  endif()
  set(arch_sse2 "xsimd::sse2")
  set(arch_sse4_2 "xsimd::sse4_2")
  set(arch_avx2 "xsimd::fma3<xsimd::avx2>")
  set(arch_avx512bw "xsimd::avx512bw")
  set(arch_avx512vnni "xsimd::avx512bw")  # xsimd 8.1 has no VNNI arch; the GEMM family adds its kernels
  set(arch_neon64 "xsimd::neon64")
  set(arch_neon64_dotprod "xsimd::neon64")  # xsimd 8.1 knows no dot product; the 8-bit tiles use UDOT
  set(flags_sse2 "-msse2")
  set(flags_sse4_2 "-msse4.2")
  set(flags_avx2 "-mavx2;-mfma")
  set(avx512 "-mavx512f;-mavx512bw;-mavx512dq;-mavx512cd;-mavx512vl;-mavx2;-mfma")
  set(flags_avx512bw "${avx512}")
  set(flags_avx512vnni "${avx512};-mavx512vnni")
  set(flags_neon64 "")
  set(flags_neon64_dotprod "-march=armv8.2-a+dotprod")  # arm_neon.h declares UDOT for armv8.2-a+dotprod
  # The check of detect_cpu_features() (qgan/simd/cpu_features.hpp) each set needs.
  set(check_sse2 "sse2")
  set(check_sse4_2 "sse4_2")
  set(check_avx2 "avx2_fma")
  set(check_avx512bw "avx512bw")
  set(check_avx512vnni "avx512vnni")
  set(check_neon64 "neon64")
  set(check_neon64_dotprod "neon64_dotprod")
  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/qgan_dispatch_${target}")
  set(QGAN_DISPATCH_DECLARATIONS "")
  set(QGAN_DISPATCH_CHECKS "")
  foreach(isa IN LISTS isas)
    set(QGAN_ISA "${isa}")
    set(QGAN_XSIMD_ARCH "${arch_${isa}}")
    configure_file("${_qgan_dispatch_dir}/kernels_isa.cpp.in" "${out_dir}/kernels_${isa}.cpp" @ONLY)
    target_sources(${target} PRIVATE "${out_dir}/kernels_${isa}.cpp")
    set_source_files_properties("${out_dir}/kernels_${isa}.cpp" PROPERTIES
      COMPILE_OPTIONS "${flags_${isa}};-O2;-ffp-contract=off")
    string(APPEND QGAN_DISPATCH_DECLARATIONS "const kernel_set* kernel_set_${isa}();\n")
    string(APPEND QGAN_DISPATCH_CHECKS
      "  sets.push_back({kernel_set_${isa}(), cpu.${check_${isa}}});\n")
  endforeach()
  configure_file("${_qgan_dispatch_dir}/dispatcher.cpp.in" "${out_dir}/dispatcher.cpp" @ONLY)
  target_sources(${target} PRIVATE "${out_dir}/dispatcher.cpp")
  target_link_libraries(${target} PRIVATE qgan::qgan)
  # The target's units and those of whatever links it call the dispatcher only, so none of
  # them compiles a static kernel set of its own (qgan/simd/select.hpp).
  target_compile_definitions(${target} PUBLIC QGAN_DISPATCHED_KERNELS_ONLY)
endfunction()
