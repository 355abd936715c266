#!/usr/bin/python3
"""Trains the reference DCGAN on Fashion-MNIST (32x32x1) and exports it for qgan.

One seeded command trains, in this order:
  1. C, a small Fashion-MNIST classifier (3 strided convs + BatchNorm + ReLU, Linear 2048->128,
     ReLU, Linear 128->10). Its 128 penultimate features (the output of `relu4`, i.e. after the
     ReLU that follows `fc1`) define FID-FMNIST; its softmax defines IS-FMNIST.
  2. G and D, the classic DCGAN of Radford et al. (nz = 100, ngf = ndf = 64), Adam 2e-4,
     betas (0.5, 0.999), batch 128, BCE loss.
then evaluates G in train-mode and eval-mode BatchNorm (re-estimating G's running statistics
when eval mode is clearly worse), and writes, with a safetensors writer of its own (json +
struct; Debian's torch has no safetensors module):
  generator.safetensors, discriminator.safetensors, classifier.safetensors   (state_dict names)
  golden.safetensors          fixed inputs with G/D/C outputs for checking C++ forward passes
  fid_reference.safetensors   mean and covariance of C's features on the 10,000 test images
  training_report.json        every number printed
Every file written is read back and compared with torch before the script reports success.

FID-FMNIST and IS-FMNIST are NOT Inception FID/IS: they use this script's own small
Fashion-MNIST classifier, so their values are comparable only with each other.

Run with Debian's interpreter and packages (python3-torch 1.13, python3-scipy,
libopenblas0-openmp, dataset-fashion-mnist):
  /usr/bin/python3 examples/dcgan/train.py                     # full run (see README.md)
  /usr/bin/python3 examples/dcgan/train.py --smoke --out /tmp/dcgan_smoke   # seconds
  /usr/bin/python3 examples/dcgan/train.py --bench 10          # time 10 training steps
"""
import argparse
import collections
import copy
import gzip
import json
import math
import os
import platform
import re
import struct
import sys
import tempfile
import time

import numpy as np
import scipy.linalg
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DATA_DIR = "/usr/share/datasets/fashion-mnist"
DEFAULT_OUT = os.path.join(HERE, "weights")

NZ = 100
NGF = 64
NDF = 64
FEATURE_DIM = 128
NUM_CLASSES = 10
BATCH = 128
SAMPLE_BATCH = 100  # batch used to generate evaluation samples (divides 5000 and 200)

# Defaults chosen from measured step times on the 2-core Zen 4 machine (see README.md).
DEFAULT_GAN_EPOCHS = 10
DEFAULT_CLS_EPOCHS = 6
DEFAULT_SEED = 2019
GOLDEN_SEED = 31337
GFLOPS_WARN = 20.0

ARCH_G = ("DCGAN generator, nn.Sequential: deconv1 ConvTranspose2d(100,256,4,1,0,bias=False) "
          "-> bn1 BatchNorm2d(256) -> relu1 -> deconv2 ConvTranspose2d(256,128,4,2,1,bias=False) "
          "-> bn2 BatchNorm2d(128) -> relu2 -> deconv3 ConvTranspose2d(128,64,4,2,1,bias=False) "
          "-> bn3 BatchNorm2d(64) -> relu3 -> deconv4 ConvTranspose2d(64,1,4,2,1,bias=False) "
          "-> tanh; z (N,100,1,1) -> (N,1,32,32) in [-1,1]; BatchNorm eps 1e-5")
ARCH_D = ("DCGAN discriminator, nn.Sequential: conv1 Conv2d(1,64,4,2,1,bias=False) -> "
          "lrelu1 LeakyReLU(0.2) -> conv2 Conv2d(64,128,4,2,1,bias=False) -> bn2 BatchNorm2d(128) "
          "-> lrelu2 LeakyReLU(0.2) -> conv3 Conv2d(128,256,4,2,1,bias=False) -> "
          "bn3 BatchNorm2d(256) -> lrelu3 LeakyReLU(0.2) -> conv4 Conv2d(256,1,4,1,0,bias=False) "
          "-> sigmoid; x (N,1,32,32) -> (N,1,1,1) probability of real; BatchNorm eps 1e-5")
ARCH_C = ("Fashion-MNIST classifier, nn.Sequential: conv1 Conv2d(1,32,4,2,1,bias=False) -> "
          "bn1 BatchNorm2d(32) -> relu1 -> conv2 Conv2d(32,64,4,2,1,bias=False) -> "
          "bn2 BatchNorm2d(64) -> relu2 -> conv3 Conv2d(64,128,4,2,1,bias=False) -> "
          "bn3 BatchNorm2d(128) -> relu3 -> flatten (C,H,W order, 2048) -> fc1 Linear(2048,128) "
          "-> relu4 -> fc2 Linear(128,10); FID-FMNIST feature = output of relu4 (128, >= 0); "
          "x (N,1,32,32) in [-1,1]; BatchNorm eps 1e-5")
PREPROCESSING = ("28x28 uint8 u padded by 2 pixels on each side with 0 (the background) to "
                 "32x32, then x = float32(u) / 127.5 - 1 in float32")
CLASS_NAMES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt",
               "Sneaker", "Bag", "Ankle boot"]


def log(message):
    print(message, flush=True)


