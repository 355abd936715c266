// Scale study: where 2-bit weights win by memory traffic. The DCGAN generator widened
// (ngf 64..512) with 32x32 outputs (4 transposed convolutions) and 64x64 outputs (5), random
// weights (N(0, 0.02), DCGAN's initialisation), batch 1, run by qgan's fp32 packed-layer
// kernels, qgan W2A8 (EM 2-bit per output channel, 8-bit activations) and oneDNN 2.6 int8
// when built with libdnnl-dev. Each engine is timed warm (the weights left in cache by the
// run before) and cold (a buffer of twice the L3, read and written, evicts weights and
// activations before the run), in interleaved rounds; the tables show medians per image
// and the weight bytes each engine holds. Run with OMP_WAIT_POLICY=passive.
//
//   bench_generator_scale [--rounds R] [--threads T] [--ngf 64,128,256,512] [--sizes 32,64] [--only fp32|W2A8|oneDNN]
// --only builds and runs one engine. The process holds the random fp32 weights and the
// fp32 layers the ranges are calibrated with whatever it runs, so its memory says nothing
// about a deployed generator's.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "bench_common.hpp"
#include "qgan/core/random.hpp"
#include "qgan/core/thread_pool.hpp"
#include "qgan/nn/packed/build.hpp"
#include "qgan/nn/packed/forward.hpp"
#include "qgan/nn/packed/sequence.hpp"
#include "qgan/pack/quantize.hpp"
#include "qgan/quant/em.hpp"
#ifdef QGAN_HAVE_ONEDNN
#include "onednn_generator.hpp"
#endif

namespace {

namespace packed = qgan::nn::packed;
using clock_type = std::chrono::steady_clock;
constexpr std::size_t nz = 100;

using qgan_bench::median;
using qgan_bench::option_value;
using qgan_bench::parse_list;

// The last-level cache as the OS reports it (sysfs, what lscpu prints); glibc's sysconf
// only when sysfs says nothing: it decodes CPUID itself, and on this project's AMD VM gives
// 320 MiB for a 32 MiB L3. 32 MiB when neither says.
std::size_t l3_bytes() {
  std::ifstream in("/sys/devices/system/cpu/cpu0/cache/index3/size");
  std::string text;
  if (in >> text && !text.empty()) {
    std::size_t value = std::stoul(text);
    if (text.back() == 'K') value <<= 10;
    if (text.back() == 'M') value <<= 20;
    if (value > 0) return value;
  }
  if (const long bytes = sysconf(_SC_LEVEL3_CACHE_SIZE); bytes > 0) return static_cast<std::size_t>(bytes);
  return std::size_t{32} << 20;
}

// Reads and writes every cache line of a buffer twice the L3's size.
class cache_evictor {
 public:
  explicit cache_evictor(std::size_t l3) : buffer_(2 * l3, 1) {}
  void operator()() {
    for (std::size_t i = 0; i < buffer_.size(); i += 64) buffer_[i] = static_cast<unsigned char>(buffer_[i] + 1);
    sink_ += buffer_[buffer_.size() / 2];
  }
  [[nodiscard]] unsigned sink() const { return sink_; }

