// fit / encode / decode / fake_quantize / pack on NumPy arrays (bridge section "policies").
// Inputs are read in place and outputs written into caller arrays when given (`out=`), so a
// torch tensor's .numpy() view is never copied; the GIL is released while C++ works.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <cstring>
#include <optional>
#include <string>
#include <vector>

#include "arrays.hpp"
#include "fit.hpp"
#include "qgan/nn/packed/activations.hpp"
#include "qgan/pack/quantize.hpp"
#include "qgan/quant/policy_registry.hpp"
#include "qgan/quant/quantize.hpp"

namespace qgan_python {
namespace {

qgan::granularity grain_of(const std::optional<int>& axis) {
  if (!axis) return qgan::per_tensor{};
  return qgan::per_channel{*axis};
}

std::optional<int> axis_of(const qgan::granularity& grain) {
  if (const auto* channel = std::get_if<qgan::per_channel>(&grain)) return channel->axis;
  return std::nullopt;
}

qgan::quantize_options options_for(int bits, const std::optional<int>& axis, int threads, const char* name) {
  if (threads < 1) throw py::value_error(std::string(name) + ": threads must be at least 1");
  return qgan::quantize_options{.bits = bits, .grain = grain_of(axis), .name = name, .threads = threads};
}

// The params of channel c as the policy's own type.
template <class Q>
typename Q::params channel_params(const fit_result& fit, std::size_t channel) {
  return qgan::detail::policy_traits<Q>::read(fit.params.data() + channel * fit.per_channel(), fit.bits);
}

void require_codes_fit(std::span<const std::uint8_t> codes, int bits, const std::string& where) {
  const std::size_t levels = std::size_t{1} << bits;
  const auto bad = std::find_if(codes.begin(), codes.end(), [&](std::uint8_t c) { return c >= levels; });
  if (bad != codes.end()) {
    throw py::value_error(where + ": code " + std::to_string(*bad) + " at element " + std::to_string(bad - codes.begin()) +
                          " does not fit in " + std::to_string(bits) + " bits");
  }
}

void require_shape(const py::array& array, const fit_result& fit, const std::string& where) {
  if (shape_of(array) != fit.shape) {
    throw py::value_error(where + ": has shape " + qgan::to_string(shape_of(array)) + " but the fit was for " +
                          qgan::to_string(fit.shape));
  }
}

py::array params_array(const fit_result& fit) {
  py::array_t<float> out({static_cast<py::ssize_t>(fit.channels()), static_cast<py::ssize_t>(fit.per_channel())});
  std::copy(fit.params.begin(), fit.params.end(), out.mutable_data());
  return out;
}

fit_result fit_values(const py::array& values, int bits, const std::string& method, const std::optional<int>& axis,
                      int threads) {
  const std::span<const float> data = input_span<float>(values, "fit(values)");
  const qgan::quantize_options options = options_for(bits, axis, threads, "values");
  fit_result fit{method, {}, bits, shape_of(values), options.grain, {}};
  const py::gil_scoped_release release;
  qgan::with_method(method, [&](const auto& q) {
    using Q = std::decay_t<decltype(q)>;
    const qgan::quantized_codes<Q> codes = qgan::quantize_codes(q, data, fit.shape, options);
    fit.policy = qgan::detail::policy_traits<Q>::id;
    for (const auto& p : codes.params) qgan::detail::policy_traits<Q>::append(p, fit.params);
  });
  return fit;
}

py::array encode_values(const py::array& values, const fit_result& fit, const std::optional<py::array>& out) {
  const std::span<const float> data = input_span<float>(values, "encode(values)");
  require_shape(values, fit, "encode(values)");
  py::array codes_array = output_like<std::uint8_t>(out, values, "encode(out)");
  const std::span<std::uint8_t> codes = output_span<std::uint8_t>(codes_array, "encode(out)");
  const qgan::channel_layout layout = qgan::make_channel_layout(fit.shape, fit.grain);
  qgan::require_finite(data, "values", "encode needs finite values");
  {
    const py::gil_scoped_release release;  // reacquired before any Python object is touched
    qgan::with_policy(fit.policy, [&](const auto& q) {
      using Q = std::decay_t<decltype(q)>;
      for (std::size_t channel = 0; channel < layout.channels; ++channel) {
        const typename Q::params p = channel_params<Q>(fit, channel);
        qgan::detail::for_each_in_channel(layout, channel, [&](std::size_t at) {
          codes[at] = static_cast<std::uint8_t>(q.encode(data[at], p));
        });
      }
    });
  }
  return codes_array;
}

py::array decode_codes(const py::array& codes_array, const fit_result& fit, const std::optional<py::array>& out) {
  const std::span<const std::uint8_t> codes = input_span<std::uint8_t>(codes_array, "decode(codes)");
  require_shape(codes_array, fit, "decode(codes)");
  py::array values_array = output_like<float>(out, codes_array, "decode(out)");
  const std::span<float> values = output_span<float>(values_array, "decode(out)");
  const qgan::channel_layout layout = qgan::make_channel_layout(fit.shape, fit.grain);
  require_codes_fit(codes, fit.bits, "decode(codes)");
  {
    const py::gil_scoped_release release;
    for (std::size_t channel = 0; channel < layout.channels; ++channel) {
      const std::vector<float> levels =
          qgan::detail::channel_levels(fit.policy, fit.bits, fit.params.data() + channel * fit.per_channel());
      qgan::detail::for_each_in_channel(layout, channel, [&](std::size_t at) { values[at] = levels[codes[at]]; });
    }
  }
  return values_array;
}

py::tuple fake_quantize_values(const py::array& values, int bits, const std::string& method, const std::optional<int>& axis,
                               const std::optional<py::array>& out, const std::optional<py::array>& mask, int threads) {
  const std::span<const float> data = input_span<float>(values, "fake_quantize(values)");
  const qgan::quantize_options options = options_for(bits, axis, threads, "values");
  py::array out_array = output_like<float>(out, values, "fake_quantize(out)");
  py::array mask_array = output_like<std::uint8_t>(mask, values, "fake_quantize(mask)");
  const std::span<float> out_values = output_span<float>(out_array, "fake_quantize(out)");
  const std::span<std::uint8_t> out_mask = output_span<std::uint8_t>(mask_array, "fake_quantize(mask)");
  {
    const py::gil_scoped_release release;
    // Computed whole before anything is written: `out` may be `values` itself.
    const qgan::fake_quant_result result = qgan::with_method(method, [&](const auto& q) {
      return qgan::fake_quantize_ste(q, data, shape_of(values), options);
    });
    std::copy(result.values.begin(), result.values.end(), out_values.begin());
    std::copy(result.ste_mask.begin(), result.ste_mask.end(), out_mask.begin());
  }
  return py::make_tuple(out_array, mask_array);
}

py::tuple requantize_values(const py::array& values, const fit_result& fit, const std::optional<py::array>& out,
                            const std::optional<py::array>& mask) {
  const std::span<const float> data = input_span<float>(values, "requantize(values)");
  require_shape(values, fit, "requantize(values)");
  qgan::require_finite(data, "values", "requantize needs finite values");
  py::array out_array = output_like<float>(out, values, "requantize(out)");
  py::array mask_array = output_like<std::uint8_t>(mask, values, "requantize(mask)");
  const std::span<float> out_values = output_span<float>(out_array, "requantize(out)");
  const std::span<std::uint8_t> out_mask = output_span<std::uint8_t>(mask_array, "requantize(mask)");
  const qgan::channel_layout layout = qgan::make_channel_layout(fit.shape, fit.grain);
  {
    const py::gil_scoped_release release;
    qgan::with_policy(fit.policy, [&](const auto& q) {
      using Q = std::decay_t<decltype(q)>;
      for (std::size_t channel = 0; channel < layout.channels; ++channel) {
        const typename Q::params p = channel_params<Q>(fit, channel);
        const std::pair<float, float> range = qgan::representable_range(q, p);
        // Element by element, each read before it is written: `out` may be `values`.
        qgan::detail::for_each_in_channel(layout, channel, [&](std::size_t at) {
          const float v = data[at];
          out_mask[at] = v >= range.first && v <= range.second ? 1 : 0;
          out_values[at] = q.decode(q.encode(v, p), p);
        });
      }
    });
  }
  return py::make_tuple(out_array, mask_array);
}

qgan::packed_tensor pack_values(const py::array& values, int bits, const std::string& method, const std::optional<int>& axis,
                                int threads) {
  const std::span<const float> data = input_span<float>(values, "pack(values)");
  const qgan::quantize_options options = options_for(bits, axis, threads, "values");
  const py::gil_scoped_release release;
  return qgan::with_method(method, [&](const auto& q) { return qgan::quantize(q, data, shape_of(values), options); });
}

// A uniform grid given by its params (a learned step and offset): stored as EM's policy,
// whose params are exactly (alpha, beta) per channel.
fit_result uniform_grid(const py::array& alpha, const py::array& beta, int bits, const std::vector<std::int64_t>& shape,
                        const std::optional<int>& axis) {
  const std::span<const float> a = input_span<float>(alpha, "uniform_grid(alpha)");
  const std::span<const float> b = input_span<float>(beta, "uniform_grid(beta)");
  fit_result fit{"grid", qgan::policy_id::em, bits, shape, grain_of(axis), {}};
  if (bits < qgan::min_bits || bits > qgan::max_bits) throw py::value_error("uniform_grid: bits must be 1..8");
  const qgan::channel_layout layout = qgan::make_channel_layout(fit.shape, fit.grain, "uniform_grid");
  if (a.size() != layout.channels || b.size() != layout.channels) {
    throw py::value_error("uniform_grid: " + std::to_string(a.size()) + " alphas and " + std::to_string(b.size()) +
                          " betas for " + std::to_string(layout.channels) + " channels");
  }
  for (std::size_t c = 0; c < layout.channels; ++c) {
    if (!std::isfinite(a[c]) || !std::isfinite(b[c]) || a[c] == 0.0f) {
      throw py::value_error("uniform_grid: channel " + std::to_string(c) + " has alpha " + std::to_string(a[c]) +
                            " and beta " + std::to_string(b[c]) + " (need finite values and a non-zero alpha)");
    }
    fit.params.insert(fit.params.end(), {a[c], b[c]});
  }
  return fit;
}

qgan::packed_tensor pack_codes(const py::array& codes_array, const fit_result& fit) {
  const std::span<const std::uint8_t> codes = input_span<std::uint8_t>(codes_array, "pack_codes(codes)");
  require_shape(codes_array, fit, "pack_codes(codes)");
  require_codes_fit(codes, fit.bits, "pack_codes(codes)");
  qgan::packed_tensor packed;
  packed.shape = fit.shape;
  packed.bits = fit.bits;
  packed.policy = fit.policy;
  packed.grain = fit.grain;
  packed.params = fit.params;
  packed.codes.resize(qgan::pack::packed_size(codes.size(), fit.bits));
  qgan::simd::active_kernels().codec.pack_codes(codes.data(), codes.size(), fit.bits, packed.codes.data());
  packed.validate("pack_codes");
  return packed;
}

fit_result fit_of(const qgan::packed_tensor& packed) {
  return fit_result{"stored", packed.policy, packed.bits, packed.shape, packed.grain, packed.params};
}

py::array unpacked_codes(const qgan::packed_tensor& packed) {
  std::vector<py::ssize_t> shape(packed.shape.begin(), packed.shape.end());
  py::array_t<std::uint8_t> out(shape);
  qgan::simd::active_kernels().codec.unpack(packed.codes.data(), 0, packed.element_count(), packed.bits, out.mutable_data());
  return out;
}

py::array dequantized(const qgan::packed_tensor& packed, const std::optional<py::array>& out) {
  py::array target = output_array<float>(out, packed.shape, "dequantize(out)");
  const std::vector<float> values = qgan::dequantize(packed);
  std::memcpy(target.mutable_data(), values.data(), values.size() * sizeof(float));
  return target;
}

py::tuple shape_tuple(const qgan::shape_t& shape) {
  py::tuple t(shape.size());
  for (std::size_t i = 0; i < shape.size(); ++i) t[i] = shape[i];
  return t;
}

}  // namespace

void bind_policies(py::module_& m) {
  m.def("methods", [] {
    std::vector<std::string> names;
    for (const auto name : qgan::method_names()) names.emplace_back(name);
    return names;
  }, "The quantization methods by name: minmax log tanh em em+ lloyd.");

  py::class_<fit_result>(m, "Fit", "A policy's fitted params for every channel of one tensor shape.")
      .def_readonly("method", &fit_result::method)
      .def_property_readonly("policy", [](const fit_result& f) { return std::string(qgan::policy_name(f.policy)); })
      .def_readonly("bits", &fit_result::bits)
      .def_property_readonly("shape", [](const fit_result& f) { return shape_tuple(f.shape); })
      .def_property_readonly("axis", [](const fit_result& f) { return axis_of(f.grain); })
      .def_property_readonly("params", &params_array, "channels x params-per-channel float32 (a copy)")
      .def("levels", [](const fit_result& f) {
        py::array_t<float> out({static_cast<py::ssize_t>(f.channels()), static_cast<py::ssize_t>(std::size_t{1} << f.bits)});
        for (std::size_t c = 0; c < f.channels(); ++c) {
          const std::vector<float> levels = qgan::detail::channel_levels(f.policy, f.bits, f.params.data() + c * f.per_channel());
          std::copy(levels.begin(), levels.end(), out.mutable_data() + c * levels.size());
        }
        return out;
      }, "What each code decodes to, per channel.")
      .def("__repr__", [](const fit_result& f) {
        return "<qgan.Fit " + f.method + " (" + std::string(qgan::policy_name(f.policy)) + "), " + std::to_string(f.bits) +
               " bits, shape " + qgan::to_string(f.shape) + ", " + std::to_string(f.channels()) + " channel(s)>";
      });

  m.def("fit", &fit_values, py::arg("values").noconvert(), py::arg("bits"), py::arg("method") = "em",
        py::arg("axis") = py::none(), py::arg("threads") = 1,
        "Fits `method` to a float32 array per tensor (axis None) or per channel along `axis`.");
  m.def("encode", &encode_values, py::arg("values").noconvert(), py::arg("fit"), py::arg("out").noconvert() = py::none(),
        "Codes (uint8, the shape of values) under a fit; written into `out` when given.");
  m.def("decode", &decode_codes, py::arg("codes").noconvert(), py::arg("fit"), py::arg("out").noconvert() = py::none(),
        "Values (float32) of codes under a fit; written into `out` when given.");
  m.def("fake_quantize", &fake_quantize_values, py::arg("values").noconvert(), py::arg("bits"), py::arg("method") = "em",
        py::arg("axis") = py::none(), py::arg("out").noconvert() = py::none(), py::arg("mask").noconvert() = py::none(),
        py::arg("threads") = 1,
        "Fit, encode and decode in one call: returns (values, mask), mask 1 where the straight-through estimator passes "
        "the gradient (inside the representable range). `out` may be `values` itself.");
  m.def("requantize", &requantize_values, py::arg("values").noconvert(), py::arg("fit"),
        py::arg("out").noconvert() = py::none(), py::arg("mask").noconvert() = py::none(),
        "fake_quantize under an existing fit (no re-fit): returns (values, mask).");
  m.def("uniform_grid", &uniform_grid, py::arg("alpha").noconvert(), py::arg("beta").noconvert(), py::arg("bits"),
        py::arg("shape"), py::arg("axis") = py::none(),
        "A Fit for the uniform grid alpha*z + beta given per channel (a learned grid); stored as EM's policy.");
  m.def("activation_range", [](float low, float high) {
    const qgan::nn::packed::activation_range r = qgan::nn::packed::range_for(low, high);
    return py::make_tuple(r.scale, r.zero_point);
  }, py::arg("low"), py::arg("high"),
        "(scale, zero_point) of the 8-bit activation grid over [low, high] widened to hold 0, as the C++ integer path uses.");
  m.def("clipped_activation_range", [](const py::array& values, bool is_signed, double quantile) {
    const std::span<const float> data = input_span<float>(values, "clipped_activation_range(values)");
    std::vector<float> copy(data.begin(), data.end());  // the selection reorders its own copy
    qgan::nn::packed::activation_range r;
    {
      const py::gil_scoped_release release;
      r = qgan::nn::packed::clipped_range(std::move(copy), is_signed, quantile, "clipped_activation_range(values)");
    }
    return py::make_tuple(r.scale, r.zero_point);
  }, py::arg("values").noconvert(), py::arg("signed"), py::arg("quantile") = 0.9999,
        "(scale, zero_point) calibrated as `qgan calibrate` does: |x| clipped at its quantile, symmetric when signed.");

  py::class_<qgan::packed_tensor>(m, "PackedTensor", "A quantized tensor as a .qgan file stores it: bit-packed codes and params.")
      .def_property_readonly("shape", [](const qgan::packed_tensor& p) { return shape_tuple(p.shape); })
      .def_readonly("bits", &qgan::packed_tensor::bits)
      .def_property_readonly("policy", [](const qgan::packed_tensor& p) { return std::string(qgan::policy_name(p.policy)); })
      .def_property_readonly("axis", [](const qgan::packed_tensor& p) { return axis_of(p.grain); })
      .def_property_readonly("fit", &fit_of)
      .def_property_readonly("params", [](const qgan::packed_tensor& p) { return params_array(fit_of(p)); })
      .def_property_readonly("nbytes", [](const qgan::packed_tensor& p) { return p.codes.size(); }, "bytes of packed codes")
      .def("codes", &unpacked_codes, "The codes, one uint8 each, in the tensor's shape.")
      .def("dequantize", &dequantized, py::arg("out").noconvert() = py::none())
      .def("__repr__", [](const qgan::packed_tensor& p) {
        return "<qgan.PackedTensor " + std::string(qgan::policy_name(p.policy)) + ", " + std::to_string(p.bits) + " bits, shape " +
               qgan::to_string(p.shape) + ">";
      });
  m.def("pack", &pack_values, py::arg("values").noconvert(), py::arg("bits"), py::arg("method") = "em",
        py::arg("axis") = py::none(), py::arg("threads") = 1, "Fits and bit-packs a float32 array.");
  m.def("pack_codes", &pack_codes, py::arg("codes").noconvert(), py::arg("fit"),
        "A PackedTensor from codes and a fit (e.g. uniform_grid's), validated as the file writer would.");
}

}  // namespace qgan_python
