# Warning and sanitizer settings for qgan's own tests, examples and benchmarks. They are
# never put on the qgan::qgan interface: a consumer's flags are the consumer's business.
function(qgan_target_settings target)
  set_target_properties(${target} PROPERTIES CXX_STANDARD 20 CXX_STANDARD_REQUIRED ON
                                             CXX_EXTENSIONS OFF)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Wconversion -Wshadow)
  # Same results on every CPU: a multiply-add fused by the compiler rounds once where the
  # source rounds twice, and only where the instruction set has FMA (GCC fuses by default,
  # clang within an expression). Consumers who want the guarantee set it too (README).
  target_compile_options(${target} PRIVATE -ffp-contract=off)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    # GCC 12 reports false -W(maybe-)uninitialized inside its own avx512fintrin.h when
    # Eigen's GEMM kernel or xsimd are built for AVX-512 (a known GCC 12 bug); clang 14
    # builds the same code clean with these warnings on, and CI builds with both.
    target_compile_options(${target} PRIVATE -Wno-maybe-uninitialized -Wno-uninitialized)
  endif()
  if(QGAN_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
  if(QGAN_SANITIZE)
    target_compile_options(${target} PRIVATE -fsanitize=address,undefined
                                             -fno-sanitize-recover=all -fno-omit-frame-pointer)
    target_link_options(${target} PRIVATE -fsanitize=address,undefined)
  endif()
endfunction()

# Compiles `target` as `batches` unity batches of about equal size (sources marked
# SKIP_UNITY_BUILD_INCLUSION beforehand stay alone): units of qgan's own targets spend most
# of their time parsing and instantiating the same qgan, Eigen, Catch2 and json headers, so
# a batch pays that once, and two batches still keep both of CI's cores busy.
function(qgan_unity_batches target batches)
  get_target_property(sources ${target} SOURCES)
  set(batched 0)
  foreach(source IN LISTS sources)
    get_source_file_property(skip "${source}" SKIP_UNITY_BUILD_INCLUSION)
    if(NOT skip)
      math(EXPR batched "${batched} + 1")
    endif()
  endforeach()
  math(EXPR batch_size "(${batched} + ${batches} - 1) / ${batches}")
  set_target_properties(${target} PROPERTIES UNITY_BUILD ON UNITY_BUILD_BATCH_SIZE ${batch_size})
endfunction()
