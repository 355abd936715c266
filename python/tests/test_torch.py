"""qgan.torch: the straight-through estimator, re-fitting, learned grids, 8-bit activation
fake-quant, and an export that the C++ tool runs to the images PyTorch computed."""
import subprocess

import numpy as np
import pytest
import torch
from torch import nn

import qgan
import qgan.torch as qt

LAYERS = ["deconv1", "deconv2", "deconv3", "deconv4"]


def shipped_generator(train_py, weights_dir):
    G = train_py.make_generator()
    state, _ = train_py.load_safetensors(str(weights_dir / "generator.safetensors"))
    G.load_state_dict(state)
    return G


def test_forward_is_the_cpp_fake_quant_and_backward_the_ste_mask():
    torch.manual_seed(0)
    layer = nn.ConvTranspose2d(8, 6, 4, 2, 1, bias=False)
    qt.quantize_weights(layer, bits=2, method="em")
    original = layer.parametrizations.weight.original
    values, mask = qgan.fake_quantize(original.detach().numpy().copy(), 2, "em", axis=1)
    np.testing.assert_array_equal(layer.weight.detach().numpy(), values)
    (layer.weight * 3.0).sum().backward()
    np.testing.assert_array_equal(original.grad.numpy(), 3.0 * mask.astype(np.float32))
    assert 0 < mask.sum() < mask.size  # some weights clip at 2 bits, most do not


def test_refit_every_n_updates():
    torch.manual_seed(0)
    model = nn.Linear(32, 16, bias=False)
    quantizer = qt.quantize_weights(model, bits=2, method="em", refit_every=3)[""]
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    for _ in range(7):
        optimizer.zero_grad()
        model(torch.randn(4, 32)).pow(2).sum().backward()
        optimizer.step()
    model(torch.randn(1, 32))
    assert quantizer.refits == 1 + 7 // 3  # the first fit, then every third update
    # Between re-fits the grid stays: the weight is requantized under the old fit.
    w = model.parametrizations.weight.original.detach().numpy().copy()
    expected, _ = qgan.requantize(w, quantizer.fit)
    np.testing.assert_array_equal(model.weight.detach().numpy(), expected)


def test_learned_grid_trains_alpha_and_exports_its_codes(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, bias=False))
    quantizer = qt.quantize_weights(model, bits=2, learned="lsq+")["0"]
    start = quantizer.alpha.detach().clone()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(3):
        optimizer.zero_grad()
        model(torch.randn(2, 3, 8, 8)).pow(2).mean().backward()
        assert quantizer.alpha.grad is not None and quantizer.beta.grad is not None
        optimizer.step()
    assert not torch.equal(start, quantizer.alpha.detach())
    path = tmp_path / "lsq.qgan"
    written = qt.export(model, path)
    back = qgan.Model.read(path)
    np.testing.assert_allclose(back.dequantize("0.weight"), model[0].weight.detach().numpy(), rtol=0, atol=1e-7)
    assert "0:lsq+:2" in written.metadata["qgan.weight_methods"]


def test_activation_fake_quant_is_the_cpp_grid():
    scale, zero_point = qgan.activation_range(-2.0, 2.0)
    x = torch.linspace(-3, 3, 1001)
    q = qt.ActivationQuantizer(scale, zero_point)(x)
    inverse = np.float32(1.0) / np.float32(scale)
    codes = np.clip(np.rint(x.numpy() * inverse) + zero_point, 0, 255)
    np.testing.assert_array_equal(q.numpy(), ((codes - zero_point) * np.float32(scale)).astype(np.float32))


def run_tool(tool, model_path, z, tmp_path, act):
    z_path, raw_path = tmp_path / "z.bin", tmp_path / f"{act}.bin"
    z.numpy().astype(np.float32).tofile(z_path)
    subprocess.run([tool, "sample", str(model_path), "--arch", "dcgan", "--act", act, "--z", str(z_path),
                    "--raw", str(raw_path), "-o", str(tmp_path / f"{act}.png")], check=True, capture_output=True)
    return np.fromfile(raw_path, np.float32).reshape(z.shape[0], 1, 32, 32)


def test_exported_generator_runs_in_cpp_as_in_pytorch(tmp_path, train_py, weights_dir, tool):
    G = shipped_generator(train_py, weights_dir)
    qt.quantize_weights(G, bits=2, method="em")
    G.eval()
    z = torch.randn(64, 100, 1, 1, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        expected = G(z).numpy()
    qt.export(G, tmp_path / "w2.qgan")
    error = np.abs(run_tool(tool, tmp_path / "w2.qgan", z, tmp_path, "fp32") - expected)
    # Same codes and params; BatchNorm folded and sums in another order: measured 4.1e-5.
    assert error.max() < 2e-4

    # 8-bit activations: the C++ integer path against PyTorch's fake-quant of the same grid.
    calibration = torch.randn(512, 100, 1, 1, generator=torch.Generator().manual_seed(9))
    ranges = qt.calibrate_activations(G, calibration, LAYERS, signed=["deconv1"])
    assert ranges["deconv1"][1] > 0 and all(ranges[n][1] == 0 for n in LAYERS[1:])
    qt.quantize_activations(G, ranges)
    with torch.no_grad():
        expected8 = G(z).numpy()
    qt.export(G, tmp_path / "w2a8.qgan", activation_ranges=ranges)
    error8 = np.abs(run_tool(tool, tmp_path / "w2a8.qgan", z, tmp_path, "int8") - expected8)
    # Exact integer sums in C++, float ones in PyTorch: an activation within a rounding
    # error of a level boundary can round the other way (measured: max 0.0067, mean 5.5e-6,
    # 0.2% of outputs off by more than 1e-3; one 8-bit pixel step is 0.0078).
    assert error8.max() < 0.03 and error8.mean() < 1e-4 and (error8 > 1e-3).mean() < 0.01