 private:
  std::vector<unsigned char> buffer_;
  unsigned sink_ = 0;
};

struct network {
  int size = 32, ngf = 64;
  std::vector<std::size_t> channels;    // nz, ..., 1
  std::vector<std::vector<float>> weights;  // (in, out, 4, 4) per layer
  [[nodiscard]] std::size_t layers() const { return channels.size() - 1; }
  [[nodiscard]] packed::layer_geometry geometry(std::size_t i) const {
    packed::layer_geometry g;
    g.kind = packed::layer_kind::transposed_convolution;
    g.in_channels = channels[i];
    g.out_channels = channels[i + 1];
    g.rows = g.cols = i == 0 ? packed::axis_spec{4, 1, 0, 1, 0} : packed::axis_spec{4, 2, 1, 1, 0};
    return g;
  }
  // As the packed-compute issue counts them: the first layer's 16 taps once each (a 1x1
  // input), 4 taps per output at stride 2 (border outputs, which have fewer, included).
  [[nodiscard]] double multiply_adds() const {
    double total = 0.0, extent = 4.0;
    for (std::size_t i = 0; i < layers(); ++i) {
      const double pairs = static_cast<double>(channels[i]) * static_cast<double>(channels[i + 1]);
      if (i == 0) {
        total += 16.0 * pairs;
      } else {
        extent *= 2.0;
        total += extent * extent * 4.0 * pairs;
      }
    }
    return total;
  }
};

network make_network(int size, int ngf, std::uint64_t seed) {
  network n;
  n.size = size;
  n.ngf = ngf;
  const auto f = static_cast<std::size_t>(ngf);
  n.channels = size == 32 ? std::vector<std::size_t>{nz, 4 * f, 2 * f, f, 1} : std::vector<std::size_t>{nz, 8 * f, 4 * f, 2 * f, f, 1};
  for (std::size_t i = 0; i < n.layers(); ++i) {
    std::vector<float> w = qgan::normal_latents(n.channels[i] * n.channels[i + 1] * 16, seed + i);
    for (float& v : w) v *= 0.02f;
    n.weights.push_back(std::move(w));
  }
  return n;
}

struct engine {
  std::string name;
  std::function<void()> run;
  std::size_t weight_bytes = 0;
  std::vector<double> warm, cold;
};

std::size_t layer_bytes(const packed::layer& l) {
  return l.weights.codes.size() + l.weights.row_codes.size() + l.weights.floats.size() * sizeof(float) +
         l.weights.code_sums.size() * sizeof(std::int32_t) + (l.weights.alpha.size() + l.weights.beta.size()) * sizeof(float);
}

// qgan's layers over the network (fp32 weights, or EM 2-bit codes with 8-bit activations),
// and the 8-bit input ranges from the fp32 layers' maxima over 8 calibration latents.
struct qgan_generator {
  std::vector<packed::layer> fp32, w2;
  std::vector<packed::activation_range> ranges;
  std::vector<float> z;
  std::unique_ptr<qgan::thread_pool> pool;

  qgan_generator(const network& n, bool want_fp32, bool want_w2, int threads)
      : z(qgan::normal_latents(nz, 7)), pool(std::make_unique<qgan::thread_pool>(threads)) {
    std::vector<packed::layer> calibration;
    for (std::size_t i = 0; i < n.layers(); ++i) {
      const std::string name = "deconv" + std::to_string(i + 1);
      calibration.push_back(packed::make_layer(name, n.geometry(i), std::span<const float>(n.weights[i])));
      if (want_w2) {
        const qgan::shape_t shape{static_cast<std::int64_t>(n.channels[i]), static_cast<std::int64_t>(n.channels[i + 1]), 4, 4};
        const auto codes = qgan::quantize(qgan::em_quantizer{}, n.weights[i], shape, {2, qgan::per_channel{1}});
        w2.push_back(packed::make_layer(name, n.geometry(i), codes, packed::activation_path::int8));
      }
    }
    const std::vector<float> calib_z = qgan::normal_latents(8 * nz, 11);
    packed::f32_activations x = packed::from_nchw(calib_z, 8, nz, 1, 1);
    for (std::size_t i = 0; i < n.layers(); ++i) {
      float top = 0.0f;
      for (const float v : x.data) top = std::max(top, std::abs(v));
      ranges.push_back(i == 0 ? packed::range_for(-top, top) : packed::range_for(0.0f, top));
      if (i + 1 == n.layers()) break;
      packed::f32_activations y;
      packed::forward(calibration[i], x, y, true, *pool);
      x = std::move(y);
    }
    if (want_fp32) fp32 = std::move(calibration);
  }

  void run_fp32() const {
    packed::forward_sequence(std::span<const packed::layer>(fp32), packed::from_nchw(z, 1, nz, 1, 1), *pool);
  }

  void run_w2a8() const {
    packed::forward_sequence(std::span<const packed::layer>(w2), std::span<const packed::activation_range>(ranges),
                             packed::quantize_nchw(z, 1, nz, 1, 1, ranges[0], w2[0].weights.row_tiles), *pool);
  }
};

#ifdef QGAN_HAVE_ONEDNN
std::vector<qgan_bench::deconv_spec> onednn_specs(const network& n) {
  std::vector<qgan_bench::deconv_spec> specs;
  for (std::size_t i = 0; i < n.layers(); ++i) {
    const bool last = i + 1 == n.layers();
    specs.push_back({static_cast<int>(n.channels[i]), static_cast<int>(n.channels[i + 1]), 4, i == 0 ? 1 : 2, i == 0 ? 0 : 1,
                     n.weights[i], std::vector<float>(n.channels[i + 1], 0.0f), !last});
  }
  return specs;
}
#endif

}  // namespace