class Clock:
    """Wall-clock since the start of the run, printed beside every progress line."""

    def __init__(self):
        self.start = time.perf_counter()

    def __call__(self):
        return time.perf_counter() - self.start

    def stamp(self):
        seconds = self()
        return "[%2d:%02d]" % (seconds // 60, seconds % 60)


# ---------------------------------------------------------------------------------------------
# Data
# ---------------------------------------------------------------------------------------------

def read_idx_images(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, count, rows, cols = struct.unpack(">IIII", data[:16])
    if magic != 2051 or (rows, cols) != (28, 28) or len(data) != 16 + count * rows * cols:
        raise ValueError("%s: not an IDX image file of 28x28 images (magic %d, %dx%d, %d bytes)"
                         % (path, magic, rows, cols, len(data)))
    return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols)


def read_idx_labels(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    magic, count = struct.unpack(">II", data[:8])
    if magic != 2049 or len(data) != 8 + count:
        raise ValueError("%s: not an IDX label file (magic %d, %d bytes)" % (path, magic, len(data)))
    return np.frombuffer(data, dtype=np.uint8, offset=8).copy()


def preprocess(images):
    """uint8 (N,28,28) -> float32 tensor (N,1,32,32) in [-1, 1]; see PREPROCESSING."""
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)), mode="constant", constant_values=0)
    x = padded.astype(np.float32) / np.float32(127.5) - np.float32(1.0)
    return torch.from_numpy(np.ascontiguousarray(x[:, None, :, :]))


def load_split(data_dir, split, limit=None):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx_images(os.path.join(data_dir, prefix + "-images-idx3-ubyte.gz"))
    labels = read_idx_labels(os.path.join(data_dir, prefix + "-labels-idx1-ubyte.gz"))
    if len(images) != len(labels):
        raise ValueError("%s: %d images but %d labels" % (split, len(images), len(labels)))
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return preprocess(images), torch.from_numpy(labels.astype(np.int64))


def batches(count, batch_size, generator, limit=None):
    """Index batches of a fresh permutation drawn from generator (the last batch may be short)."""
    order = torch.randperm(count, generator=generator)
    spans = list(range(0, count, batch_size))
    if limit is not None:
        spans = spans[:limit]
    for start in spans:
        yield order[start:start + batch_size]


# ---------------------------------------------------------------------------------------------
# Models
# ---------------------------------------------------------------------------------------------

def make_generator(nz=NZ, ngf=NGF):
    return nn.Sequential(collections.OrderedDict([
        ("deconv1", nn.ConvTranspose2d(nz, ngf * 4, 4, 1, 0, bias=False)),   # 1 -> 4
        ("bn1", nn.BatchNorm2d(ngf * 4)),
        ("relu1", nn.ReLU(inplace=True)),
        ("deconv2", nn.ConvTranspose2d(ngf * 4, ngf * 2, 4, 2, 1, bias=False)),  # 4 -> 8
        ("bn2", nn.BatchNorm2d(ngf * 2)),
        ("relu2", nn.ReLU(inplace=True)),
        ("deconv3", nn.ConvTranspose2d(ngf * 2, ngf, 4, 2, 1, bias=False)),  # 8 -> 16
        ("bn3", nn.BatchNorm2d(ngf)),
        ("relu3", nn.ReLU(inplace=True)),
        ("deconv4", nn.ConvTranspose2d(ngf, 1, 4, 2, 1, bias=False)),  # 16 -> 32
        ("tanh", nn.Tanh()),
    ]))


def make_discriminator(ndf=NDF):
    return nn.Sequential(collections.OrderedDict([
        ("conv1", nn.Conv2d(1, ndf, 4, 2, 1, bias=False)),  # 32 -> 16
        ("lrelu1", nn.LeakyReLU(0.2, inplace=True)),
        ("conv2", nn.Conv2d(ndf, ndf * 2, 4, 2, 1, bias=False)),  # 16 -> 8
        ("bn2", nn.BatchNorm2d(ndf * 2)),
        ("lrelu2", nn.LeakyReLU(0.2, inplace=True)),
        ("conv3", nn.Conv2d(ndf * 2, ndf * 4, 4, 2, 1, bias=False)),  # 8 -> 4
        ("bn3", nn.BatchNorm2d(ndf * 4)),
        ("lrelu3", nn.LeakyReLU(0.2, inplace=True)),
        ("conv4", nn.Conv2d(ndf * 4, 1, 4, 1, 0, bias=False)),  # 4 -> 1
        ("sigmoid", nn.Sigmoid()),
    ]))


def make_classifier():
    return nn.Sequential(collections.OrderedDict([
        ("conv1", nn.Conv2d(1, 32, 4, 2, 1, bias=False)),  # 32 -> 16
        ("bn1", nn.BatchNorm2d(32)),
        ("relu1", nn.ReLU(inplace=True)),
        ("conv2", nn.Conv2d(32, 64, 4, 2, 1, bias=False)),  # 16 -> 8
        ("bn2", nn.BatchNorm2d(64)),
        ("relu2", nn.ReLU(inplace=True)),
        ("conv3", nn.Conv2d(64, 128, 4, 2, 1, bias=False)),  # 8 -> 4
        ("bn3", nn.BatchNorm2d(128)),
        ("relu3", nn.ReLU(inplace=True)),
        ("flatten", nn.Flatten()),  # (N,128,4,4) -> (N,2048), C,H,W order
        ("fc1", nn.Linear(128 * 4 * 4, FEATURE_DIM)),
        ("relu4", nn.ReLU(inplace=True)),  # <- FID-FMNIST feature (N,128)
        ("fc2", nn.Linear(FEATURE_DIM, NUM_CLASSES)),
    ]))


def classifier_features_logits(C, x):
    """(features after relu4, logits after fc2); C must be in eval mode for metrics."""
    features = C[:-1](x)
    return features, C.fc2(features)


