// qgan's free functions live in an inline namespace named after the instruction sets the
// including translation unit is compiled for. Two units of one program built with
// different -m flags (a baseline one and an AVX-512 one, say) then never share an
// out-of-line copy of a qgan function: without it, the linker keeps one copy of each
// inline function for the whole program, and may hand the AVX-512 one to the baseline
// caller, which dies of SIGILL on an older CPU. Callers name the functions as usual
// (qgan::make_channel_layout); types stay outside, so every unit sees the same types.
#pragma once

#if defined(__AVX512F__)
#define QGAN_ISA_NAMESPACE isa_avx512
#elif defined(__AVX2__)
#define QGAN_ISA_NAMESPACE isa_avx2
#elif defined(__AVX__)
#define QGAN_ISA_NAMESPACE isa_avx
#elif defined(__SSE4_2__)
#define QGAN_ISA_NAMESPACE isa_sse4_2
#elif defined(__aarch64__) && defined(__ARM_FEATURE_DOTPROD)
#define QGAN_ISA_NAMESPACE isa_aarch64_dotprod
#elif defined(__aarch64__)
#define QGAN_ISA_NAMESPACE isa_aarch64
#else
#define QGAN_ISA_NAMESPACE isa_baseline
#endif

#define QGAN_BEGIN_FUNCTIONS inline namespace QGAN_ISA_NAMESPACE {
#define QGAN_END_FUNCTIONS }
