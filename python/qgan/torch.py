"""Quantization-aware training in PyTorch with qgan's C++ quantizers.

    import qgan.torch as qt
    quantizers = qt.quantize_weights(G, bits=2, method="em", refit_every=1)
    ...train as usual: G's Conv2d / ConvTranspose2d / Linear weights are fake-quantized
    in every forward pass and their gradients pass the straight-through estimator...
    qt.export(G, "g.qgan", metadata={...})      # what `qgan sample` runs

Weights: each wrapped layer's `weight` becomes a parametrization
(torch.nn.utils.parametrize) whose forward calls the C++ policy through the bridge: the
grid is re-fitted on the live weights every `refit_every` optimizer updates (counted from
the weight's in-place version, so no global step counter is needed) and reused in
between; the gradient is masked outside the representable range (the C++
fake_quantize_ste mask). A learned grid (`learned="lsq"` or `"lsq+"`) starts from EM's
fit and then trains its own step (LSQ's gradient scale 1/sqrt(n * Qp)) and, for lsq+, its
offset; EM never re-fits it. The export writes its alpha and beta as a uniform grid and
records the method in the file's metadata.

Activations: `quantize_activations` fake-quantizes the inputs of chosen layers on the
8-bit grid of the C++ integer path (torch.fake_quantize_per_tensor_affine computes
clamp(nearbyint(x * (1/scale)) + zp, 0, 255), the C++ requantization), with ranges from
`calibrate_activations` (the C++ tool's rule and code: the 99.99th percentile of |x| over
generator runs on sampled z; the latent is signed, later inputs follow a ReLU).

Nothing here holds global state: every quantizer lives in its module, so
DistributedDataParallel runs it unchanged (ranks see identical weights, so identical fits).
"""
import math

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parametrize

import qgan

__all__ = [
    "WeightQuantizer", "LearnedGridQuantizer", "ActivationQuantizer", "quantize_weights",
    "weight_quantizers", "quantize_activations", "calibrate_activations", "export", "fit_of",
]


def _output_axis(module):
    # PyTorch layouts: Linear (out, in), Conv2d (out, in/groups, kh, kw) -> axis 0;
    # ConvTranspose2d (in, out/groups, kh, kw) -> axis 1, its output channels.
    return 1 if isinstance(module, nn.ConvTranspose2d) else 0


class _StraightThrough(torch.autograd.Function):
    """Forward: the quantizer's values. Backward: the gradient where mask is 1, else 0."""

    @staticmethod
    def forward(ctx, weight, values, mask):
        ctx.save_for_backward(mask)
        return values.clone()

    @staticmethod
    def backward(ctx, grad):
        (mask,) = ctx.saved_tensors
        return grad * mask, None, None


class WeightQuantizer(nn.Module):
    """Fake-quantizes a weight with a C++ policy (a parametrization; see the module doc)."""

    def __init__(self, bits, method="em", axis=None, refit_every=1, threads=1):
        super().__init__()
        if refit_every < 1:
            raise ValueError("refit_every must be at least 1")
        self.bits, self.method, self.axis = bits, method, axis
        self.refit_every, self.threads = refit_every, threads
        self.fit = None
        self.refits = 0
        self._version = None
        self._updates = 0
        self._cached = None

    def extra_repr(self):
        return f"bits={self.bits}, method={self.method}, axis={self.axis}, refit_every={self.refit_every}"

    def _refresh(self, weight):
        w = weight.detach().contiguous()
        version = weight._version
        changed = version != self._version
        if changed and self._version is not None:
            self._updates += 1
        self._version = version
        if self.fit is None or tuple(self.fit.shape) != tuple(w.shape) or self._updates >= self.refit_every:
            self.fit = qgan.fit(w, self.bits, self.method, self.axis, self.threads)
            self.refits += 1
            self._updates = 0
            changed = True
        if changed or self._cached is None:
            values = torch.empty_like(w)
            mask = torch.empty(w.shape, dtype=torch.uint8)
            qgan.requantize(w, self.fit, out=values, mask=mask)
            self._cached = (values, mask.to(w.dtype))
        return self._cached

    def forward(self, weight):
        values, mask = self._refresh(weight)
        return _StraightThrough.apply(weight, values, mask)

    def export_fit(self, weight):
        """The grid the last forward pass used for this weight."""
        self._refresh(weight)
        return self.fit


