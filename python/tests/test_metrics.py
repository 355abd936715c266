"""The metrics through the bridge against NumPy/SciPy's formulas."""
import numpy as np
import pytest
import scipy.linalg

import qgan


def test_frechet_distance_matches_scipy():
    rng = np.random.default_rng(1)
    a = rng.normal(0, 1, (400, 6))
    b = rng.normal(0.3, 1.2, (300, 6))
    mu1, mu2 = a.mean(0), b.mean(0)
    s1, s2 = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * scipy.linalg.sqrtm(s1 @ s2).real)
    assert qgan.frechet_distance(a, b) == pytest.approx(expected, rel=1e-9)
    with pytest.raises(qgan.Error, match="differ"):
        qgan.frechet_distance(a, b[:, :5].copy())
    with pytest.raises(TypeError, match="float64"):
        qgan.frechet_distance(a.astype(np.float32), b)


def test_inception_score_and_psnr():
    logits = np.log(np.array([[0.9, 0.1], [0.1, 0.9]]))
    p = np.exp(logits)
    marginal = p.mean(0)
    expected = np.exp((p * (np.log(p) - np.log(marginal))).sum(1).mean())
    assert qgan.inception_score_from_logits(logits) == pytest.approx(expected, rel=1e-12)
    a = np.arange(256, dtype=np.uint8)
    b = a.copy()
    assert qgan.psnr_u8(a, b) == float("inf")
    b[0] += 16
    assert qgan.psnr_u8(a, b) == pytest.approx(10 * np.log10(255 ** 2 / (256 / 256)), rel=1e-12)


def test_sqnr_and_mse():
    x = np.linspace(-1, 1, 101).astype(np.float32)
    y = x + np.float32(0.01)
    assert qgan.mse(x, y) == pytest.approx(1e-4, rel=1e-4)
    assert qgan.sqnr_db(x, y) == pytest.approx(10 * np.log10(np.mean(x.astype(np.float64) ** 2) / 1e-4), rel=1e-3)


def test_search_rules_call_python_scores():
    tried = []

    def fid(bits):
        tried.append(bits)
        return {1: 80.0, 2: 19.0, 3: 16.0}[bits]

    result = qgan.lowest_passing_bits([1, 2, 3], fid, 20.0)
    assert result.bits == 2 and tried == [1, 2]
    assert [(s.bits, s.passed) for s in result.path] == [(1, False), (2, True)]
    with pytest.raises(ZeroDivisionError):
        qgan.lowest_passing_bits([1], lambda bits: 1 / 0, 1.0)  # the callback's error comes back
    layers = [qgan.LayerShape("deconv1", 409600, 256, 100, 256), qgan.LayerShape("deconv2", 524288, 128, 1024, 128),
              qgan.LayerShape("deconv3", 131072, 64, 512, 64), qgan.LayerShape("deconv4", 1024, 1, 256, 1)]
    assert qgan.pbgen_binarize(layers) == [False, True, True, False]
    budget = sum(qgan.packed_bytes(layer, 2) for layer in layers)
    allocation = qgan.layer_bits_under_budget(layers, [1, 2, 4], lambda l, i: [4.0, 1.0, 0.0][i] * (1 + (l != 1)), budget)
    assert allocation.exact and allocation.bytes <= budget and allocation.bits[1] == 1
