"""The bridge's policy functions: same results as the C++ front doors, arrays in and out
without copies, refusals instead of silent conversions, C++ messages as Python errors."""
import numpy as np
import pytest
import torch

import qgan


def weights(shape=(64, 32, 4, 4), seed=0):
    return np.random.default_rng(seed).normal(0.0, 0.02, shape).astype(np.float32)


@pytest.mark.parametrize("method", qgan.methods())
@pytest.mark.parametrize("bits", [1, 2, 3, 4, 8])
@pytest.mark.parametrize("axis", [None, 0, 1])
def test_fit_encode_decode_equals_fake_quantize(method, bits, axis):
    if method == "log" and bits < 2:
        with pytest.raises(qgan.Error, match="needs bits >= 2|bits"):
            qgan.fit(weights(), bits, method, axis)
        return
    w = weights()
    fit = qgan.fit(w, bits, method, axis)
    codes = qgan.encode(w, fit)
    assert codes.dtype == np.uint8 and codes.shape == w.shape and codes.max() < 2 ** bits
    decoded = qgan.decode(codes, fit)
    values, mask = qgan.fake_quantize(w, bits, method, axis)
    np.testing.assert_array_equal(decoded, values)
    channels = 1 if axis is None else w.shape[axis]
    assert fit.params.shape[0] == channels and fit.levels().shape == (channels, 2 ** bits)
    # Each value decodes to one of its channel's levels.
    levels = fit.levels()
    moved = np.moveaxis(decoded, axis, 0).reshape(channels, -1) if axis is not None else decoded.reshape(1, -1)
    for c in range(channels):
        assert np.isin(moved[c], levels[c]).all()
    assert set(np.unique(mask)) <= {0, 1}
    # A re-quantization under the same fit is the same fake-quant.
    again, again_mask = qgan.requantize(w, fit)
    np.testing.assert_array_equal(again, values)
    np.testing.assert_array_equal(again_mask, mask)


def test_per_channel_axis_is_the_channel_axis():
    # Channel 3 along axis 1 scaled 100x: per-channel along axis 1 fits it apart.
    w = weights()
    w[:, 3] *= 100
    per_axis1 = qgan.fit(w, 2, "em", axis=1).params
    assert per_axis1[3, 0] > 20 * np.median(per_axis1[:, 0])
    per_axis0 = qgan.fit(w, 2, "em", axis=0).params
    assert per_axis0.shape == (64, 2)


def test_em_uses_every_state_and_beats_minmax():
    w = weights(seed=3)
    em, _ = qgan.fake_quantize(w, 2, "em")
    minmax, _ = qgan.fake_quantize(w, 2, "minmax")
    assert qgan.mse(w, em) < qgan.mse(w, minmax)
    codes = qgan.encode(w, qgan.fit(w, 2, "em"))
    assert all(count > 0 for count in qgan.code_histogram(codes, 2))


def test_outputs_are_written_in_place_numpy_and_torch():
    w = weights()
    out = np.empty_like(w)
    mask = np.empty(w.shape, np.uint8)
    values, m = qgan.fake_quantize(w, 2, "em", 1, out=out, mask=mask)
    assert np.shares_memory(values, out) and np.shares_memory(m, mask)
    t = torch.from_numpy(w.copy())
    t_out = torch.zeros_like(t)
    values, _ = qgan.fake_quantize(t, 2, "em", 1, out=t_out)
    assert np.shares_memory(values, t_out.numpy())
    np.testing.assert_array_equal(t_out.numpy(), out)
    # In place over the input itself.
    inplace = w.copy()
    qgan.fake_quantize(inplace, 2, "em", 1, out=inplace)
    np.testing.assert_array_equal(inplace, out)
    fit = qgan.fit(w, 2, "em", 1)
    codes = np.empty(w.shape, np.uint8)
    assert np.shares_memory(qgan.encode(w, fit, out=codes), codes)
    decoded = np.empty_like(w)
    assert np.shares_memory(qgan.decode(codes, fit, out=decoded), decoded)
    np.testing.assert_array_equal(decoded, out)


def test_wrong_dtype_or_layout_is_refused_not_copied():
    w = weights()
    with pytest.raises(TypeError, match="expected a float32 array, got dtype float64"):
        qgan.fit(w.astype(np.float64), 2)
    with pytest.raises(ValueError, match="not C-contiguous"):
        qgan.fit(w[:, ::2], 2)
    with pytest.raises(ValueError, match="not C-contiguous"):
        qgan.fit(np.asfortranarray(w[0, 0]), 2)
    with pytest.raises(TypeError, match="expected a NumPy array or a CPU torch tensor"):
        qgan.fit(w.tolist(), 2)
    with pytest.raises(ValueError, match="not contiguous"):
        qgan.fit(torch.from_numpy(w).transpose(0, 1), 2)
    with pytest.raises(TypeError, match="float32"):
        qgan.fit(torch.from_numpy(w).double(), 2)
    readonly = np.empty_like(w)
    readonly.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        qgan.fake_quantize(w, 2, out=readonly)
    with pytest.raises(ValueError, match="has shape"):
        qgan.fake_quantize(w, 2, out=np.empty((3, 3), np.float32))
    fit = qgan.fit(w, 2)
    with pytest.raises(ValueError, match="the fit was for"):
        qgan.encode(w[:10].copy(), fit)
    with pytest.raises(TypeError, match="uint8"):
        qgan.decode(np.zeros(w.shape, np.int32), fit)
    with pytest.raises(ValueError, match="does not fit in 2 bits"):
        qgan.decode(np.full(w.shape, 4, np.uint8), fit)


