// All kernel families of one instruction set and the set that gathers them. No #include
// and no namespace: qgan/simd/kernels.hpp includes it inside namespace qgan::simd for
// static dispatch, and each run-time-dispatch translation unit inside an anonymous
// namespace of its own, so no symbol compiled for one instruction set can be merged with
// another's.
#include "qgan/simd/reductions_body.inl"
#include "qgan/simd/em_pass_body.inl"
#include "qgan/simd/codec_body.inl"
#include "qgan/simd/conv_body.inl"

template <class Arch>
constexpr kernel_set make_kernel_set(const char* name) noexcept {
  return kernel_set{name,
                    {&reduction_kernels<Arch>::minmax, &reduction_kernels<Arch>::summarize,
                     &reduction_kernels<Arch>::centred_square_sum},
                    {&em_kernels<Arch>::em_pass},
                    {&codec_kernels<Arch>::encode_uniform, &codec_kernels<Arch>::pack_codes,
                     &codec_kernels<Arch>::unpack, &codec_kernels<Arch>::dequantize_uniform,
                     codec_kernels<Arch>::streaming_threshold},
                    {&conv_kernels<Arch>::a8_channel, &conv_kernels<Arch>::a8_row,
                     &conv_kernels<Arch>::f32_channel, &conv_kernels<Arch>::f32_dot, &conv_kernels<Arch>::tanh, conv_kernels<Arch>::vnni}};
}