int main(int argc, char** argv) {
  int rounds = 11, threads = 1;
  std::vector<int> ngfs{64, 128, 256, 512}, sizes{32, 64};
  std::string only;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto next = [&] { return option_value(argc, argv, i); };
    if (arg == "--rounds") rounds = std::stoi(next());
    else if (arg == "--threads") threads = std::stoi(next());
    else if (arg == "--ngf") ngfs = parse_list(next());
    else if (arg == "--sizes") sizes = parse_list(next());
    else if (arg == "--only") only = next();
    else {
      std::fprintf(stderr,
                   "usage: bench_generator_scale [--rounds R] [--threads T] [--ngf 64,128,256,512] [--sizes 32,64] "
                   "[--only fp32|W2A8|oneDNN]\n");
      return 2;
    }
  }
  for (const int size : sizes) {
    if (size != 32 && size != 64) {
      std::fprintf(stderr, "--sizes: 32 or 64, not %d\n", size);
      return 2;
    }
  }
  const std::size_t l3 = l3_bytes();
  cache_evictor evict(l3);
  const bool want_fp32 = only.empty() || only == "fp32", want_w2 = only.empty() || only == "W2A8";
  const bool want_onednn = only.empty() || only == "oneDNN";
  std::printf("L3 %zu MiB (cold runs evict %zu MiB first); batch 1, %d thread%s, median of %d interleaved rounds\n\n", l3 >> 20,
              (2 * l3) >> 20, threads, threads == 1 ? "" : "s", rounds);
  std::printf("| output | ngf | multiply-adds | engine | weight bytes | warm ms | cold ms | cold / warm | GMAC/s warm |\n");
  std::printf("| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: |\n");
  for (const int size : sizes) {
    for (const int ngf : ngfs) {
      const network n = make_network(size, ngf, 1000 + static_cast<std::uint64_t>(ngf) + static_cast<std::uint64_t>(size));
      std::vector<engine> engines;
      const qgan_generator g(n, want_fp32, want_w2, threads);
      if (want_fp32) {
        std::size_t bytes = 0;
        for (const auto& l : g.fp32) bytes += layer_bytes(l);
        engines.push_back({"qgan fp32", [&] { g.run_fp32(); }, bytes, {}, {}});
      }
      if (want_w2) {
        std::size_t bytes = 0;
        for (const auto& l : g.w2) bytes += layer_bytes(l);
        engines.push_back({"qgan W2A8", [&] { g.run_w2a8(); }, bytes, {}, {}});
      }
#ifdef QGAN_HAVE_ONEDNN
      std::unique_ptr<qgan_bench::onednn_generator> onednn;
      std::vector<float> images;
      if (want_onednn) {
        qgan_bench::onednn_int8_scales scales;
        scales.input_scale.push_back(g.ranges[0].scale * 255.0f / 2.0f / 127.0f);
        for (std::size_t i = 1; i < g.ranges.size(); ++i) scales.input_scale.push_back(g.ranges[i].scale);
        onednn = std::make_unique<qgan_bench::onednn_generator>(onednn_specs(n), 1, 1, 1, qgan_bench::onednn_precision::int8, scales,
                                                                threads);
        images.resize(onednn->output_size_per_image());
        engines.push_back({"oneDNN int8", [&] { onednn->run(g.z.data(), images.data()); }, onednn->weight_bytes(), {}, {}});
      }
#else
      (void)want_onednn;
#endif
      for (auto& e : engines) e.run();  // plans, tilings, oneDNN's first-run setup
      for (int round = 0; round < rounds; ++round) {
        for (auto& e : engines) {
          e.run();
          auto start = clock_type::now();
          e.run();
          e.warm.push_back(std::chrono::duration<double>(clock_type::now() - start).count());
          evict();
          start = clock_type::now();
          e.run();
          e.cold.push_back(std::chrono::duration<double>(clock_type::now() - start).count());
        }
      }
      const double macs = n.multiply_adds();
      for (const auto& e : engines) {
        const double warm = median(e.warm), cold = median(e.cold);
        std::printf("| %dx%d | %d | %.2fG | %s | %zu | %.3f | %.3f | %.2f | %.0f |\n", size, size, ngf, macs / 1e9, e.name.c_str(),
                    e.weight_bytes, warm * 1e3, cold * 1e3, cold / warm, macs / warm / 1e9);
      }
      std::fflush(stdout);
    }
  }
  return evict.sink() == 12345u ? 1 : 0;
}
