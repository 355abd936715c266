// oneDNN 2.x deconvolution primitives for the DCGAN generator (see onednn_generator.hpp).
// Written against oneDNN 2.6 (Debian 12's libdnnl-dev): the operation descriptors
// (deconvolution_forward::desc) and primitive_attr::set_output_scales used here were
// removed in oneDNN 3.0.
#include "onednn_generator.hpp"

#include <dnnl.hpp>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>

#if DNNL_VERSION_MAJOR != 2
#error "onednn_generator needs oneDNN 2.x (operation descriptors and output scales)"
#endif

namespace qgan_bench {

namespace {

using dnnl::memory;
using data_type = memory::data_type;
using format_tag = memory::format_tag;

using arg_map = std::unordered_map<int, memory>;

struct layer {
  dnnl::deconvolution_forward::primitive_desc pd;
  dnnl::deconvolution_forward primitive;
  memory src, weights, bias, dst;
  arg_map args;
};

struct reorder_step {
  dnnl::reorder primitive;
  memory from, to;
};

[[noreturn]] void fail(const std::string& message) {
  throw std::invalid_argument("onednn_generator: " + message);
}

int output_extent(const deconv_spec& spec, int in) {
  return (in - 1) * spec.stride - 2 * spec.pad + spec.kernel;
}

// Symmetric s8 per output channel: scale[o] = max over (i, kh, kw) of |w[i][o][kh][kw]| / 127
// (1 for an all-zero channel), codes round(w / scale) in the same (in, out, k, k) order.
struct quantized_weights {
  std::vector<std::int8_t> codes;
  std::vector<float> scale;
};

quantized_weights quantize_per_output_channel(const deconv_spec& spec) {
  const auto in = static_cast<std::size_t>(spec.in_channels);
  const auto out = static_cast<std::size_t>(spec.out_channels);
  const auto area = static_cast<std::size_t>(spec.kernel) * static_cast<std::size_t>(spec.kernel);
  quantized_weights q{std::vector<std::int8_t>(spec.weight.size()), std::vector<float>(out, 0.0f)};
  for (std::size_t i = 0; i < in; ++i) {
    for (std::size_t o = 0; o < out; ++o) {
      const float* block = spec.weight.data() + (i * out + o) * area;
      for (std::size_t k = 0; k < area; ++k) q.scale[o] = std::max(q.scale[o], std::fabs(block[k]));
    }
  }
  for (float& s : q.scale) s = s > 0.0f ? s / 127.0f : 1.0f;
  for (std::size_t i = 0; i < in; ++i) {
    for (std::size_t o = 0; o < out; ++o) {
      const std::size_t offset = (i * out + o) * area;
      for (std::size_t k = 0; k < area; ++k) {
        const float code = std::nearbyint(spec.weight[offset + k] / q.scale[o]);
        q.codes[offset + k] = static_cast<std::int8_t>(std::clamp(code, -127.0f, 127.0f));
      }
    }
  }
  return q;
}

void check_specs(const std::vector<deconv_spec>& layers, int batch, int in_height, int in_width,
                 onednn_precision precision, const onednn_int8_scales& scales, int threads) {
  if (layers.empty()) fail("no layers");
  if (batch < 1 || in_height < 1 || in_width < 1) fail("batch and input extent must be at least 1");
  if (threads < 1) fail("threads must be at least 1");
  int height = in_height;
  int width = in_width;
  for (std::size_t i = 0; i < layers.size(); ++i) {
    const deconv_spec& s = layers[i];
    const std::string name = "layer " + std::to_string(i);
    if (s.in_channels < 1 || s.out_channels < 1 || s.kernel < 1 || s.stride < 1 || s.pad < 0) {
      fail(name + ": channels, kernel and stride must be at least 1, pad at least 0");
    }
    if (i > 0 && s.in_channels != layers[i - 1].out_channels) {
      fail(name + ": " + std::to_string(s.in_channels) + " input channels, the previous layer has " +
           std::to_string(layers[i - 1].out_channels) + " outputs");
    }
    const std::size_t weight_count = static_cast<std::size_t>(s.in_channels) *
                                     static_cast<std::size_t>(s.out_channels) *
                                     static_cast<std::size_t>(s.kernel) * static_cast<std::size_t>(s.kernel);
    if (s.weight.size() != weight_count) {
      fail(name + ": weight has " + std::to_string(s.weight.size()) + " values, expected " +
           std::to_string(weight_count));
    }
    if (s.bias.size() != static_cast<std::size_t>(s.out_channels)) {
      fail(name + ": bias has " + std::to_string(s.bias.size()) + " values, expected " +
           std::to_string(s.out_channels));
    }
    // int8 hands every layer but the last to the next as u8 with zero point 0.
    if (s.relu != (i + 1 < layers.size())) fail(name + ": every layer but the last has ReLU, the last tanh");
    height = output_extent(s, height);
    width = output_extent(s, width);
    if (height < 1 || width < 1) fail(name + ": empty output");
  }
  if (precision == onednn_precision::int8) {
    if (scales.input_scale.size() != layers.size()) {
      fail("int8 needs one input scale per layer: " + std::to_string(scales.input_scale.size()) + " for " +
           std::to_string(layers.size()) + " layers");
    }
    for (const float s : scales.input_scale) {
      if (!(s > 0.0f) || !std::isfinite(s)) fail("input scales must be positive and finite");
    }
  }
}

}  // namespace

struct onednn_generator::state {
  dnnl::engine engine{dnnl::engine::kind::cpu, 0};
  dnnl::stream stream{engine};
  int threads = 1;
  std::vector<layer> layers;
  std::vector<std::optional<reorder_step>> between;  ///< between[i]: layer i's dst -> layer i+1's src
  reorder_step input, output;
  memory::dims output_dims;
};

onednn_generator::onednn_generator(const std::vector<deconv_spec>& specs, int batch, int in_height, int in_width,
                                   onednn_precision precision, const onednn_int8_scales& scales, int threads) {
  check_specs(specs, batch, in_height, in_width, precision, scales, threads);
  // oneDNN sizes its thread partitioning when primitives are created: threads first.
  omp_set_num_threads(threads);
  state_ = std::make_unique<state>();
  state& st = *state_;
  st.threads = threads;
  const bool int8 = precision == onednn_precision::int8;

  memory::dim height = in_height;
  memory::dim width = in_width;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const deconv_spec& s = specs[i];
    const bool last = i + 1 == specs.size();
    const memory::dim out_height = output_extent(s, static_cast<int>(height));
    const memory::dim out_width = output_extent(s, static_cast<int>(width));
    const memory::dims src_dims{batch, s.in_channels, height, width};
    // Deconvolution weights are (OC, IC, KH, KW) logically; PyTorch's (in, out, kh, kw)
    // storage of them is oneDNN's iohw.
    const memory::dims weight_dims{s.out_channels, s.in_channels, s.kernel, s.kernel};
    const memory::dims bias_dims{s.out_channels};
    const memory::dims dst_dims{batch, s.out_channels, out_height, out_width};

    const data_type src_type = !int8 ? data_type::f32 : i == 0 ? data_type::s8 : data_type::u8;
    const data_type weight_type = int8 ? data_type::s8 : data_type::f32;
    const data_type dst_type = int8 && !last ? data_type::u8 : data_type::f32;

    const dnnl::deconvolution_forward::desc desc(
        dnnl::prop_kind::forward_inference, dnnl::algorithm::deconvolution_direct,
        memory::desc(src_dims, src_type, format_tag::any), memory::desc(weight_dims, weight_type, format_tag::any),
        memory::desc(bias_dims, data_type::f32, format_tag::x), memory::desc(dst_dims, dst_type, format_tag::any),
        {s.stride, s.stride}, {s.pad, s.pad}, {s.pad, s.pad});

    dnnl::primitive_attr attr;
    std::optional<quantized_weights> q;
    if (int8) {
      q = quantize_per_output_channel(s);
      const float in_scale = scales.input_scale[i];
      const float out_scale = last ? 1.0f : scales.input_scale[i + 1];
      std::vector<float> output_scales(static_cast<std::size_t>(s.out_channels));
      for (std::size_t o = 0; o < output_scales.size(); ++o) output_scales[o] = in_scale * q->scale[o] / out_scale;
      attr.set_output_scales(1 << 1, output_scales);  // per dst channel (dim 1)
    }
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, s.relu ? dnnl::algorithm::eltwise_relu : dnnl::algorithm::eltwise_tanh, 0.0f, 0.0f);
    attr.set_post_ops(ops);

