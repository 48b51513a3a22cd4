"""The paper's nonlinear experiment: layer alignment in an AlexNet-style network.

Ji & Telgarsky (ICLR 2019), Figure 2 of the submission (Figure 3 of the camera-ready),
train a standard AlexNet on CIFAR-10 with SGD and plot the training risk together with
the alignment ratio ``r_i = ||W_i||_2 / ||W_i||_F`` of the **three dense layers**, from
two initialisations: PyTorch's default, and Gaussian with every dense layer's Frobenius
norm set to 4. A ratio can never fall below ``1/sqrt(min(shape))`` (all singular values
equal) and equals 1 exactly for a rank-one matrix; the paper reports that the ratios
rise "much" above those floors, an alignment "in a reduced form".

This module holds

* :class:`AlexNet` -- five convolutions with ReLU and max-pooling after the 1st, 2nd and
  5th, then three dense layers (``flat -> h1 -> h2 -> n_classes``) with ReLU between them;
  the CIFAR-sized variant has dense shapes (1024, 4096), (4096, 4096), (4096, 10) as in
  the paper;
* :func:`init_dense_frobenius` -- the paper's second initialisation;
* :func:`alignment_ratios` and :func:`ratio_floors` -- the tracked quantities;
* :func:`load_digits_images` (scikit-learn's 8x8 digits, shipped, for the CPU) and
  :func:`load_cifar10` (the standard CIFAR-10 *python* batches, when a user has them);
* :func:`train_alexnet` -- plain mini-batch SGD on the mean cross-entropy, no momentum,
  no weight decay, no dropout, recorded on a log-spaced schedule into a tidy table.

Everything runs on the CPU; ``device="auto"`` uses CUDA when present. On the CPU a run is
deterministic: the same seed gives identical numbers.

Example
-------
>>> X, y = load_digits_images()
>>> X.shape, y.shape
(torch.Size([1797, 1, 8, 8]), torch.Size([1797]))
>>> df = train_alexnet(X[:128], y[:128], init="frobenius", epochs=1, batch_size=32,
...                    channels=(4, 4, 4, 4, 4), hidden=(16, 16), n_records=3, seed=0, progress=False)
>>> sorted(df["layer"].unique().tolist())
[1, 2, 3]
>>> bool((df["ratio"] >= df["floor"] - 1e-6).all())
True
"""
from __future__ import annotations

import math
import numbers
import pickle
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
import torch.nn.functional as F

from gdalign.progress import bar

__all__ = [
    "AlexNet",
    "CIFAR_SHAPE",
    "INITS",
    "alignment_ratios",
    "dense_shapes",
    "init_dense_frobenius",
    "load_cifar10",
    "load_digits_images",
    "ratio_floors",
    "record_schedule",
    "resolve_device",
    "train_alexnet",
]

INITS = ("default", "frobenius")
#: Max-pooling after the 1st, 2nd and 5th convolution, as in AlexNet.
_ALEXNET_POOLS = (True, True, False, False, True)
#: (channels, height, width) of a CIFAR-10 image and the pixel count of one row of b'data'.
CIFAR_SHAPE = (3, 32, 32)
_CIFAR_ROW = 3 * 32 * 32


# ----------------------------------------------------------------------------- checks
def _int(name: str, value, lo: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"parameter {name!r} = {value!r} is not an integer")
    value = int(value)
    if lo is not None and value < lo:
        raise ValueError(f"parameter {name!r} = {value} must be >= {lo}")
    return value


def _pos_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(float(value)) \
            or float(value) <= 0:
        raise ValueError(f"parameter {name!r} = {value!r} must be a finite number > 0")
    return float(value)


