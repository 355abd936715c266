# qgan_add_dispatched_kernels(<target>)
#
# Compiles qgan's SIMD kernels once per x86-64 instruction set (SSE2, SSE4.2, AVX2+FMA,
# AVX-512BW) into <target> and adds a dispatcher, so qgan::simd::best_kernel_table()
# returns the widest set the running CPU supports. Each set's unit gets only its own -m
# flags (and -O2, so that no helper is left out of line in a debug build); the target's
# other sources keep theirs, and must not be built with -march flags above the oldest CPU
# the binary should run on.
set(_qgan_dispatch_dir "${CMAKE_CURRENT_LIST_DIR}/dispatch")

function(qgan_add_dispatched_kernels target)
  set(isas sse2 sse4_2 avx2 avx512bw)
  set(arch_sse2 "xsimd::sse2")
  set(arch_sse4_2 "xsimd::sse4_2")
  set(arch_avx2 "xsimd::fma3<xsimd::avx2>")
  set(arch_avx512bw "xsimd::avx512bw")
  set(flags_sse2 "-msse2")
  set(flags_sse4_2 "-msse4.2")
  set(flags_avx2 "-mavx2;-mfma")
  set(flags_avx512bw "-mavx512f;-mavx512bw;-mavx512dq;-mavx512cd;-mavx512vl;-mavx2;-mfma")
  # CPUID checks, in the order of the list above (widest last). SSE2 is part of x86-64
  # itself; xsimd 8.1 also reads its CPUID bit from the wrong register (ECX bit 26, which
  # is XSAVE), so asking it would drop SSE2 on CPUs without XSAVE, such as Nehalem.
  set(check_sse2 "true")
  set(check_sse4_2 "cpu.sse4_2")
  set(check_avx2 "cpu.avx2 && cpu.fma3_avx2")
  set(check_avx512bw "cpu.avx512bw && cpu.avx512dq && cpu.avx512cd && cpu.avx512f")
  set(out_dir "${CMAKE_CURRENT_BINARY_DIR}/qgan_dispatch_${target}")
  set(QGAN_DISPATCH_DECLARATIONS "")
  set(QGAN_DISPATCH_CHECKS "")
  foreach(isa IN LISTS isas)
    set(QGAN_ISA "${isa}")
    set(QGAN_XSIMD_ARCH "${arch_${isa}}")
    configure_file("${_qgan_dispatch_dir}/kernels_isa.cpp.in" "${out_dir}/kernels_${isa}.cpp" @ONLY)
    target_sources(${target} PRIVATE "${out_dir}/kernels_${isa}.cpp")
    set_source_files_properties("${out_dir}/kernels_${isa}.cpp" PROPERTIES
      COMPILE_OPTIONS "${flags_${isa}};-O2")
    string(APPEND QGAN_DISPATCH_DECLARATIONS "const kernel_table* kernel_table_${isa}();\n")
    string(APPEND QGAN_DISPATCH_CHECKS
      "  if (${check_${isa}}) tables.push_back(kernel_table_${isa}());\n")
  endforeach()
  configure_file("${_qgan_dispatch_dir}/dispatcher.cpp.in" "${out_dir}/dispatcher.cpp" @ONLY)
  target_sources(${target} PRIVATE "${out_dir}/dispatcher.cpp")
  target_link_libraries(${target} PRIVATE qgan::qgan)
endfunction()
