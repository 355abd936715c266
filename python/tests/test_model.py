"""Whole models through the bridge: the library's model API, .qgan files, and the same
bytes as the qgan tool."""
import subprocess

import numpy as np
import pytest

import qgan


def test_quantize_safetensors_writes_the_tools_bytes(tmp_path, weights_dir, tool):
    source = weights_dir / "generator.safetensors"
    ours = tmp_path / "bridge.qgan"
    theirs = tmp_path / "tool.qgan"
    size = qgan.quantize_safetensors(source, ours, method="em", bits=2, per_channel=True, arch="dcgan")
    subprocess.run([tool, "quantize", str(source), "-o", str(theirs), "--method", "em", "--bits", "2",
                    "--per-channel", "--arch", "dcgan"], check=True, capture_output=True)
    assert size == ours.stat().st_size
    assert ours.read_bytes() == theirs.read_bytes()


def test_model_in_memory_equals_the_file(tmp_path, weights_dir):
    source = weights_dir / "generator.safetensors"
    model = qgan.quantize_model(source, method="em+", bits=3, per_channel=True, arch="dcgan",
                                bits_for=[("deconv4*", 8)], keep=["deconv1.weight"])
    path = tmp_path / "m.qgan"
    model.write(path)
    back = qgan.Model.read(path)
    assert back.names() == model.names()
    assert back.metadata == model.metadata and back.metadata["qgan.method"] == "em+"
    assert isinstance(back["deconv2.weight"], qgan.PackedTensor) and back["deconv2.weight"].bits == 3
    assert back["deconv4.weight"].bits == 8
    assert isinstance(back["deconv1.weight"], np.ndarray)
    floats = qgan.read_safetensors(source)
    np.testing.assert_array_equal(back["deconv1.weight"], floats["deconv1.weight"])
    # The decoded weights are the policy's fake-quant of the originals.
    expected, _ = qgan.fake_quantize(floats["deconv2.weight"], 3, "em+", axis=1)
    np.testing.assert_array_equal(back.dequantize("deconv2.weight"), expected)


def test_model_built_in_python_round_trips(tmp_path):
    w = np.random.default_rng(0).normal(0, 0.02, (16, 8, 4, 4)).astype(np.float32)
    model = qgan.Model()
    model["conv.weight"] = qgan.pack(w, 2, "em", axis=0)
    model["bn.bias"] = np.linspace(-1, 1, 16).astype(np.float32)
    model.metadata = {"qgan.note": "built in Python"}
    path = tmp_path / "py.qgan"
    model.write(path)
    back = qgan.Model.read(path)
    assert "conv.weight" in back and len(back) == 2
    np.testing.assert_array_equal(back["conv.weight"].codes(), model["conv.weight"].codes())
    np.testing.assert_array_equal(back["bn.bias"], model["bn.bias"])
    assert back.metadata == {"qgan.note": "built in Python"}
    with pytest.raises(TypeError):
        back.metadata["qgan.note"] = "lost"  # a view: this would otherwise change a copy
    back.metadata = {**back.metadata, "qgan.other": "kept"}
    assert back.metadata["qgan.other"] == "kept"
    assert back.source == str(path)
    with pytest.raises(KeyError):
        back["missing"]
    with pytest.raises(TypeError, match="PackedTensor or a float32"):
        model["x"] = [1.0, 2.0]
    with pytest.raises(qgan.Error, match="'nan.weight'.*NaN"):
        model["nan.weight"] = np.array([1.0, np.nan], np.float32)


def test_damaged_files_are_refused_by_name(tmp_path):
    model = qgan.Model()
    model["w"] = qgan.pack(np.linspace(-1, 1, 64).astype(np.float32), 2)
    path = tmp_path / "ok.qgan"
    model.write(path)
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF  # a code byte: the payload checksum no longer matches
    damaged = tmp_path / "damaged.qgan"
    damaged.write_bytes(bytes(data))
    with pytest.raises(qgan.Error, match="damaged.qgan"):
        qgan.Model.read(damaged)
    truncated = tmp_path / "truncated.qgan"
    truncated.write_bytes(bytes(data[:40]))
    with pytest.raises(qgan.Error, match="truncated.qgan"):
        qgan.Model.read(truncated)
    with pytest.raises(qgan.Error, match="missing.qgan"):
        qgan.Model.read(tmp_path / "missing.qgan")


def test_a_failed_write_leaves_the_old_file(tmp_path):
    path = tmp_path / "keep.qgan"
    path.write_bytes(b"precious")
    with pytest.raises(qgan.Error):
        qgan.quantize_safetensors(tmp_path / "no_such.safetensors", path)
    assert path.read_bytes() == b"precious"
