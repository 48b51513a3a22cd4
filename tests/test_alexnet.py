"""The AlexNet experiment: network shapes, floors, the Frobenius initialisation, the CIFAR-10
loader, determinism, a short training run, and parameter errors."""
from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from gdalign.alexnet import (
    AlexNet,
    alignment_ratios,
    dense_shapes,
    init_dense_frobenius,
    load_cifar10,
    load_digits_images,
    ratio_floors,
    record_schedule,
    resolve_device,
    train_alexnet,
)

TINY = dict(channels=(4, 8), hidden=(16, 16))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks run fastest on one thread, and do not stall when CI runs jobs side by side."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def digits():
    return load_digits_images()


# ------------------------------------------------------------------------- network
def test_paper_dense_shapes_and_floors():
    net = AlexNet()  # the CIFAR-sized AlexNet of the paper
    assert dense_shapes(net) == [(1024, 4096), (4096, 4096), (4096, 10)]
    np.testing.assert_allclose(ratio_floors(net), [1 / 32, 1 / 64, 1 / math.sqrt(10)])
    assert net(torch.zeros(2, 3, 32, 32)).shape == (2, 10)
    # the three dense layers are the last three layers, with ReLU between them
    assert [m.weight.shape for m in net.dense] == [(4096, 1024), (4096, 4096), (10, 4096)]


def test_digits_network_shapes_and_floor_is_a_lower_bound(digits):
    X, _ = digits
    net = AlexNet(1, 8, channels=(32, 64), hidden=(512, 512), first_stride=1)
    assert dense_shapes(net) == [(256, 512), (512, 512), (512, 10)]
    assert net(X[:5]).shape == (5, 10)
    tab = alignment_ratios(net)
    assert tab["layer"].tolist() == [1, 2, 3]
    assert (tab["ratio"] >= tab["floor"] - 1e-12).all() and (tab["ratio"] <= 1 + 1e-12).all()
    # the floor is attained by a matrix with all singular values equal ...
    with torch.no_grad():
        net.dense[2].weight.copy_(torch.eye(512)[:10])
        # ... and 1 by a rank-one matrix
        net.dense[0].weight.copy_(torch.outer(torch.arange(1.0, 513), torch.ones(256)))
    tab = alignment_ratios(net)
    assert tab["ratio"][2] == pytest.approx(1 / math.sqrt(10), rel=1e-12)
    assert tab["ratio"][0] == pytest.approx(1.0, rel=1e-12)


def test_alexnet_pools_and_shape_errors():
    net = AlexNet(1, 8, channels=(4, 4, 4, 4, 4), hidden=(8, 8), first_stride=1)  # AlexNet pooling: 8 -> 1
    assert net.flat == 4 and net.config["pools"] == (True, True, False, False, True)
    with pytest.raises(ValueError, match="image_size"):
        AlexNet(1, 8, channels=(4, 4, 4, 4), hidden=(8, 8))  # stride 2 and four pools: nothing left
    with pytest.raises(ValueError, match="'pools'"):
        AlexNet(1, 8, channels=(4, 4), hidden=(8, 8), pools=(True,))
    with pytest.raises(ValueError, match=r"'hidden'"):
        AlexNet(hidden=(8,))
    with pytest.raises(ValueError, match=r"channels\[1\]"):
        AlexNet(channels=(4, 0, 4, 4, 4))


# ------------------------------------------------------------------------- initialisation
def test_frobenius_initialisation_has_norm_4_and_keeps_the_rest():
    torch.manual_seed(0)
    net = AlexNet(1, 8, first_stride=1, **TINY)
    conv_before = [p.clone() for p in net.features.parameters()]
    bias_before = [lin.bias.clone() for lin in net.dense]
    w_before = [lin.weight.clone() for lin in net.dense]
    init_dense_frobenius(net, 4.0, generator=torch.Generator().manual_seed(1))
    for lin, w0 in zip(net.dense, w_before):
        assert float(torch.linalg.matrix_norm(lin.weight.detach().double())) == pytest.approx(4.0, rel=1e-6)
        assert not torch.equal(lin.weight, w0)
    assert all(torch.equal(a, b) for a, b in zip(conv_before, net.features.parameters()))
    assert all(torch.equal(lin.bias, b) for lin, b in zip(net.dense, bias_before))
    # the default initialisation is not of norm 4 (so the test above can tell them apart)
    assert all(abs(float(torch.linalg.matrix_norm(w.detach())) - 4.0) > 0.5 for w in w_before)
    with pytest.raises(ValueError, match="'norm'"):
        init_dense_frobenius(net, -1.0)