def _int_tuple(name: str, value, length: int) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or len(value) != length:
        raise ValueError(f"parameter {name!r} = {value!r} must be a sequence of {length} positive integers")
    return tuple(_int(f"{name}[{i}]", v, 1) for i, v in enumerate(value))


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    """The torch device for ``device``: ``"auto"`` is CUDA when available, else the CPU.

    Parameters
    ----------
    device : {"auto", "cpu", "cuda", "cuda:N"} or torch.device

    Raises
    ------
    ValueError
        Naming ``device`` when it is not one of those, or asks for CUDA on a machine
        without it.

    Example
    -------
    >>> resolve_device("cpu")
    device(type='cpu')
    """
    if isinstance(device, torch.device):
        device = str(device)
    if not isinstance(device, str):
        raise ValueError(f"parameter 'device' = {device!r} must be 'auto', 'cpu', 'cuda' or 'cuda:N'")
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cpu":
        return torch.device("cpu")
    if device == "cuda" or (device.startswith("cuda:") and device[5:].isdigit()):
        if not torch.cuda.is_available():
            raise ValueError(f"parameter 'device' = {device!r}: CUDA is not available on this machine "
                             "(use 'auto' or 'cpu')")
        return torch.device(device)
    raise ValueError(f"parameter 'device' = {device!r} must be 'auto', 'cpu', 'cuda' or 'cuda:N'")