class _RoundSTE(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        return torch.round(x)  # half to even, as the C++ encode's nearbyint

    @staticmethod
    def backward(ctx, grad):
        return grad


def _grad_scale(x, scale):
    # LSQ's trick: the value of x with its gradient multiplied by `scale`.
    return (x - x * scale).detach() + x * scale


class LearnedGridQuantizer(nn.Module):
    """A uniform grid alpha*z + beta per channel whose alpha (LSQ) and beta (LSQ+) train.

    Started from EM's fit of the first weight it sees; EM never re-fits it afterwards.
    Codes are clamp(round((w - beta) / alpha), 0, 2^k - 1) in float32, the C++ encode of a
    uniform grid, so the exported file decodes to what was trained.
    """

    def __init__(self, bits, axis=None, learn_offset=False, init_method="em+", threads=1):
        super().__init__()
        self.bits, self.axis, self.learn_offset = bits, axis, learn_offset
        self.method = "lsq+" if learn_offset else "lsq"
        self.init_method, self.threads = init_method, threads
        self.alpha = nn.Parameter(torch.empty(0))
        self.beta = nn.Parameter(torch.empty(0), requires_grad=learn_offset)
        self.initialized = False

    def extra_repr(self):
        return f"bits={self.bits}, axis={self.axis}, method={self.method}"

    def _broadcast_shape(self, weight):
        shape = [1] * weight.dim()
        if self.axis is not None:
            shape[self.axis] = weight.shape[self.axis]
        return shape

    def initialize(self, weight):
        fit = qgan.fit(weight.detach().contiguous(), self.bits, self.init_method, self.axis, self.threads)
        if fit.policy not in ("em", "minmax"):
            raise ValueError(f"a learned grid starts from a uniform grid; {self.init_method} is {fit.policy}")
        params = torch.from_numpy(fit.params.copy())
        with torch.no_grad():
            self.alpha.data = params[:, 0].clone()
            self.beta.data = params[:, 1].clone()
        self.initialized = True

    def forward(self, weight):
        if not self.initialized:
            self.initialize(weight)
        levels = 2 ** self.bits - 1
        shape = self._broadcast_shape(weight)
        per_channel = weight.numel() // self.alpha.numel()
        g = 1.0 / math.sqrt(per_channel * levels)
        alpha = _grad_scale(self.alpha, g).view(shape)
        beta = (_grad_scale(self.beta, g) if self.learn_offset else self.beta).view(shape)
        z = torch.clamp(_RoundSTE.apply((weight - beta) / alpha), 0, levels)
        return alpha * z + beta

    def export_fit(self, weight):
        alpha = self.alpha.detach().contiguous().numpy()
        beta = self.beta.detach().contiguous().numpy()
        return qgan.uniform_grid(alpha, beta, self.bits, list(weight.shape), self.axis)


def quantize_weights(model, bits=2, method="em", per_channel=True, refit_every=1, layers=None,
                     skip=(), learned=None, threads=1):
    """Wraps the weights of every Conv2d, ConvTranspose2d and Linear of `model`.

    layers: {module name: {"bits": b, "method": m, ...}} overrides per layer; skip: names
    left in float. learned: None, "lsq" or "lsq+". Returns {module name: quantizer}.
    """
    layers = dict(layers or {})
    wrapped = {}
    for name, module in model.named_modules():
        if not isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)) or name in skip:
            continue
        if parametrize.is_parametrized(module, "weight"):
            raise ValueError(f"{name}.weight is already parametrized")
        options = dict(bits=bits, method=method, refit_every=refit_every, learned=learned,
                       per_channel=per_channel)
        options.update(layers.pop(name, {}))
        axis = _output_axis(module) if options["per_channel"] else None
        if options["learned"]:
            quantizer = LearnedGridQuantizer(options["bits"], axis, options["learned"] == "lsq+",
                                             threads=threads)
        else:
            quantizer = WeightQuantizer(options["bits"], options["method"], axis,
                                        options["refit_every"], threads)
        parametrize.register_parametrization(module, "weight", quantizer, unsafe=True)
        wrapped[name] = quantizer
    if layers:
        raise ValueError(f"no Conv2d/ConvTranspose2d/Linear named {sorted(layers)} in the model")
    if learned:
        # The learned grid's parameters are created on first use: run one forward pass
        # (or call quantizer.initialize) before building the optimizer.
        for name, quantizer in wrapped.items():
            module = model.get_submodule(name)
            quantizer.initialize(module.parametrizations.weight.original)
    return wrapped


def weight_quantizers(model):
    """{module name: quantizer} of every parametrized weight."""
    out = {}
    for name, module in model.named_modules():
        if parametrize.is_parametrized(module, "weight"):
            out[name] = module.parametrizations.weight[0]
    return out