def dcgan_init(module):
    """Radford et al.: conv weights ~ N(0, 0.02); BatchNorm weight ~ N(1, 0.02), bias 0."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(module.weight, 0.0, 0.02)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)


def count_params(model):
    return sum(p.numel() for p in model.parameters())


# ---------------------------------------------------------------------------------------------
# Metrics
# ---------------------------------------------------------------------------------------------

@torch.no_grad()
def classifier_outputs(C, x, batch=500):
    C.eval()
    feats, logits = [], []
    for start in range(0, len(x), batch):
        f, l = classifier_features_logits(C, x[start:start + batch])
        feats.append(f)
        logits.append(l)
    return torch.cat(feats).double().numpy(), torch.cat(logits)


def gaussian_fit(features):
    features = np.asarray(features, dtype=np.float64)
    return features.mean(axis=0), np.cov(features, rowvar=False)  # unbiased (N-1)


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """||mu1-mu2||^2 + tr(S1 + S2 - 2 sqrt(S1 S2)), as in Heusel et al. / pytorch-fid."""
    diff = mu1 - mu2
    covmean, _ = scipy.linalg.sqrtm(sigma1.dot(sigma2), disp=False)
    if not np.isfinite(covmean).all():
        offset = np.eye(sigma1.shape[0]) * 1e-6
        covmean = scipy.linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(covmean):
        covmean = covmean.real
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2.0 * np.trace(covmean))


def inception_score_analogue(logits):
    """exp(E_x KL(p(y|x) || p(y))) over all samples in one split, from C's softmax."""
    logp = torch.log_softmax(logits.double(), dim=1)
    p = logp.exp()
    log_py = torch.log(p.mean(dim=0))
    kl = (p * (logp - log_py)).sum(dim=1)
    return float(torch.exp(kl.mean()))


@torch.no_grad()
def generate(G, z, mode, batch=SAMPLE_BATCH):
    """Samples of G for the latent codes z. mode "train" uses batch statistics (batches of
    `batch`) on a copy of G, so G's running statistics are left untouched."""
    model = copy.deepcopy(G) if mode == "train" else G
    model.train(mode == "train")
    out = torch.cat([model(z[s:s + batch]) for s in range(0, len(z), batch)])
    G.eval()
    return out


def fixed_z(count, seed):
    return torch.randn(count, NZ, 1, 1, generator=torch.Generator().manual_seed(seed))


def score_samples(C, samples, ref_mu, ref_sigma):
    feats, logits = classifier_outputs(C, samples)
    mu, sigma = gaussian_fit(feats)
    pred = logits.argmax(dim=1)
    histogram = torch.bincount(pred, minlength=NUM_CLASSES).tolist()
    return {"fid_fmnist": frechet_distance(mu, sigma, ref_mu, ref_sigma),
            "is_fmnist": inception_score_analogue(logits),
            "predicted_class_histogram": histogram}


@torch.no_grad()
def recalibrate_batchnorm(G, num_batches, batch_size, seed):
    """Resets G's BatchNorm running statistics and re-estimates them as the cumulative average
    (momentum=None) of batch statistics over num_batches batches of fresh z, in train mode."""
    bns = [m for m in G.modules() if isinstance(m, nn.BatchNorm2d)]
    momenta = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    G.train()
    generator = torch.Generator().manual_seed(seed)
    for _ in range(num_batches):
        G(torch.randn(batch_size, NZ, 1, 1, generator=generator))
    for m, momentum in zip(bns, momenta):
        m.momentum = momentum
    G.eval()


# ---------------------------------------------------------------------------------------------
# safetensors (written and read with json + struct)
# ---------------------------------------------------------------------------------------------

ST_DTYPES = {torch.float32: ("F32", np.float32), torch.float64: ("F64", np.float64),
             torch.int64: ("I64", np.int64)}
ST_NUMPY = {name: np_type for name, np_type in ST_DTYPES.values()}


def save_safetensors(path, tensors, metadata):
    """tensors: ordered name -> tensor. 8-byte types are laid out first (so every tensor stays
    aligned to its element size), then the rest, each group in the order given; the header lists
    tensors in data-offset order and is padded with spaces to a multiple of 8."""
    items = [(name, t.detach().cpu().contiguous()) for name, t in tensors.items()]
    items.sort(key=lambda item: -item[1].element_size())  # stable: keeps the given order
    header = {"__metadata__": {str(k): str(v) for k, v in metadata.items()}}
    data = bytearray()
    for name, tensor in items:
        if tensor.dtype not in ST_DTYPES:
            raise TypeError("%s: dtype %s is not exported" % (name, tensor.dtype))
        little = np.dtype(ST_DTYPES[tensor.dtype][1]).newbyteorder("<")
        payload = tensor.numpy().astype(little, copy=False).tobytes()
        header[name] = {"dtype": ST_DTYPES[tensor.dtype][0], "shape": list(tensor.shape),
                        "data_offsets": [len(data), len(data) + len(payload)]}
        data += payload
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * (-len(text) % 8)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        f.write(bytes(data))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return os.path.getsize(path)


def load_safetensors(path):
    """-> (ordered name -> tensor, metadata); checks the layout rules the C++ reader checks."""
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    if n % 8 or 8 + n > len(blob):
        raise ValueError("%s: bad header length %d" % (path, n))
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {})
    data = blob[8 + n:]
    tensors = collections.OrderedDict()
    end = 0
    for name, info in header.items():
        begin, stop = info["data_offsets"]
        np_type = np.dtype(ST_NUMPY[info["dtype"]]).newbyteorder("<")
        count = int(np.prod(info["shape"], dtype=np.int64))
        if begin != end or stop - begin != count * np_type.itemsize:
            raise ValueError("%s: tensor %s has data_offsets %s" % (path, name, [begin, stop]))
        array = np.frombuffer(data, dtype=np_type, count=count, offset=begin)
        tensors[name] = torch.from_numpy(array.astype(np_type.newbyteorder("="))
                                         .reshape(info["shape"]))
        end = stop
    if end != len(data):
        raise ValueError("%s: %d data bytes, tensors cover %d" % (path, len(data), end))
    return tensors, metadata