def test_training_starts_from_the_chosen_initialisation(digits):
    X, y = digits
    kw = dict(epochs=1, batch_size=64, n_records=2, device="cpu", progress=False, **TINY)
    d = train_alexnet(X[:64], y[:64], init="default", **kw)
    f = train_alexnet(X[:64], y[:64], init="frobenius", frobenius_norm=4.0, **kw)
    np.testing.assert_allclose(f[f.step == 0]["fro"], 4.0, rtol=1e-6)
    assert (np.abs(d[d.step == 0]["fro"] - 4.0) > 0.5).all()


# ------------------------------------------------------------------------- CIFAR-10 loader
def _write_batch(path, n, rng, protocol=2, override=None):
    doc = {b"batch_label": b"generated", b"labels": rng.integers(0, 10, n).tolist(),
           b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
           b"filenames": [f"img_{i}.png".encode() for i in range(n)]}
    doc.update(override or {})
    with open(path, "wb") as f:
        pickle.dump(doc, f, protocol=protocol)
    return doc


@pytest.fixture
def cifar_dir(tmp_path):
    rng = np.random.default_rng(0)
    docs = [_write_batch(tmp_path / f"data_batch_{i}", 6, rng, protocol=2 if i % 2 else 5) for i in range(1, 6)]
    test = _write_batch(tmp_path / "test_batch", 4, rng)
    return tmp_path, docs, test


def test_cifar_loader_reads_the_python_batches(cifar_dir):
    root, docs, test = cifar_dir
    X, y = load_cifar10(root)
    assert X.shape == (30, 3, 32, 32) and X.dtype == torch.float32
    assert y.tolist() == sum((d[b"labels"] for d in docs), [])
    # standardised per channel
    np.testing.assert_allclose(X.mean(dim=(0, 2, 3)).numpy(), 0, atol=1e-5)
    np.testing.assert_allclose(X.std(dim=(0, 2, 3), unbiased=False).numpy(), 1, atol=1e-4)
    # layout: 1024 red values, then green, then blue, each row-major 32 x 32
    raw = np.concatenate([d[b"data"] for d in docs]).astype(np.float64) / 255
    Xr, _ = load_cifar10(root, mean=(0, 0, 0), std=(1, 1, 1))
    np.testing.assert_allclose(Xr[7, 1, 2, 5].item(), raw[7, 1024 + 2 * 32 + 5], rtol=1e-6)
    np.testing.assert_allclose(Xr[29, 2, 31, 31].item(), raw[29, 3071], rtol=1e-6)
    Xt, yt = load_cifar10(root, split="test")
    assert Xt.shape == (4, 3, 32, 32) and yt.tolist() == test[b"labels"]
    Xl, yl = load_cifar10(root, limit=8)
    assert Xl.shape[0] == 8 and yl.tolist() == y[:8].tolist()


def test_cifar_loaded_images_train(cifar_dir):
    root, _, _ = cifar_dir
    X, y = load_cifar10(root)
    df = train_alexnet(X, y, n_classes=10, epochs=1, batch_size=10, n_records=2, device="cpu", progress=False,
                       channels=(4, 4, 4, 4, 4), hidden=(8, 8))
    assert df.attrs["dense_shapes"] == [(16, 8), (8, 8), (8, 10)]  # 32 -stride 2-> 16 -3 pools-> 2; 4 * 2 * 2


@pytest.mark.parametrize("override, match", [
    ({b"data": np.zeros((6, 3000), dtype=np.uint8)}, r"b'data' must be a uint8 array of shape \(N, 3072\)"),
    ({b"data": np.zeros((6, 3072), dtype=np.float32)}, "b'data' must be a uint8"),
    ({b"labels": [0, 1, 2]}, "b'labels' must be 6 integers"),
    ({b"labels": [0, 1, 2, 3, 4, 10]}, r"0\.\.9"),
])
def test_cifar_loader_rejects_malformed_batches(tmp_path, override, match):
    rng = np.random.default_rng(1)
    for i in range(1, 6):
        _write_batch(tmp_path / f"data_batch_{i}", 6, rng, override=override if i == 3 else None)
    with pytest.raises(ValueError, match=match) as e:
        load_cifar10(tmp_path)
    assert "data_batch_3" in str(e.value)