def fit_of(model, name):
    """The qgan.Fit a wrapped layer's weight runs with now."""
    module = model.get_submodule(name)
    return module.parametrizations.weight[0].export_fit(module.parametrizations.weight.original)


class ActivationQuantizer(nn.Module):
    """x -> scale * (clamp(nearbyint(x / scale) + zp, 0, 255) - zp), STE inside the range."""

    def __init__(self, scale, zero_point):
        super().__init__()
        self.scale = float(scale)
        self.zero_point = int(zero_point)

    def extra_repr(self):
        return f"scale={self.scale}, zero_point={self.zero_point}"

    def forward(self, x):
        return torch.fake_quantize_per_tensor_affine(x, self.scale, self.zero_point, 0, 255)


def quantize_activations(model, ranges):
    """Fake-quantizes the input of each named module: ranges = {name: (scale, zero_point)}.

    Returns the hook handles (handle.remove() undoes one)."""
    handles = []
    for name, (scale, zero_point) in ranges.items():
        module = model.get_submodule(name)
        quantizer = ActivationQuantizer(scale, zero_point)
        module.add_module("input_quantizer", quantizer)
        handles.append(module.register_forward_pre_hook(
            lambda mod, inputs: (mod.input_quantizer(inputs[0]),) + tuple(inputs[1:])))
    return handles


@torch.no_grad()
def calibrate_activations(model, latents, names, signed=(), quantile=0.9999, batch=256):
    """Per-tensor 8-bit ranges of the inputs of `names` over runs of model on `latents`,
    by the C++ tool's rule (qgan.clipped_activation_range): |x| clipped at its `quantile`;
    inputs listed in `signed` get [-clip, clip] (the latent), the others [0, clip] (they
    follow a ReLU). Returns {name: (scale, zero_point)}."""
    values = {name: [] for name in names}
    hooks = [model.get_submodule(name).register_forward_pre_hook(
        lambda mod, inputs, name=name: values[name].append(inputs[0].detach().reshape(-1).clone()))
        for name in names]
    was_training = model.training
    model.eval()
    try:
        for first in range(0, latents.shape[0], batch):
            model(latents[first:first + batch])
    finally:
        for hook in hooks:
            hook.remove()
        model.train(was_training)
    return {name: qgan.clipped_activation_range(torch.cat(values[name]).numpy(), name in signed, quantile)
            for name in names}


def export(model, path, metadata=None, activation_ranges=None):
    """Writes `model` as a .qgan file: wrapped weights packed with the grid they run with
    now (codes from the C++ encode), every other float tensor of the state dict as float32,
    activation ranges under the generator loader's names ("<layer>.input_scale" and
    "<layer>.input_zero_point"). Integer buffers (BatchNorm's num_batches_tracked) are left
    out. Returns the qgan.Model written."""
    out = qgan.Model()
    quantizers = weight_quantizers(model)
    methods = set()
    for key, tensor in _plain_state_dict(model).items():
        layer, _, field = key.rpartition(".")
        if field == "weight" and layer in quantizers:
            weight = model.get_submodule(layer).parametrizations.weight.original.detach().contiguous()
            quantizer = quantizers[layer]
            fit = quantizer.export_fit(weight)
            out[key] = qgan.pack_codes(qgan.encode(weight, fit), fit)
            methods.add(f"{layer}:{quantizer.method}:{quantizer.bits}")
        elif tensor.dtype == torch.float32:
            out[key] = tensor.detach().contiguous().numpy()
    for name, (scale, zero_point) in (activation_ranges or {}).items():
        out[f"{name}.input_scale"] = np.array([scale], dtype=np.float32)
        out[f"{name}.input_zero_point"] = np.array([zero_point], dtype=np.float32)
    info = {"qgan.producer": f"qgan.torch {qgan.__version__}, torch {torch.__version__}",
            "qgan.weight_methods": " ".join(sorted(methods))}
    info.update(metadata or {})
    out.metadata = {str(k): str(v) for k, v in info.items()}
    out.write(path)
    return out


def _plain_state_dict(model):
    """The state dict under the names an unwrapped model has (parametrized weights as
    `<layer>.weight`, their fake-quantized values; learned grid params left out)."""
    state = {}
    for key, tensor in model.state_dict().items():
        if ".parametrizations.weight." in key:
            layer = key.split(".parametrizations.weight.")[0]
            if key.endswith(".original"):
                state[f"{layer}.weight"] = tensor
            continue
        state[key] = tensor
    return state