def verify_file(path, tensors, metadata):
    loaded, loaded_meta = load_safetensors(path)
    if list(loaded) != sorted(tensors, key=lambda k: -tensors[k].element_size()):
        raise AssertionError("%s: tensor names or order differ" % path)
    for name, tensor in tensors.items():
        back = loaded[name]
        if back.dtype != tensor.dtype or back.shape != tensor.shape or \
                not torch.equal(back, tensor.detach().cpu()):
            raise AssertionError("%s: tensor %s differs after read-back" % (path, name))
    if loaded_meta != {str(k): str(v) for k, v in metadata.items()}:
        raise AssertionError("%s: metadata differs after read-back" % path)
    return len(loaded)


# ---------------------------------------------------------------------------------------------
# Environment checks
# ---------------------------------------------------------------------------------------------

def blas_libraries():
    """The BLAS/LAPACK shared objects this process has mapped (Linux), e.g. OpenBLAS."""
    found = []
    try:
        with open("/proc/self/maps") as maps:
            for line in maps:
                path = line.split()[-1] if len(line.split()) >= 6 else ""
                base = os.path.basename(path).lower()
                if base.startswith("lib") and any(k in base for k in ("blas", "lapack", "mkl")) \
                        and path not in found:
                    found.append(path)
    except OSError:
        pass
    return found


def matmul_gflops(threads):
    a = torch.randn(512, 512)
    b = torch.randn(512, 512)
    for _ in range(3):
        a @ b
    best = float("inf")
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(10):
            a @ b
        best = min(best, (time.perf_counter() - t) / 10)
    return 2 * 512 ** 3 / best / 1e9


def oversubscription_check(threads):
    """Seconds for a G forward+backward at batch 16 with `threads` and with 1 thread. With
    OpenMP, threads that share their cores with other busy processes are far slower than one
    thread (25x measured on 2 busy cores): such a machine gives meaningless timings."""
    torch.manual_seed(0)
    G = make_generator()
    z = torch.randn(16, NZ, 1, 1)
    result = {}
    for n in sorted({1, threads}):
        torch.set_num_threads(n)
        G(z).sum().backward()
        best = float("inf")
        for _ in range(3):
            t = time.perf_counter()
            G(z).sum().backward()
            best = min(best, time.perf_counter() - t)
        result[n] = best
    torch.set_num_threads(threads)
    return result


def environment_report(threads):
    torch.set_num_threads(threads)
    config = torch.__config__.show()
    blas_info = re.findall(r"(?:BLAS|LAPACK)_INFO=[^,\s]*", config)
    gflops = matmul_gflops(threads)
    libraries = blas_libraries()
    step = oversubscription_check(threads)
    env = {"python": sys.version.split()[0], "torch": torch.__version__, "numpy": np.__version__,
           "scipy": scipy.__version__, "machine": platform.machine(),
           "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
           "torch_config_blas": blas_info, "blas_libraries_mapped": libraries,
           "matmul_512_gflops": round(gflops, 1),
           "g_fwd_bwd_batch16_seconds_by_threads": {str(k): v for k, v in step.items()}}
    log("torch %s, %d threads (torch.get_num_threads()), os.cpu_count() %s"
        % (torch.__version__, torch.get_num_threads(), os.cpu_count()))
    log("torch.__config__.show(): %s" % (", ".join(blas_info) or "no BLAS_INFO line"))
    log("BLAS mapped in this process: %s" % (", ".join(libraries) or "none found"))
    log("512x512 float32 matmul: %.1f GFLOPS (best of 5 x 10)" % gflops)
    openblas = any("openblas" in path.lower() or "mkl" in path.lower() for path in libraries)
    if gflops < GFLOPS_WARN or not openblas:
        bar = "!" * 78
        log(bar)
        log("WARNING: torch's 512x512 matmul runs at %.1f GFLOPS (< %.0f) or the BLAS is not "
            "OpenBLAS." % (gflops, GFLOPS_WARN))
        log("WARNING: Debian's torch on the reference BLAS takes ~25 min per DCGAN epoch "
            "instead of ~4.")
        log("WARNING: install it with: apt-get install libopenblas0-openmp   (a busy machine "
            "also lowers this number)")
        log(bar)
        env["blas_warning"] = True
    log("G forward+backward at batch 16: %s" % ", ".join(
        "%.1f ms with %d thread%s" % (1e3 * v, k, "s" if k > 1 else "") for k, v in step.items()))
    if threads > 1 and step[threads] > 1.5 * step[1]:
        bar = "!" * 78
        log(bar)
        log("WARNING: %d threads are %.1fx SLOWER than 1 thread: other processes are busy on "
            "these cores" % (threads, step[threads] / step[1]))
        log("WARNING: and OpenMP threads that share cores stall. Timings and the time budget do "
            "not hold;")
        log("WARNING: wait for an idle machine, or pass --threads 1 (results then differ in the "
            "last bits).")
        log(bar)
        env["oversubscription_warning"] = True
    return env


# ---------------------------------------------------------------------------------------------
# Training
# ---------------------------------------------------------------------------------------------