    layer l;
    l.pd = dnnl::deconvolution_forward::primitive_desc(desc, attr, st.engine);
    l.primitive = dnnl::deconvolution_forward(l.pd);
    l.src = i == 0 ? memory(l.pd.src_desc(), st.engine) : memory();
    l.weights = memory(l.pd.weights_desc(), st.engine);
    l.bias = memory(l.pd.bias_desc(), st.engine);
    l.dst = memory(l.pd.dst_desc(), st.engine);

    // Weights: PyTorch's (in, out, k, k) as iohw, reordered once into oneDNN's layout (for
    // s8 with an s8 source that reorder also computes oneDNN's compensation term).
    if (int8) {
      memory user(memory::desc(weight_dims, data_type::s8, format_tag::iohw), st.engine, q->codes.data());
      dnnl::reorder(user, l.weights).execute(st.stream, user, l.weights);
    } else {
      memory user(memory::desc(weight_dims, data_type::f32, format_tag::iohw), st.engine,
                  const_cast<float*>(s.weight.data()));
      dnnl::reorder(user, l.weights).execute(st.stream, user, l.weights);
    }
    auto* bias = static_cast<float*>(l.bias.get_data_handle());
    for (std::size_t o = 0; o < s.bias.size(); ++o) {
      // oneDNN 2.x int8: dst = post_ops(output_scale * (s32 accumulator + bias)).
      bias[o] = int8 ? s.bias[o] / (scales.input_scale[i] * q->scale[o]) : s.bias[o];
    }
    st.stream.wait();
    st.layers.push_back(std::move(l));
    height = out_height;
    width = out_width;
  }

  // Chain the layers: a layer reads the previous one's dst directly when their chosen
  // layouts agree, through a reorder otherwise.
  st.between.resize(st.layers.size() - 1);
  for (std::size_t i = 0; i + 1 < st.layers.size(); ++i) {
    layer& next = st.layers[i + 1];
    if (st.layers[i].pd.dst_desc() == next.pd.src_desc()) {
      next.src = st.layers[i].dst;
    } else {
      next.src = memory(next.pd.src_desc(), st.engine);
      st.between[i] = reorder_step{dnnl::reorder(st.layers[i].dst, next.src), st.layers[i].dst, next.src};
    }
  }
  for (layer& l : st.layers) {
    l.args = {{DNNL_ARG_SRC, l.src}, {DNNL_ARG_WEIGHTS, l.weights}, {DNNL_ARG_BIAS, l.bias}, {DNNL_ARG_DST, l.dst}};
  }

  // User memory: NCHW f32, its handle set on every run.
  const memory::desc z_desc({batch, specs.front().in_channels, in_height, in_width}, data_type::f32, format_tag::nchw);
  st.input.from = memory(z_desc, st.engine, DNNL_MEMORY_NONE);
  st.input.to = st.layers.front().src;
  dnnl::primitive_attr quantize;
  if (int8) quantize.set_output_scales(0, {1.0f / scales.input_scale.front()});
  st.input.primitive = dnnl::reorder(
      dnnl::reorder::primitive_desc(st.engine, z_desc, st.engine, st.input.to.get_desc(), quantize));

  st.output_dims = {batch, specs.back().out_channels, height, width};
  st.output.from = st.layers.back().dst;
  st.output.to = memory(memory::desc(st.output_dims, data_type::f32, format_tag::nchw), st.engine, DNNL_MEMORY_NONE);
  st.output.primitive = dnnl::reorder(st.output.from, st.output.to);
}