def test_cifar_loader_rejects_non_batches_and_missing_files(tmp_path):
    rng = np.random.default_rng(2)
    for i in range(1, 6):
        _write_batch(tmp_path / f"data_batch_{i}", 2, rng)
    (tmp_path / "data_batch_2").write_bytes(b"this is not a pickle")
    with pytest.raises(ValueError, match="data_batch_2.*not a CIFAR-10 python batch"):
        load_cifar10(tmp_path)
    with open(tmp_path / "data_batch_2", "wb") as f:
        pickle.dump({b"data": 1}, f)
    with pytest.raises(ValueError, match="need keys b'data' and b'labels'"):
        load_cifar10(tmp_path)

    class Evil:  # a pickle that would call a function when loaded
        def __reduce__(self):
            return (print, ("side effect",))
    with open(tmp_path / "data_batch_2", "wb") as f:
        pickle.dump({b"data": Evil(), b"labels": []}, f)
    with pytest.raises(ValueError, match="refusing to load builtins.print"):
        load_cifar10(tmp_path)
    with pytest.raises(FileNotFoundError, match="test_batch"):
        load_cifar10(tmp_path, split="test")
    with pytest.raises(FileNotFoundError, match="'directory'"):
        load_cifar10(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="'split'"):
        load_cifar10(tmp_path, split="valid")
    with pytest.raises(ValueError, match="'directory'"):
        load_cifar10("")


# ------------------------------------------------------------------------- training
def test_same_seed_same_numbers_other_seed_other_numbers(digits):
    X, y = digits
    kw = dict(init="frobenius", epochs=2, batch_size=32, n_records=4, device="cpu", progress=False, **TINY)
    a = train_alexnet(X[:96], y[:96], seed=3, **kw)
    b = train_alexnet(X[:96], y[:96], seed=3, **kw)
    c = train_alexnet(X[:96], y[:96], seed=4, **kw)
    assert a.equals(b)
    assert not np.allclose(a["ratio"], c["ratio"])


def test_global_rng_is_left_alone(digits):
    X, y = digits
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    train_alexnet(X[:32], y[:32], epochs=1, batch_size=16, n_records=2, device="cpu", progress=False, **TINY)
    assert torch.equal(torch.rand(3), expected)


def test_a_short_run_lowers_the_risk_and_records_a_tidy_table(digits):
    X, y = digits
    df = train_alexnet(X[:256], y[:256], init="default", seed=0, channels=(8, 16), hidden=(64, 64),
                       epochs=8, lr=0.3, batch_size=32, n_records=6, device="cpu", progress=False)
    assert {"init", "seed", "step", "epoch", "risk", "accuracy", "layer", "spec", "fro", "ratio",
            "floor"} <= set(df.columns)
    assert (df.groupby("step").size() == 3).all()
    steps = df["step"].unique()
    assert steps[0] == 0 and steps[-1] == 8 * 8 and np.all(np.diff(steps) > 0)
    risk = df.groupby("step")["risk"].first()
    assert risk.iloc[0] == pytest.approx(math.log(10), abs=0.1)
    assert risk.iloc[-1] < 0.7 * risk.iloc[0]
    np.testing.assert_allclose(df["ratio"], df["spec"] / df["fro"])
    assert df.attrs["device"] == "cpu"


def test_record_schedule():
    s = record_schedule(5000, 20)
    assert s[0] == 0 and s[1] == 1 and s[-1] == 5000 and np.all(np.diff(s) > 0)
    ratios = s[2:] / s[1:-1]  # geometric once past the rounding at small steps
    assert np.allclose(ratios[-5:], ratios[-1], rtol=0.05)
    assert record_schedule(10, 50).tolist() == list(range(11))
    assert record_schedule(90, 4, "linear").tolist() == [0, 30, 60, 90]


def test_device():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError, match="'device'"):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="'device'.*CUDA is not available"):
            resolve_device("cuda")


@pytest.mark.parametrize("kw, name", [
    (dict(init="xavier"), "init"),
    (dict(epochs=0), "epochs"),
    (dict(epochs=1.5), "epochs"),
    (dict(lr=0.0), "lr"),
    (dict(lr=float("nan")), "lr"),
    (dict(batch_size=0), "batch_size"),
    (dict(seed=-1), "seed"),
    (dict(n_records=1), "n_records"),
    (dict(spacing="cubic"), "spacing"),
    (dict(frobenius_norm=0), "frobenius_norm"),
    (dict(device="gpu"), "device"),
    (dict(n_classes=5), "n_classes"),
    (dict(eval_size=0), "eval_size"),
    (dict(hidden=(8,)), "hidden"),
])
def test_bad_parameters_raise_naming_them(digits, kw, name):
    X, y = digits
    args = dict(epochs=1, batch_size=16, device="cpu", progress=False, **TINY)
    args.update(kw)
    with pytest.raises(ValueError, match=f"'{name}'"):
        train_alexnet(X[:32], y[:32], **args)


def test_bad_data_raise_naming_them(digits):
    X, y = digits
    with pytest.raises(ValueError, match="'X'"):
        train_alexnet(X[:8, 0], y[:8], **TINY)
    with pytest.raises(ValueError, match="'y'"):
        train_alexnet(X[:8], y[:7], **TINY)
    with pytest.raises(ValueError, match="'y'"):
        train_alexnet(X[:8], y[:8].float(), **TINY)
