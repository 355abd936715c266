"""qgan for Python: the C++ quantizer policies, .qgan model files and metrics.

A thin skin over the C++ library (the `_qgan` extension built with QGAN_BUILD_PYTHON):
every fit, code and file comes from the same C++ code the `qgan` tool runs, never from
a second implementation. Arrays go in and out without copies: float32 (codes: uint8),
C-contiguous NumPy arrays or CPU torch tensors; anything else is refused with a
message rather than copied behind your back. `out=` arguments are written in place.

    import qgan
    fit = qgan.fit(w, bits=2, method="em", axis=0)       # per output channel
    codes = qgan.encode(w, fit); back = qgan.decode(codes, fit)
    values, mask = qgan.fake_quantize(w, 2, "em+", axis=0)  # mask: where the STE passes
    model = qgan.Model.read("g.qgan"); model["deconv1.weight"].dequantize()

C++ errors arrive as qgan.Error (a RuntimeError) with the C++ message. The PyTorch
fine-tuning helpers live in qgan.torch.
"""
import numpy as _np

import _qgan
from _qgan import (  # noqa: F401  (re-exported)
    Error,
    Fit,
    LayerShape,
    Model,
    PackedTensor,
    __version__,
    activation_range,
    clipped_activation_range,
    layer_bits_under_budget,
    lowest_passing_bits,
    methods,
    packed_bytes,
    pbgen_binarize,
    quantize_model,
    quantize_safetensors,
    read_safetensors,
    uniform_grid,
)

__all__ = [
    "Error", "Fit", "LayerShape", "clipped_activation_range", "layer_bits_under_budget", "lowest_passing_bits", "packed_bytes",
    "pbgen_binarize", "Model", "PackedTensor", "activation_range", "methods", "quantize_model",
    "quantize_safetensors", "read_safetensors", "uniform_grid", "fit", "encode", "decode",
    "fake_quantize", "requantize", "pack", "pack_codes", "mse", "sqnr_db", "code_histogram", "psnr_u8",
    "frechet_distance", "inception_score_from_logits",
]


def _array(x, name):
    """A NumPy view of x without copying: torch CPU tensors through .numpy()."""
    if isinstance(x, _np.ndarray) or x is None:
        return x
    module = type(x).__module__
    if module.startswith("torch"):
        if x.device.type != "cpu":
            raise ValueError(f"{name}: tensor is on {x.device}; the bridge reads CPU memory only")
        if not x.is_contiguous():
            raise ValueError(f"{name}: tensor is not contiguous; pass tensor.contiguous() explicitly")
        return x.detach().numpy()
    raise TypeError(f"{name}: expected a NumPy array or a CPU torch tensor, got {type(x).__name__}")


def fit(values, bits, method="em", axis=None, threads=1):
    """Fits `method` (see methods()) per tensor, or per channel along `axis`."""
    return _qgan.fit(_array(values, "fit(values)"), bits, method, axis, threads)


def encode(values, fit, out=None):
    """uint8 codes of values under `fit` (written into `out` when given)."""
    return _qgan.encode(_array(values, "encode(values)"), fit, _array(out, "encode(out)"))


def decode(codes, fit, out=None):
    """float32 values of codes under `fit` (written into `out` when given)."""
    return _qgan.decode(_array(codes, "decode(codes)"), fit, _array(out, "decode(out)"))


def fake_quantize(values, bits, method="em", axis=None, out=None, mask=None, threads=1):
    """(values, mask): quantize-dequantize, and 1 where the straight-through gradient passes."""
    return _qgan.fake_quantize(_array(values, "fake_quantize(values)"), bits, method, axis,
                               _array(out, "fake_quantize(out)"), _array(mask, "fake_quantize(mask)"),
                               threads)


def requantize(values, fit, out=None, mask=None):
    """(values, mask) like fake_quantize, under an existing fit (no re-fit)."""
    return _qgan.requantize(_array(values, "requantize(values)"), fit, _array(out, "requantize(out)"),
                            _array(mask, "requantize(mask)"))


def pack(values, bits, method="em", axis=None, threads=1):
    """A PackedTensor (bit-packed codes and params), as a .qgan file stores it."""
    return _qgan.pack(_array(values, "pack(values)"), bits, method, axis, threads)


def pack_codes(codes, fit):
    """A PackedTensor from codes and a Fit (e.g. a learned grid from uniform_grid)."""
    return _qgan.pack_codes(_array(codes, "pack_codes(codes)"), fit)


def _arrays_first(native, *names):
    """native with its leading array arguments (named `names`) accepted as torch tensors."""
    def call(*args):
        arrays = [_array(a, f"{native.__name__}({n})") for a, n in zip(args, names)]
        return native(*arrays, *args[len(names):])
    call.__name__, call.__doc__ = native.__name__, native.__doc__
    return call


mse = _arrays_first(_qgan.mse, "reference", "reconstructed")
sqnr_db = _arrays_first(_qgan.sqnr_db, "reference", "reconstructed")
code_histogram = _arrays_first(_qgan.code_histogram, "codes")  # then bits
psnr_u8 = _arrays_first(_qgan.psnr_u8, "a", "b")
frechet_distance = _arrays_first(_qgan.frechet_distance, "features_a", "features_b")
inception_score_from_logits = _arrays_first(_qgan.inception_score_from_logits, "logits")