# ----------------------------------------------------------------------------- network
class AlexNet(nn.Module):
    """AlexNet-style network: convolutions, ReLU, max-pooling, then 3 dense layers.

    A stack of ``conv(3x3, padding 1) -> ReLU``, each followed by a 2x2 max-pool where
    ``pools`` says so (AlexNet: five convolutions, pooled after the 1st, 2nd and 5th),
    flatten, then ``Linear(flat, h1) -> ReLU -> Linear(h1, h2) -> ReLU ->
    Linear(h2, n_classes)``. The first convolution has stride ``first_stride``. No
    dropout and no batch norm.

    Parameters
    ----------
    in_channels : int, default 3
    image_size : int, default 32
        Height = width of the input images.
    channels : sequence of ints, default (64, 192, 384, 256, 256)
        Output channels of the convolutions (default: the usual CIFAR AlexNet).
    hidden : sequence of 2 ints, default (4096, 4096)
        Widths h1, h2 of the two hidden dense layers.
    n_classes : int, default 10
    first_stride : int, default 2
        Stride of the first convolution. With the defaults the feature map before the
        dense layers is 256 x 2 x 2, so the dense shapes are the paper's
        (1024, 4096), (4096, 4096), (4096, 10).
    pools : sequence of bools, optional
        Max-pool after convolution i? Default: AlexNet's (True, True, False, False,
        True) for five convolutions, else after every convolution.

    Attributes
    ----------
    features : nn.Sequential
        The convolutional part, (N, in_channels, image_size, image_size) -> (N, flat).
    dense : nn.ModuleList of 3 nn.Linear
        The three dense layers; ``dense[i].weight`` has shape (out_i, in_i).
    flat : int
        Input width of the first dense layer.

    Example
    -------
    >>> net = AlexNet()
    >>> dense_shapes(net)
    [(1024, 4096), (4096, 4096), (4096, 10)]
    >>> net(torch.zeros(2, 3, 32, 32)).shape
    torch.Size([2, 10])
    >>> dense_shapes(AlexNet(1, 8, channels=(32, 64), hidden=(512, 512), first_stride=1))
    [(256, 512), (512, 512), (512, 10)]
    """

    def __init__(self, in_channels: int = 3, image_size: int = 32, channels: Sequence[int] = (64, 192, 384, 256, 256),
                 hidden: Sequence[int] = (4096, 4096), n_classes: int = 10, first_stride: int = 2,
                 pools: Sequence[bool] | None = None):
        super().__init__()
        in_channels = _int("in_channels", in_channels, 1)
        image_size = _int("image_size", image_size, 1)
        if isinstance(channels, (str, bytes)) or not isinstance(channels, Sequence) or len(channels) == 0:
            raise ValueError(f"parameter 'channels' = {channels!r} must be a non-empty sequence of positive integers")
        channels = tuple(_int(f"channels[{i}]", c, 1) for i, c in enumerate(channels))
        hidden = _int_tuple("hidden", hidden, 2)
        n_classes = _int("n_classes", n_classes, 2)
        first_stride = _int("first_stride", first_stride, 1)
        if pools is None:
            pools = _ALEXNET_POOLS if len(channels) == 5 else (True,) * len(channels)
        if isinstance(pools, (str, bytes)) or not isinstance(pools, Sequence) or len(pools) != len(channels) \
                or not all(isinstance(p, (bool, np.bool_)) for p in pools):
            raise ValueError(f"parameter 'pools' = {pools!r} must be {len(channels)} booleans, one per convolution")
        pools = tuple(bool(p) for p in pools)
        side = (image_size + first_stride - 1) // first_stride  # 3x3 conv, padding 1
        layers: list[nn.Module] = []
        c_in = in_channels
        for i, (c, pool) in enumerate(zip(channels, pools)):
            layers += [nn.Conv2d(c_in, c, 3, stride=first_stride if i == 0 else 1, padding=1), nn.ReLU(inplace=True)]
            if pool:
                layers.append(nn.MaxPool2d(2))
                side //= 2
            c_in = c
        if side < 1:
            raise ValueError(f"parameter 'image_size' = {image_size} is too small for first_stride={first_stride} "
                             f"and {sum(pools)} 2x2 max-pools")
        layers.append(nn.Flatten())
        self.features = nn.Sequential(*layers)
        self.flat = channels[-1] * side * side
        widths = (self.flat, *hidden, n_classes)
        self.dense = nn.ModuleList(nn.Linear(widths[i], widths[i + 1]) for i in range(3))
        self.config = dict(in_channels=in_channels, image_size=image_size, channels=channels, pools=pools,
                           hidden=hidden, n_classes=n_classes, first_stride=first_stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of shape (N, n_classes) for images of shape (N, C, H, W)."""
        h = self.features(x)
        h = F.relu(self.dense[0](h))
        h = F.relu(self.dense[1](h))
        return self.dense[2](h)


def dense_shapes(model: AlexNet) -> list[tuple[int, int]]:
    """(in, out) of the three dense layers, in the paper's convention."""
    return [(lin.in_features, lin.out_features) for lin in model.dense]


def ratio_floors(model: AlexNet) -> np.ndarray:
    """The least possible ``||W||_2/||W||_F`` of each dense layer, ``1/sqrt(min(shape))``.

    Returns
    -------
    ndarray of shape (3,)

    Example
    -------
    >>> ratio_floors(AlexNet()).round(6).tolist()
    [0.03125, 0.015625, 0.316228]
    """
    return np.array([1.0 / math.sqrt(min(s)) for s in dense_shapes(model)])


@torch.no_grad()
def alignment_ratios(model: AlexNet) -> pd.DataFrame:
    """Spectral norm, Frobenius norm and their ratio for each dense layer.

    Returns
    -------
    DataFrame with 3 rows and columns ``layer`` (1..3), ``fan_in``, ``fan_out``,
    ``spec``, ``fro``, ``ratio`` (= spec/fro, in [floor, 1]) and ``floor``.
    """
    rows = []
    for i, (lin, floor) in enumerate(zip(model.dense, ratio_floors(model)), start=1):
        W = lin.weight.detach().double()
        # ||W||_2^2 is the top eigenvalue of the Gram matrix of W's shorter side: several
        # times cheaper than an SVD on the CPU, and as accurate in float64.
        G = W @ W.T if W.shape[0] <= W.shape[1] else W.T @ W
        spec = math.sqrt(max(float(torch.linalg.eigvalsh(G)[-1]), 0.0))
        fro = math.sqrt(float(torch.trace(G)))
        rows.append(dict(layer=i, fan_in=lin.in_features, fan_out=lin.out_features, spec=spec, fro=fro,
                         ratio=spec / fro if fro > 0 else float("nan"), floor=float(floor)))
    return pd.DataFrame(rows)


@torch.no_grad()
def init_dense_frobenius(model: AlexNet, norm: float = 4.0, generator: torch.Generator | None = None) -> AlexNet:
    """The paper's second initialisation: each dense weight Gaussian, rescaled to ``||W||_F = norm``.

    Only the three dense weight matrices are re-drawn (i.i.d. standard normal, then
    scaled so the Frobenius norm is exactly ``norm``); convolutions and all biases keep
    their current values. Returns ``model`` (changed in place).

    Example
    -------
    >>> net = init_dense_frobenius(AlexNet(channels=(4, 4, 4, 4, 4), hidden=(32, 32)), norm=4.0)
    >>> [round(float(torch.linalg.matrix_norm(l.weight.detach())), 5) for l in net.dense]
    [4.0, 4.0, 4.0]
    """
    norm = _pos_float("norm", norm)
    for lin in model.dense:
        W = torch.randn(lin.weight.shape, generator=generator, dtype=torch.float64)
        W *= norm / torch.linalg.matrix_norm(W)
        lin.weight.copy_(W.to(lin.weight.dtype))
    return model


# ----------------------------------------------------------------------------- data
def load_digits_images() -> tuple[torch.Tensor, torch.Tensor]:
    """scikit-learn's handwritten digits as images (shipped with scikit-learn, no download).

    Pixels (0..16) are standardised with the global mean and standard deviation.

    Returns
    -------
    X : float32 tensor of shape (1797, 1, 8, 8)
    y : int64 tensor of shape (1797,), classes 0..9
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    X = d.images.astype(np.float64)
    X = (X - X.mean()) / X.std()
    return torch.from_numpy(X[:, None].astype(np.float32)), torch.from_numpy(d.target.astype(np.int64))


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a batch file cannot run code."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"), ("numpy", "dtype"),
        ("_codecs", "encode"),  # how Python 3 writes bytes into a protocol-2 pickle
        ("numpy.core.multiarray", "scalar"), ("numpy._core.multiarray", "scalar"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED or (module == "numpy.dtypes" and name.endswith("DType")):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _read_cifar_batch(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        with open(path, "rb") as f:
            doc = _NumpyOnlyUnpickler(f, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError, IndexError, TypeError,
            ValueError) as e:
        raise ValueError(f"{path.name}: not a CIFAR-10 python batch (cannot unpickle: {e})") from None
    if not isinstance(doc, dict) or b"data" not in doc or b"labels" not in doc:
        keys = sorted(doc) if isinstance(doc, dict) else type(doc).__name__
        raise ValueError(f"{path.name}: not a CIFAR-10 python batch (need keys b'data' and b'labels', got {keys})")
    data, labels = doc[b"data"], doc[b"labels"]
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != _CIFAR_ROW:
        desc = f"{data.dtype} array of shape {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise ValueError(f"{path.name}: b'data' must be a uint8 array of shape (N, {_CIFAR_ROW}), got {desc}")
    try:
        lab = np.asarray(labels)
    except Exception as e:  # pragma: no cover - ragged input
        raise ValueError(f"{path.name}: b'labels' is not a list of integers ({e})") from None
    if lab.ndim != 1 or lab.shape[0] != data.shape[0] or not np.issubdtype(lab.dtype, np.integer):
        raise ValueError(f"{path.name}: b'labels' must be {data.shape[0]} integers, got shape {lab.shape} "
                         f"of {lab.dtype}")
    if lab.size and (lab.min() < 0 or lab.max() > 9):
        raise ValueError(f"{path.name}: b'labels' must lie in 0..9, got {lab.min()}..{lab.max()}")
    return data, lab.astype(np.int64)


def load_cifar10(directory: str | Path, split: str = "train", limit: int | None = None,
                 mean: Sequence[float] | None = None, std: Sequence[float] | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """CIFAR-10 from the standard python batches (``cifar-10-batches-py``).

    The training split is ``data_batch_1`` .. ``data_batch_5``, the test split
    ``test_batch``: pickles of a dict with ``b'data'``, a uint8 array of shape (N, 3072)
    (1024 red, then green, then blue values of a 32x32 image, row-major) and
    ``b'labels'``, N integers in 0..9. Only numpy arrays and plain containers are
    unpickled. Pixels are scaled to [0, 1] and standardised per channel with ``mean``
    and ``std`` (by default those of the loaded images).

    Parameters
    ----------
    directory : str or Path
        The folder holding the batch files.
    split : {"train", "test"}
    limit : int, optional
        Keep only the first ``limit`` images (in file order).
    mean, std : sequence of 3 floats, optional

    Returns
    -------
    X : float32 tensor of shape (N, 3, 32, 32)
    y : int64 tensor of shape (N,)

    Raises
    ------
    FileNotFoundError
        When ``directory`` lacks a batch file of the split.
    ValueError
        For a malformed batch file (named in the message) or a bad parameter.

    Example
    -------
    >>> X, y = load_cifar10("cifar-10-batches-py", split="test")  # doctest: +SKIP
    >>> X.shape  # doctest: +SKIP
    torch.Size([10000, 3, 32, 32])
    """
    if split not in ("train", "test"):
        raise ValueError(f"parameter 'split' = {split!r} must be 'train' or 'test'")
    if limit is not None:
        limit = _int("limit", limit, 1)
    if not isinstance(directory, (str, Path)) or str(directory) == "":
        raise ValueError(f"parameter 'directory' = {directory!r} must name the folder of the CIFAR-10 python batches")
    root = Path(directory).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"parameter 'directory' = {str(directory)!r} is not a folder")
    names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
    missing = [n for n in names if not (root / n).is_file()]
    if missing:
        raise FileNotFoundError(f"{root}: missing CIFAR-10 batch file(s) {missing}")
    xs, ys, n = [], [], 0
    for name in names:
        d, lab = _read_cifar_batch(root / name)
        xs.append(d)
        ys.append(lab)
        n += d.shape[0]
        if limit is not None and n >= limit:
            break
    data = np.concatenate(xs)[:limit]
    labels = np.concatenate(ys)[:limit]
    if data.shape[0] == 0:
        raise ValueError(f"{root}: the {split} batches hold no images")
    X = data.reshape(-1, *CIFAR_SHAPE).astype(np.float32) / 255.0
    m = X.mean(axis=(0, 2, 3)) if mean is None else np.asarray(mean, dtype=np.float32)
    s = X.std(axis=(0, 2, 3)) if std is None else np.asarray(std, dtype=np.float32)
    if m.shape != (3,):
        raise ValueError(f"parameter 'mean' = {mean!r} must hold 3 numbers")
    if s.shape != (3,) or not np.all(s > 0):
        raise ValueError(f"parameter 'std' = {std!r} must hold 3 positive numbers")
    X = (X - m[None, :, None, None]) / s[None, :, None, None]
    return torch.from_numpy(np.ascontiguousarray(X)), torch.from_numpy(labels)


# ----------------------------------------------------------------------------- training
def record_schedule(total_steps: int, n_records: int, spacing: str = "log") -> np.ndarray:
    """Steps at which to record: 0, then ``n_records - 1`` steps up to ``total_steps``.

    ``spacing="log"`` spaces them geometrically from step 1 (duplicates after rounding
    are dropped, so fewer may come back), ``"linear"`` evenly. The last is always
    ``total_steps``.

    Example
    -------
    >>> record_schedule(1000, 5).tolist()
    [0, 1, 6, 32, 178, 1000]
    >>> record_schedule(100, 5, "linear").tolist()
    [0, 25, 50, 75, 100]
    """
    total_steps = _int("total_steps", total_steps, 1)
    n_records = _int("n_records", n_records, 2)
    if spacing == "log":
        s = np.unique(np.round(np.geomspace(1, total_steps, n_records)).astype(np.int64))
        return np.concatenate([[0], s])
    if spacing == "linear":
        return np.unique(np.round(np.linspace(0, total_steps, n_records)).astype(np.int64))
    raise ValueError(f"parameter 'spacing' = {spacing!r} must be 'log' or 'linear'")


@torch.no_grad()
def _risk(model: nn.Module, X: torch.Tensor, y: torch.Tensor, chunk: int) -> tuple[float, float]:
    """Mean cross-entropy (float64 accumulation) and accuracy over (X, y)."""
    model.eval()
    loss, correct = 0.0, 0
    for i in range(0, X.shape[0], chunk):
        out = model(X[i:i + chunk])
        loss += float(F.cross_entropy(out.double(), y[i:i + chunk], reduction="sum"))
        correct += int((out.argmax(1) == y[i:i + chunk]).sum())
    model.train()
    return loss / X.shape[0], correct / X.shape[0]


def train_alexnet(X: torch.Tensor, y: torch.Tensor, *, init: str = "default", seed: int = 0,
                  channels: Sequence[int] = (64, 192, 384, 256, 256), hidden: Sequence[int] = (4096, 4096),
                  pools: Sequence[bool] | None = None, first_stride: int | None = None, n_classes: int | None = None, epochs: int = 10,
                  lr: float = 0.01, batch_size: int = 128, frobenius_norm: float = 4.0, n_records: int = 30,
                  spacing: str = "log", eval_size: int | None = None, device: str = "auto",
                  progress: bool | None = None) -> pd.DataFrame:
    """Train an :class:`AlexNet` by plain SGD on the cross-entropy; record risk and dense ratios.

    Mini-batch SGD (no momentum, no weight decay) on the mean cross-entropy, with the
    training set reshuffled every epoch. At every step of :func:`record_schedule` the
    training risk (mean cross-entropy over the first ``eval_size`` training images) and
    ``r_i = ||W_i||_2/||W_i||_F`` of the three dense layers are recorded.

    Parameters
    ----------
    X : float tensor of shape (N, C, S, S)
        Training images (e.g. from :func:`load_digits_images` or :func:`load_cifar10`).
    y : int64 tensor of shape (N,)
        Class labels 0..n_classes-1.
    init : {"default", "frobenius"}
        PyTorch's default initialisation, or the same with each dense weight re-drawn
        Gaussian with Frobenius norm ``frobenius_norm`` (:func:`init_dense_frobenius`).
    seed : int
        Seeds the initialisation and the shuffling.
    channels, hidden, pools :
        Network widths and pooling, see :class:`AlexNet`.
    first_stride : int, optional
        Stride of the first convolution; by default ``max(1, S // 16)`` (2 for 32x32
        CIFAR images, 1 for 8x8 digits).
    n_classes : int, optional
        By default ``max(y) + 1``.
    epochs, lr, batch_size :
        SGD settings; the step count is ``epochs * ceil(N / batch_size)``.
    frobenius_norm : float, default 4.0
    n_records : int, default 30
        Requested number of records after step 0 (log spacing may merge some).
    spacing : {"log", "linear"}
    eval_size : int, optional
        Images used for the recorded risk; all of them by default.
    device : {"auto", "cpu", "cuda", "cuda:N"}
        ``"auto"`` uses CUDA when available.
    progress : bool, optional
        Show a progress bar; by default as :func:`gdalign.progress.bar` decides.

    Returns
    -------
    DataFrame, tidy: one row per record and dense layer (3 rows per record), with
    columns ``init``, ``seed``, ``step``, ``epoch`` (fractional), ``risk``,
    ``accuracy``, ``layer`` (1..3), ``fan_in``, ``fan_out``, ``spec``, ``fro``,
    ``ratio``, ``floor``. ``df.attrs`` holds the settings and the device used.

    Raises
    ------
    ValueError
        Naming the offending parameter.

    Example
    -------
    >>> X, y = load_digits_images()
    >>> df = train_alexnet(X[:64], y[:64], channels=(4, 4, 4, 4, 4), hidden=(8, 8),
    ...                    epochs=1, batch_size=16, n_records=2, device="cpu", progress=False)
    >>> df["step"].unique().tolist()
    [0, 1, 4]
    """
    if init not in INITS:
        raise ValueError(f"parameter 'init' = {init!r} must be one of {INITS}")
    seed = _int("seed", seed, 0)
    epochs = _int("epochs", epochs, 1)
    batch_size = _int("batch_size", batch_size, 1)
    lr = _pos_float("lr", lr)
    frobenius_norm = _pos_float("frobenius_norm", frobenius_norm)
    n_records = _int("n_records", n_records, 2)
    if spacing not in ("log", "linear"):
        raise ValueError(f"parameter 'spacing' = {spacing!r} must be 'log' or 'linear'")
    if not isinstance(X, torch.Tensor) or X.ndim != 4 or X.shape[2] != X.shape[3] or not X.is_floating_point():
        raise ValueError(f"parameter 'X' must be a float tensor of shape (N, C, S, S), got "
                         f"{tuple(X.shape) if isinstance(X, torch.Tensor) else type(X).__name__}")
    if not isinstance(y, torch.Tensor) or y.ndim != 1 or y.shape[0] != X.shape[0] or y.dtype != torch.int64:
        raise ValueError(f"parameter 'y' must be an int64 tensor of shape ({X.shape[0]},)")
    n = X.shape[0]
    if n == 0:
        raise ValueError("parameter 'X' holds no images")
    if int(y.min()) < 0:
        raise ValueError("parameter 'y' has negative labels")
    if n_classes is None:
        n_classes = max(2, int(y.max()) + 1)
    n_classes = _int("n_classes", n_classes, 2)
    if int(y.max()) >= n_classes:
        raise ValueError(f"parameter 'n_classes' = {n_classes} is too small for labels up to {int(y.max())}")
    if first_stride is None:
        first_stride = max(1, X.shape[2] // 16)
    eval_size = n if eval_size is None else min(_int("eval_size", eval_size, 1), n)
    dev = resolve_device(device)

    # The model, with the seed's initialisation; the global RNG is left untouched.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = AlexNet(in_channels=X.shape[1], image_size=X.shape[2], channels=channels, hidden=hidden,
                        n_classes=n_classes, first_stride=first_stride, pools=pools)
    gen = torch.Generator().manual_seed(seed + 0x5EED)
    if init == "frobenius":
        init_dense_frobenius(model, frobenius_norm, generator=gen)
    model = model.to(dev)
    Xd, yd = X.to(dev), y.to(dev)
    Xe, ye = Xd[:eval_size], yd[:eval_size]
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.0, weight_decay=0.0)

    steps_per_epoch = math.ceil(n / batch_size)
    total = epochs * steps_per_epoch
    schedule = record_schedule(total, n_records, spacing)
    chunk = max(batch_size, 512)
    rows: list[dict] = []

    def record(step: int) -> None:
        risk, acc = _risk(model, Xe, ye, chunk)
        for r in alignment_ratios(model).to_dict("records"):
            rows.append(dict(init=init, seed=seed, step=step, epoch=step / steps_per_epoch, risk=risk,
                             accuracy=acc, **r))

    nxt = 0
    if schedule[nxt] == 0:
        record(0)
        nxt += 1
    step = 0
    model.train()
    with bar(total=total, desc=f"AlexNet {init} seed {seed}", enabled=progress) as pb:
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen).to(dev)
            for b in range(steps_per_epoch):
                idx = perm[b * batch_size:(b + 1) * batch_size]
                opt.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(Xd[idx]), yd[idx])
                loss.backward()
                opt.step()
                step += 1
                pb.update(1)
                if nxt < len(schedule) and step == schedule[nxt]:
                    record(step)
                    nxt += 1
    df = pd.DataFrame(rows)
    df.attrs.update(dict(device=str(dev), model=model.config, dense_shapes=dense_shapes(model), epochs=epochs, lr=lr,
                         batch_size=batch_size, steps=total, frobenius_norm=frobenius_norm, eval_size=eval_size))
    return df