def train_classifier(C, x_train, y_train, x_test, y_test, epochs, batch_limit, seed, clock):
    opt = torch.optim.Adam(C.parameters(), lr=1e-3)
    steps_per_epoch = len(range(0, len(x_train), BATCH))
    if batch_limit is not None:
        steps_per_epoch = min(steps_per_epoch, batch_limit)
    total = max(1, epochs * steps_per_epoch)
    sched = torch.optim.lr_scheduler.LambdaLR(  # cosine decay to 0 over the whole run
        opt, lambda step: 0.5 * (1.0 + math.cos(math.pi * min(step, total) / total)))
    loss_fn = nn.CrossEntropyLoss()
    order = torch.Generator().manual_seed(seed + 1)
    history = []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        C.train()
        te = time.perf_counter()
        loss_sum, correct, seen = 0.0, 0, 0
        for idx in batches(len(x_train), BATCH, order, batch_limit):
            x, y = x_train[idx], y_train[idx]
            opt.zero_grad(set_to_none=True)
            logits = C(x)
            loss = loss_fn(logits, y)
            loss.backward()
            opt.step()
            sched.step()
            loss_sum += float(loss) * len(y)
            correct += int((logits.argmax(1) == y).sum())
            seen += len(y)
        acc = evaluate_accuracy(C, x_test, y_test)
        history.append({"epoch": epoch + 1, "train_loss": loss_sum / seen,
                        "train_accuracy": correct / seen, "test_accuracy": acc,
                        "seconds": time.perf_counter() - te})
        log("%s C epoch %d/%d: loss %.4f, train acc %.4f, test acc %.4f, %.1f s"
            % (clock.stamp(), epoch + 1, epochs, loss_sum / seen, correct / seen, acc,
               time.perf_counter() - te))
    C.eval()
    return history, time.perf_counter() - t0


@torch.no_grad()
def evaluate_accuracy(C, x, y, batch=500):
    C.eval()
    correct = 0
    for s in range(0, len(x), batch):
        correct += int((C(x[s:s + batch]).argmax(1) == y[s:s + batch]).sum())
    return correct / len(x)


class GanTrainer:
    def __init__(self, G, D, seed):
        self.G, self.D = G, D
        self.optG = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.optD = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
        self.loss = nn.BCELoss()
        self.noise = torch.Generator().manual_seed(seed + 3)

    def step(self, real):
        G, D = self.G, self.D
        G.train()
        D.train()
        n = real.size(0)
        ones, zeros = torch.ones(n), torch.zeros(n)
        # D: maximize log D(x) + log(1 - D(G(z)))
        self.optD.zero_grad(set_to_none=True)
        d_real = D(real).view(-1)
        loss_real = self.loss(d_real, ones)
        z = torch.randn(n, NZ, 1, 1, generator=self.noise)
        fake = G(z)
        d_fake = D(fake.detach()).view(-1)
        loss_fake = self.loss(d_fake, zeros)
        loss_d = loss_real + loss_fake
        loss_d.backward()
        self.optD.step()
        # G: maximize log D(G(z)) (non-saturating)
        self.optG.zero_grad(set_to_none=True)
        d_fake2 = D(fake).view(-1)
        loss_g = self.loss(d_fake2, ones)
        loss_g.backward()
        self.optG.step()
        return (float(loss_d), float(loss_g), float(d_real.mean()), float(d_fake.mean()),
                float(d_fake2.mean()))


def train_gan(G, D, x_train, epochs, batch_limit, seed, clock, C, ref, monitor_n, log_every):
    trainer = GanTrainer(G, D, seed)
    order = torch.Generator().manual_seed(seed + 2)
    steps_per_epoch = len(range(0, len(x_train), BATCH))
    if batch_limit is not None:
        steps_per_epoch = min(steps_per_epoch, batch_limit)
    monitor_z = fixed_z(monitor_n, seed + 5)
    history = []
    step_times = []
    t0 = time.perf_counter()
    for epoch in range(epochs):
        te = time.perf_counter()
        sums = np.zeros(5)
        for i, idx in enumerate(batches(len(x_train), BATCH, order, batch_limit)):
            ts = time.perf_counter()
            values = trainer.step(x_train[idx])
            step_times.append(time.perf_counter() - ts)
            sums += values
            if (i + 1) % log_every == 0 or i + 1 == steps_per_epoch:
                done = epoch * steps_per_epoch + i + 1
                elapsed = time.perf_counter() - t0
                eta = elapsed / done * (epochs * steps_per_epoch - done)
                log("%s GAN epoch %d/%d batch %3d/%d: loss_D %.3f loss_G %.3f D(x) %.3f "
                    "D(G(z)) %.3f/%.3f | %.2f s/batch, ETA %.1f min"
                    % (clock.stamp(), epoch + 1, epochs, i + 1, steps_per_epoch, *values,
                       elapsed / done, eta / 60))
        mean = sums / steps_per_epoch
        seconds = time.perf_counter() - te
        samples = generate(G, monitor_z, "train")
        monitor = score_samples(C, samples, *ref)
        history.append({"epoch": epoch + 1, "loss_D": mean[0], "loss_G": mean[1],
                        "D_real": mean[2], "D_fake": mean[3], "seconds": seconds,
                        "fid_fmnist_train_mode_n%d" % monitor_n: monitor["fid_fmnist"]})
        log("%s GAN epoch %d/%d done in %.1f s: mean loss_D %.3f loss_G %.3f; FID-FMNIST "
            "(train-mode BN, N=%d) %.2f" % (clock.stamp(), epoch + 1, epochs, seconds, mean[0],
                                            mean[1], monitor_n, monitor["fid_fmnist"]))
    G.eval()
    D.eval()
    return history, time.perf_counter() - t0, step_times