def test_cpp_errors_keep_their_message():
    w = weights()
    assert issubclass(qgan.Error, RuntimeError)
    with pytest.raises(qgan.Error, match="unknown method 'nope'"):
        qgan.fit(w, 2, "nope")
    with pytest.raises(qgan.Error, match="outside"):
        qgan.fit(w, 9)
    with pytest.raises(qgan.Error, match="axis 7 is out of range"):
        qgan.fit(w, 2, axis=7)
    w[1, 2, 3, 0] = np.nan
    with pytest.raises(qgan.Error, match="NaN"):
        qgan.fit(w, 2)


def test_pack_and_pack_codes():
    w = weights()
    packed = qgan.pack(w, 3, "em+", axis=1)
    assert packed.bits == 3 and packed.policy == "em" and packed.axis == 1 and packed.shape == w.shape
    assert packed.nbytes == (w.size * 3 + 7) // 8
    fit = packed.fit
    np.testing.assert_array_equal(packed.codes(), qgan.encode(w, fit))
    np.testing.assert_array_equal(packed.dequantize(), qgan.decode(packed.codes(), fit))
    again = qgan.pack_codes(packed.codes(), fit)
    np.testing.assert_array_equal(again.codes(), packed.codes())
    out = np.empty_like(w)
    assert np.shares_memory(packed.dequantize(out=out), out)
    with pytest.raises(ValueError, match=r"dequantize\(out\): has shape \[3\], expected"):
        packed.dequantize(out=np.empty(3, np.float32))
    with pytest.raises(ValueError, match=r"pack_codes\(codes\): code 8 at element 0 does not fit in 3 bits"):
        qgan.pack_codes(np.full(w.shape, 8, np.uint8), fit)


def test_uniform_grid_encodes_like_a_learned_grid():
    w = weights((8, 50))
    alpha = np.linspace(0.01, 0.02, 8).astype(np.float32)
    beta = -1.5 * alpha
    fit = qgan.uniform_grid(alpha, beta, 2, [8, 50], axis=0)
    codes = qgan.encode(w, fit)
    expected = np.clip(np.round((w - beta[:, None]) / alpha[:, None]), 0, 3)
    np.testing.assert_array_equal(codes, expected.astype(np.uint8))
    with pytest.raises(ValueError, match="non-zero alpha"):
        qgan.uniform_grid(np.zeros(8, np.float32), beta, 2, [8, 50], axis=0)
    with pytest.raises(ValueError, match="7 alphas"):
        qgan.uniform_grid(alpha[:7].copy(), beta, 2, [8, 50], axis=0)


def test_activation_range_is_the_cpp_rule():
    scale, zero_point = qgan.activation_range(0.0, 2.55)
    assert zero_point == 0 and abs(scale - 0.01) < 1e-7
    scale, zero_point = qgan.activation_range(-1.0, 1.0)
    # In float32, as C++ computes it: 1 / float32(2/255) is just under 127.5.
    expected_scale = np.float32(2.0) / np.float32(255.0)
    assert scale == pytest.approx(float(expected_scale), rel=1e-7)
    assert zero_point == int(np.rint(np.float32(1.0) / expected_scale)) == 127
    with pytest.raises(qgan.Error, match="not a finite interval"):
        qgan.activation_range(1.0, -1.0)


def test_clipped_activation_range_is_the_calibration_rule():
    x = np.random.default_rng(4).normal(0, 1, 10001).astype(np.float32)
    rank = int(0.9999 * x.size)  # as C++ computes it, in double
    clip = np.partition(np.abs(x), rank)[rank]
    assert qgan.clipped_activation_range(x, True) == qgan.activation_range(-clip, clip)
    assert qgan.clipped_activation_range(x, False) == qgan.activation_range(0.0, clip)
    assert qgan.clipped_activation_range(x, False, 1.0) == qgan.activation_range(0.0, np.abs(x).max())
    x[7] = np.nan
    with pytest.raises(qgan.Error, match=r"clipped_activation_range\(values\) is not finite"):
        qgan.clipped_activation_range(x, True)
    with pytest.raises(qgan.Error, match="quantile 1.5 is outside"):
        qgan.clipped_activation_range(np.ones(3, np.float32), True, 1.5)
    with pytest.raises(qgan.Error, match="no values"):
        qgan.clipped_activation_range(np.ones(0, np.float32), True)