onednn_generator::~onednn_generator() = default;
onednn_generator::onednn_generator(onednn_generator&&) noexcept = default;
onednn_generator& onednn_generator::operator=(onednn_generator&&) noexcept = default;

void onednn_generator::run(const float* z, float* images) {
  state& st = *state_;
  omp_set_num_threads(st.threads);
  st.input.from.set_data_handle(const_cast<float*>(z));
  st.output.to.set_data_handle(images);
  st.input.primitive.execute(st.stream, st.input.from, st.input.to);
  for (std::size_t i = 0; i < st.layers.size(); ++i) {
    st.layers[i].primitive.execute(st.stream, st.layers[i].args);
    if (i < st.between.size() && st.between[i]) {
      st.between[i]->primitive.execute(st.stream, st.between[i]->from, st.between[i]->to);
    }
  }
  st.output.primitive.execute(st.stream, st.output.from, st.output.to);
  st.stream.wait();
}

std::size_t onednn_generator::layer_count() const { return state_->layers.size(); }

void onednn_generator::run_layer(std::size_t i) {
  state& st = *state_;
  if (i >= st.layers.size()) fail("run_layer: no layer " + std::to_string(i));
  omp_set_num_threads(st.threads);
  st.layers[i].primitive.execute(st.stream, st.layers[i].args);
  st.stream.wait();
}

std::string onednn_generator::implementation(std::size_t i) const {
  if (i >= state_->layers.size()) fail("implementation: no layer " + std::to_string(i));
  return state_->layers[i].pd.impl_info_str();
}

std::size_t onednn_generator::weight_bytes() const {
  std::size_t bytes = 0;
  for (const layer& l : state_->layers) bytes += l.pd.weights_desc().get_size();
  return bytes;
}

std::size_t onednn_generator::inter_layer_reorders() const {
  return static_cast<std::size_t>(
      std::count_if(state_->between.begin(), state_->between.end(), [](const auto& r) { return r.has_value(); }));
}

std::size_t onednn_generator::output_size_per_image() const {
  const memory::dims& d = state_->output_dims;
  return static_cast<std::size_t>(d[1] * d[2] * d[3]);
}

}  // namespace qgan_bench