def bench(x_train, steps, seed):
    """Times `steps` G+D training steps and classifier steps at batch 128 (after 2 warm-up steps)."""
    torch.manual_seed(seed)
    G, D, C = make_generator(), make_discriminator(), make_classifier()
    G.apply(dcgan_init)
    D.apply(dcgan_init)
    trainer = GanTrainer(G, D, seed)
    order = torch.Generator().manual_seed(seed)
    idx = list(batches(len(x_train), BATCH, order, steps + 2))
    for i in idx[:2]:
        trainer.step(x_train[i])
    times = []
    for i in idx[2:]:
        t = time.perf_counter()
        trainer.step(x_train[i])
        times.append(time.perf_counter() - t)
    opt = torch.optim.Adam(C.parameters(), lr=1e-3)
    ctimes = []
    y = torch.zeros(BATCH, dtype=torch.int64)
    for k, i in enumerate(idx):
        t = time.perf_counter()
        opt.zero_grad()
        nn.functional.cross_entropy(C(x_train[i]), y[:len(i)]).backward()
        opt.step()
        if k >= 2:
            ctimes.append(time.perf_counter() - t)
    per_epoch = len(range(0, 60000, BATCH))
    g_step, c_step = float(np.median(times)), float(np.median(ctimes))
    log("bench: G+D training step at batch %d: median %.3f s (min %.3f, max %.3f) over %d steps"
        % (BATCH, g_step, min(times), max(times), len(times)))
    log("bench: -> %.1f min per GAN epoch (%d batches); %d epochs ~ %.0f min"
        % (g_step * per_epoch / 60, per_epoch, DEFAULT_GAN_EPOCHS,
           g_step * per_epoch * DEFAULT_GAN_EPOCHS / 60))
    log("bench: classifier training step at batch %d: median %.3f s -> %.1f min per epoch; "
        "%d epochs ~ %.1f min" % (BATCH, c_step, c_step * per_epoch / 60, DEFAULT_CLS_EPOCHS,
                                  c_step * per_epoch * DEFAULT_CLS_EPOCHS / 60))
    return {"gan_step_seconds": g_step, "classifier_step_seconds": c_step,
            "gan_epoch_minutes": g_step * per_epoch / 60}


# ---------------------------------------------------------------------------------------------
# Main
# ---------------------------------------------------------------------------------------------

def parse_args():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--out", default=DEFAULT_OUT, help="output directory")
    p.add_argument("--data-dir", default=DEFAULT_DATA_DIR)
    p.add_argument("--epochs", type=int, default=DEFAULT_GAN_EPOCHS, help="GAN epochs")
    p.add_argument("--cls-epochs", type=int, default=DEFAULT_CLS_EPOCHS, help="classifier epochs")
    p.add_argument("--seed", type=int, default=DEFAULT_SEED)
    p.add_argument("--threads", type=int, default=2, help="torch.set_num_threads")
    p.add_argument("--fid-n", type=int, default=5000, help="samples per FID/IS estimate")
    p.add_argument("--monitor-n", type=int, default=1000,
                   help="samples for the per-epoch FID printed during GAN training")
    p.add_argument("--bn-recal", choices=["auto", "always", "never"], default="auto",
                   help="re-estimate G's BatchNorm statistics: when eval-mode FID is > 10%% "
                        "above train-mode FID (auto), always, or never")
    p.add_argument("--recal-batches", type=int, default=100,
                   help="batches of 128 z for the BatchNorm re-estimation")
    p.add_argument("--smoke", action="store_true",
                   help="tiny end-to-end run: 512 train / 256 test images, 2 batches per model, "
                        "N=200 for FIDs (writes --out; use a temporary directory)")
    p.add_argument("--bench", type=int, metavar="STEPS", default=0,
                   help="only time STEPS G+D and classifier training steps at batch 128, "
                        "extrapolate to an epoch, and exit")
    return p.parse_args()


