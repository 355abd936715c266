// Kernel throughput as a ratio against a baseline run interleaved in the same iterations
// (these machines are shared and noisy): memcpy of the same float bytes for the
// bandwidth-bound kernels, the plain scalar EM loop for the EM fit. Each iteration times
// both sides with steady_clock; the reported time is the kernel's, and the counter
// `x_baseline` is baseline time / kernel time (above 1: the kernel is faster).
#include <benchmark/benchmark.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <new>
#include <random>
#include <vector>

#include "qgan/pack/canonical.hpp"
#include "qgan/quant/em.hpp"
#include "qgan/simd/select.hpp"

namespace {

/// The kernel set every front door of this binary uses (static: -march=native).
const qgan::simd::kernel_set& kernels() { return qgan::simd::active_kernels<>(); }
using clock_type = std::chrono::steady_clock;

std::vector<float> laplacian_weights(std::size_t count) {
  std::mt19937 generator(42);
  std::exponential_distribution<float> magnitude(70.0f);
  std::bernoulli_distribution negative(0.5);
  std::vector<float> weights(count);
  for (float& w : weights) w = negative(generator) ? -magnitude(generator) : magnitude(generator);
  return weights;
}

template <class Kernel, class Baseline>
void interleaved(benchmark::State& state, Kernel&& kernel, Baseline&& baseline) {
  double kernel_seconds = 0.0, baseline_seconds = 0.0;
  for (auto _ : state) {
    const auto t0 = clock_type::now();
    baseline();
    const auto t1 = clock_type::now();
    kernel();
    const auto t2 = clock_type::now();
    baseline_seconds += std::chrono::duration<double>(t1 - t0).count();
    const double seconds = std::chrono::duration<double>(t2 - t1).count();
    kernel_seconds += seconds;
    state.SetIterationTime(seconds);
  }
  state.counters["x_baseline"] = baseline_seconds / kernel_seconds;
}

// Output buffers start on a 64-byte boundary, as a caller that cares about streaming
// stores allocates them (std::vector's large blocks sit 16 bytes past a page boundary).
template <class T>
struct cache_line_allocator {
  using value_type = T;
  cache_line_allocator() = default;
  template <class U> cache_line_allocator(const cache_line_allocator<U>&) {}
  T* allocate(std::size_t n) { return static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{64})); }
  void deallocate(T* p, std::size_t) { ::operator delete(p, std::align_val_t{64}); }
  friend bool operator==(const cache_line_allocator&, const cache_line_allocator&) { return true; }
};
using aligned_floats = std::vector<float, cache_line_allocator<float>>;

// Inputs for one (count, bits) case, made once per benchmark.
struct packed_case {
  std::vector<float> weights;
  aligned_floats output;
  std::vector<std::uint8_t> codes, packed;
  qgan::uniform_params grid;
  packed_case(std::size_t count, int bits)
      : weights(laplacian_weights(count)), output(count), codes(count),
        packed(qgan::pack::packed_size(count, bits)) {
    grid = qgan::minmax_quantizer{}.fit(weights, bits);
    kernels().codec.encode_uniform(weights.data(), count, grid, codes.data());
    kernels().codec.pack_codes(codes.data(), count, bits, packed.data());
  }
};

void memcpy_floats(const std::vector<float>& from, aligned_floats& to) {
  std::memcpy(to.data(), from.data(), from.size() * sizeof(float));
  benchmark::ClobberMemory();
}

// A kernel on one (count, bits) case, interleaved with memcpy of the same float bytes.
template <class Kernel>
void against_memcpy(benchmark::State& state, Kernel&& kernel) {
  const auto count = static_cast<std::size_t>(state.range(0));
  const int bits = static_cast<int>(state.range(1));
  packed_case data(count, bits);
  aligned_floats copy(count);
  interleaved(
      state,
      [&] {
        kernel(data, count, bits);
        benchmark::ClobberMemory();
      },
      [&] { memcpy_floats(data.weights, copy); });
}

void bm_dequantize(benchmark::State& state) {
  against_memcpy(state, [](packed_case& data, std::size_t count, int bits) {
    kernels().codec.dequantize_uniform(data.packed.data(), 0, count, bits, data.grid, data.output.data());
  });
  state.SetBytesProcessed(std::int64_t(state.iterations()) * state.range(0) *
                          std::int64_t(sizeof(float)));
}

void bm_unpack(benchmark::State& state) {
  against_memcpy(state, [](packed_case& data, std::size_t count, int bits) {
    kernels().codec.unpack(data.packed.data(), 0, count, bits, data.codes.data());
  });
}

void bm_pack(benchmark::State& state) {
  against_memcpy(state, [](packed_case& data, std::size_t count, int bits) {
    kernels().codec.pack_codes(data.codes.data(), count, bits, data.packed.data());
  });
}

void bm_encode(benchmark::State& state) {
  against_memcpy(state, [](packed_case& data, std::size_t count, int /*bits*/) {
    kernels().codec.encode_uniform(data.weights.data(), count, data.grid, data.codes.data());
  });
}

// EM fit, 16 iterations with tol = 0 on both sides; the baseline is the same algorithm
// on the scalar reference kernel set (em_quantizer::fit_reference), which gives the same grid.
void bm_em_fit(benchmark::State& state) {
  const auto count = static_cast<std::size_t>(state.range(0));
  const int bits = static_cast<int>(state.range(1));
  const auto weights = laplacian_weights(count);
  const qgan::em_quantizer paper{.max_iters = 16, .tol = 0.0};
  qgan::em_fit_result fast, reference;
  interleaved(
      state, [&] { fast = paper.fit_traced(weights, bits); },
      [&] { reference = paper.fit_reference(weights, bits); });
  state.counters["alpha_rel_diff"] =
      std::abs(double(fast.params.alpha) - reference.params.alpha) / reference.params.alpha;
  state.counters["mse_rel_diff"] = std::abs(fast.mse - reference.mse) / reference.mse;
}

void sizes_and_bits(benchmark::internal::Benchmark* bench) {
  for (const std::int64_t count : {std::int64_t{1} << 20, std::int64_t{1} << 24}) {
    for (const std::int64_t bits : {1, 2, 4}) bench->Args({count, bits});
  }
  bench->ArgNames({"n", "bits"})->UseManualTime()->Unit(benchmark::kMillisecond);
}

}  // namespace

BENCHMARK(bm_dequantize)->Apply(sizes_and_bits);
BENCHMARK(bm_unpack)->Apply(sizes_and_bits);
BENCHMARK(bm_pack)->Apply(sizes_and_bits);
BENCHMARK(bm_encode)->Apply(sizes_and_bits);
BENCHMARK(bm_em_fit)->Apply(sizes_and_bits);

BENCHMARK_MAIN();