def main():
    args = parse_args()
    clock = Clock()
    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    log("%s qgan DCGAN reference training (%s)%s" % (
        clock.stamp(), os.path.relpath(__file__), " -- SMOKE MODE" if args.smoke else ""))
    env = environment_report(args.threads)

    if args.smoke:
        train_limit, test_limit, batch_limit = 512, 256, 2
        args.epochs = min(args.epochs, 1)
        args.cls_epochs = min(args.cls_epochs, 1)
        args.fid_n = min(args.fid_n, 200)
        args.monitor_n = min(args.monitor_n, 100)
        args.recal_batches = min(args.recal_batches, 4)
        if args.bn_recal == "auto":
            args.bn_recal = "always"  # exercise the re-estimation path
        log_every = 1
        if os.path.abspath(args.out) == os.path.abspath(DEFAULT_OUT):
            args.out = tempfile.mkdtemp(prefix="dcgan_smoke_")  # never overwrite the real weights
            log("smoke mode: --out not given, writing to %s" % args.out)
    else:
        train_limit = test_limit = batch_limit = None
        log_every = 50

    t = time.perf_counter()
    x_train, y_train = load_split(args.data_dir, "train", train_limit)
    x_test, y_test = load_split(args.data_dir, "test", test_limit)
    log("%s data: train %s, test %s, range [%.1f, %.1f], %.1f s (%s)"
        % (clock.stamp(), tuple(x_train.shape), tuple(x_test.shape), float(x_train.min()),
           float(x_train.max()), time.perf_counter() - t, args.data_dir))

    if args.bench:
        bench(x_train, args.bench, args.seed)
        return

    os.makedirs(args.out, exist_ok=True)
    report = {"command": " ".join([sys.executable] + sys.argv), "smoke": args.smoke,
              "seed": args.seed, "environment": env, "preprocessing": PREPROCESSING,
              "train_images": len(x_train), "test_images": len(x_test)}

    # 1. Classifier -----------------------------------------------------------------------
    torch.manual_seed(args.seed + 10)
    C = make_classifier()
    log("%s C: %d parameters; training %d epochs (Adam 1e-3, cosine decay, batch %d)"
        % (clock.stamp(), count_params(C), args.cls_epochs, BATCH))
    c_history, c_seconds = train_classifier(C, x_train, y_train, x_test, y_test,
                                            args.cls_epochs, batch_limit, args.seed, clock)
    accuracy = evaluate_accuracy(C, x_test, y_test)
    log("%s C: test accuracy %.4f (%d test images), trained in %.1f s"
        % (clock.stamp(), accuracy, len(x_test), c_seconds))
    if accuracy < 0.90 and not args.smoke:
        log("WARNING: classifier test accuracy %.4f is below the 0.90 target" % accuracy)
    report["classifier"] = {"parameters": count_params(C), "epochs": args.cls_epochs,
                            "test_accuracy": accuracy, "train_seconds": c_seconds,
                            "history": c_history, "architecture": ARCH_C}

    # Reference statistics and real-data baselines ------------------------------------------
    test_feats, test_logits = classifier_outputs(C, x_test)
    ref_mu, ref_sigma = gaussian_fit(test_feats)
    sel = torch.Generator().manual_seed(args.seed + 6)
    n_real = min(args.fid_n, len(x_train), len(x_test))
    train_sel = torch.randperm(len(x_train), generator=sel)[:n_real]
    test_sel = torch.randperm(len(x_test), generator=sel)[:n_real]
    train_feats, train_logits = classifier_outputs(C, x_train[train_sel])
    real_fid = frechet_distance(*gaussian_fit(train_feats), *gaussian_fit(test_feats[test_sel]))
    real_fid_all = frechet_distance(*gaussian_fit(train_feats), ref_mu, ref_sigma)
    real = {"fid_fmnist_train%d_vs_test%d" % (n_real, n_real): real_fid,
            "fid_fmnist_train%d_vs_test_all%d" % (n_real, len(x_test)): real_fid_all,
            "is_fmnist_test_all": inception_score_analogue(test_logits),
            "is_fmnist_train%d" % n_real: inception_score_analogue(train_logits)}
    log("%s real data: FID-FMNIST train(N=%d) vs test(N=%d) %.3f; train(N=%d) vs all %d test "
        "images %.3f; IS-FMNIST test %.3f, train(N=%d) %.3f"
        % (clock.stamp(), n_real, n_real, real_fid, n_real, len(x_test), real_fid_all,
           real["is_fmnist_test_all"], n_real, real["is_fmnist_train%d" % n_real]))
    report["real_data"] = real

    # 2. GAN --------------------------------------------------------------------------------
    torch.manual_seed(args.seed)
    G = make_generator()
    G.apply(dcgan_init)
    torch.manual_seed(args.seed + 20)
    D = make_discriminator()
    D.apply(dcgan_init)
    log("%s G: %d parameters, D: %d parameters; training %d epochs (Adam 2e-4, betas (0.5, "
        "0.999), batch %d, BCE)" % (clock.stamp(), count_params(G), count_params(D),
                                    args.epochs, BATCH))
    g_history, g_seconds, step_times = train_gan(
        G, D, x_train, args.epochs, batch_limit, args.seed, clock, C, (ref_mu, ref_sigma),
        args.monitor_n, log_every)
    steady = step_times[1:] if len(step_times) > 1 else step_times
    step = float(np.median(steady))
    per_epoch = len(range(0, 60000, BATCH))
    log("%s GAN trained in %.1f s; median step %.3f s at batch %d -> %.1f min per full epoch "
        "(%d batches)" % (clock.stamp(), g_seconds, step, BATCH, step * per_epoch / 60, per_epoch))
    report["gan"] = {"epochs": args.epochs, "train_seconds": g_seconds,
                     "median_step_seconds": step,
                     "extrapolated_full_epoch_minutes": step * per_epoch / 60,
                     "generator_parameters": count_params(G),
                     "discriminator_parameters": count_params(D), "history": g_history,
                     "architecture_G": ARCH_G, "architecture_D": ARCH_D}

    # 3. Train-mode vs eval-mode BatchNorm ------------------------------------------------------
    z_eval = fixed_z(args.fid_n, args.seed + 7)
    scores = {"train_mode": score_samples(C, generate(G, z_eval, "train"), ref_mu, ref_sigma),
              "eval_mode": score_samples(C, generate(G, z_eval, "eval"), ref_mu, ref_sigma)}
    fid_train, fid_eval = scores["train_mode"]["fid_fmnist"], scores["eval_mode"]["fid_fmnist"]
    log("%s G FID-FMNIST (N=%d vs all %d test images): train-mode BN %.3f, eval-mode BN %.3f; "
        "IS-FMNIST %.3f / %.3f" % (clock.stamp(), args.fid_n, len(x_test), fid_train, fid_eval,
                                   scores["train_mode"]["is_fmnist"],
                                   scores["eval_mode"]["is_fmnist"]))
    recal = {"policy": args.bn_recal, "threshold": "eval-mode FID > 1.10 x train-mode FID",
             "needed": fid_eval > 1.10 * fid_train, "performed": False}
    if args.bn_recal == "always" or (args.bn_recal == "auto" and recal["needed"]):
        before = copy.deepcopy(G.state_dict())
        recalibrate_batchnorm(G, args.recal_batches, BATCH, args.seed + 8)
        after = score_samples(C, generate(G, z_eval, "eval"), ref_mu, ref_sigma)
        recal.update({"performed": True, "batches": args.recal_batches, "batch_size": BATCH,
                      "fid_fmnist_eval_before": fid_eval, "fid_fmnist_eval_after":
                      after["fid_fmnist"], "is_fmnist_eval_after": after["is_fmnist"]})
        log("%s BatchNorm re-estimated over %d x %d z (cumulative average): eval-mode FID-FMNIST "
            "%.3f -> %.3f" % (clock.stamp(), args.recal_batches, BATCH, fid_eval,
                              after["fid_fmnist"]))
        if after["fid_fmnist"] <= fid_eval:
            scores["eval_mode_recalibrated"] = after
            recal["kept"] = True
        else:
            G.load_state_dict(before)
            recal["kept"] = False
            log("%s re-estimated statistics are not better: kept the training ones" % clock.stamp())
    G.eval()
    final = scores.get("eval_mode_recalibrated", scores["eval_mode"])
    log("%s exported G (eval mode): FID-FMNIST %.3f, IS-FMNIST %.3f (N=%d); class histogram %s"
        % (clock.stamp(), final["fid_fmnist"], final["is_fmnist"], args.fid_n,
           final["predicted_class_histogram"]))
    report["generator_eval"] = {"n": args.fid_n, "sample_batch_train_mode": SAMPLE_BATCH,
                                "reference": "all %d test images" % len(x_test),
                                "scores": scores, "bn_recalibration": recal,
                                "exported_fid_fmnist": final["fid_fmnist"],
                                "exported_is_fmnist": final["is_fmnist"]}

    # 4. Export -------------------------------------------------------------------------------
    common = {"format": "pt", "producer": "examples/dcgan/train.py, torch " + torch.__version__,
              "seed": args.seed, "smoke": str(args.smoke).lower(), "preprocessing": PREPROCESSING}
    gan_meta = dict(common, nz=NZ, ngf=NGF, ndf=NDF, epochs=args.epochs,
                    batch_size=BATCH, train_seconds="%.1f" % g_seconds,
                    classifier_test_accuracy="%.4f" % accuracy,
                    fid_fmnist_train_mode="%.4f" % fid_train,
                    fid_fmnist_eval_mode="%.4f" % fid_eval,
                    fid_fmnist_exported="%.4f" % final["fid_fmnist"],
                    is_fmnist_exported="%.4f" % final["is_fmnist"],
                    fid_n=args.fid_n, bn_recalibrated=str(recal.get("kept", False)).lower(),
                    fid_fmnist_real_train_vs_test="%.4f" % real_fid)
    files = {
        "generator.safetensors": (G.state_dict(), dict(gan_meta, architecture=ARCH_G)),
        "discriminator.safetensors": (D.state_dict(), dict(gan_meta, architecture=ARCH_D)),
        "classifier.safetensors": (C.state_dict(), dict(
            common, architecture=ARCH_C, epochs=args.cls_epochs, test_accuracy="%.4f" % accuracy,
            train_seconds="%.1f" % c_seconds, feature="relu4 output (after fc1 + ReLU)",
            feature_dim=FEATURE_DIM)),
    }
    # Golden inputs/outputs for the C++ forward passes.
    with torch.no_grad():
        G.eval(), D.eval(), C.eval()
        gz = fixed_z(4, GOLDEN_SEED)
        gx_index = torch.tensor([0, 1, 2, 3])
        gx = x_test[gx_index]
        gfeat, glogits = classifier_features_logits(C, gx)
        golden = collections.OrderedDict([
            ("g.z", gz), ("g.out", G(gz)), ("d.x", gx), ("d.out", D(gx)),
            ("d.out_on_g", D(G(gz))), ("c.x", gx), ("c.features", gfeat), ("c.logits", glogits),
            ("c.labels", y_test[gx_index].clone()), ("c.test_index", gx_index.long())])
    files["golden.safetensors"] = (golden, dict(
        common, g="g.out = G.eval()(g.z); g.z = torch.randn(4,100,1,1) from "
                  "torch.Generator().manual_seed(%d)" % GOLDEN_SEED,
        d="d.out = D.eval()(d.x), d.x = test images c.test_index; d.out_on_g = D.eval()(g.out)",
        c="c.features = relu4 output of C.eval()(c.x), c.logits = fc2 output",
        tolerance="1e-4 absolute"))
    files["fid_reference.safetensors"] = (collections.OrderedDict([
        ("mu", torch.from_numpy(ref_mu)), ("sigma", torch.from_numpy(ref_sigma))]), dict(
        common, n=len(x_test), split="t10k (test)", feature="classifier relu4 output (128)",
        covariance="unbiased (N-1), float64", classifier_test_accuracy="%.4f" % accuracy,
        fid_fmnist_real_train_vs_test="%.4f" % real_fid))

    written = {}
    for name, (tensors, meta) in files.items():
        path = os.path.join(args.out, name)
        size = save_safetensors(path, tensors, meta)
        count = verify_file(path, tensors, meta)
        written[name] = size
        log("%s wrote %s: %d tensors, %d bytes (read back, identical)"
            % (clock.stamp(), path, count, size))

    # Forward check from the files alone: fresh models loaded from the written weights.
    G2, D2, C2 = make_generator(), make_discriminator(), make_classifier()
    for model, name in ((G2, "generator"), (D2, "discriminator"), (C2, "classifier")):
        model.load_state_dict(load_safetensors(os.path.join(args.out, name + ".safetensors"))[0])
        model.eval()
    gold = load_safetensors(os.path.join(args.out, "golden.safetensors"))[0]
    with torch.no_grad():
        f2, l2 = classifier_features_logits(C2, gold["c.x"])
        errors = {"g.out": float((G2(gold["g.z"]) - gold["g.out"]).abs().max()),
                  "d.out": float((D2(gold["d.x"]) - gold["d.out"]).abs().max()),
                  "c.features": float((f2 - gold["c.features"]).abs().max()),
                  "c.logits": float((l2 - gold["c.logits"]).abs().max())}
    log("%s reloaded models reproduce golden outputs, max abs error %s"
        % (clock.stamp(), ", ".join("%s %.1e" % kv for kv in errors.items())))
    if max(errors.values()) > 1e-6:
        raise AssertionError("golden outputs not reproduced: %s" % errors)

    report["files"] = written
    report["golden_reload_max_abs_error"] = errors
    report["total_seconds"] = clock()
    report_path = os.path.join(args.out, "training_report.json")
    with open(report_path, "w") as f:
        json.dump(report, f, indent=1, default=float)
        f.write("\n")
    log("%s wrote %s; total %.1f min" % (clock.stamp(), report_path, clock() / 60))


if __name__ == "__main__":
    main()
