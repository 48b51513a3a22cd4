"""Data sets: normalisation, generators, scikit-learn tasks, label flips, files, stored sets."""
from __future__ import annotations

import hashlib
import re
import shutil

import numpy as np
import pytest

from gdalign import data as D
from gdalign.margin import is_separable, max_margin


def _maxnorm(ds):
    return float(np.linalg.norm(ds.X, axis=1).max())


# ------------------------------------------------------------------ Dataset and make_dataset

def test_dataset_container_api():
    ds = D.toy()
    assert (ds.n, ds.d) == (16, 2)
    assert ds.X.dtype == np.float64 and ds.y.dtype == np.float64
    np.testing.assert_array_equal(ds.Z, ds.y[:, None] * ds.X)
    assert set(ds.y.tolist()) == {-1.0, 1.0}
    assert abs(_maxnorm(ds) - 1.0) < 1e-15


def test_make_dataset_rescales_and_maps_01_labels():
    ds = D.make_dataset([[3.0, 4.0], [0.0, -2.0], [1.0, 1.0]], [1, 0, 0], name="mine", source="by hand")
    assert ds.y.tolist() == [1.0, -1.0, -1.0]
    assert abs(_maxnorm(ds) - 1.0) < 1e-15
    np.testing.assert_allclose(ds.X[0], [0.6, 0.8], rtol=0, atol=1e-15)
    assert ds.meta["scale"] == pytest.approx(0.2)
    # bool labels are 0/1
    assert D.make_dataset([[1.0], [-1.0]], [True, False]).y.tolist() == [1.0, -1.0]


def test_dataset_copies_its_inputs():
    X = np.array([[1.0, 0.0], [0.0, 1.0]])
    ds = D.Dataset(X, np.array([1.0, -1.0]))
    X[0, 0] = 5.0
    assert ds.X[0, 0] == 1.0


@pytest.mark.parametrize("X, y, pattern", [
    ([[1.0, np.nan], [0.0, 1.0]], [1, -1], r"NaN or inf \(first at row 0, column 1"),
    ([[1.0, 0.0], [np.inf, 1.0]], [1, -1], r"NaN or inf \(first at row 1, column 0"),
    ([[1.0, 0.0], [0.0, 1.0]], [1, 2], r"labels must be two classes .* found values \[1\.0, 2\.0\]"),
    ([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], [-1, 0, 1], r"labels must be two classes"),
    ([[1.0, 0.0], [0.0, 1.0]], [1, 1], r"only one class"),
    ([[1.0, 0.0], [0.0, 1.0]], [0, 0], r"only one class"),
    (np.zeros((0, 2)), [], r"empty"),
    (np.zeros((2, 0)), [1, -1], r"empty"),
    ([[1.0, 0.0], [0.0, 1.0]], [1, -1, 1], r"mismatched lengths: X has 2 rows, y has 3"),
    ([1.0, 2.0], [1, -1], r"2-D"),
    ([[0.0, 0.0], [0.0, 0.0]], [1, -1], r"every x_i is zero"),
    ([[1.0, 0.0], [0.0, 1.0]], [1, np.nan], r"label at row 1 is nan"),
    ([["a", "b"], ["c", "d"]], [1, -1], r"numeric"),
])
def test_make_dataset_rejects_bad_input(X, y, pattern):
    with pytest.raises(ValueError, match=pattern):
        D.make_dataset(X, y, name="bad")


@pytest.mark.parametrize("X, y, pattern", [
    ([[3.0, 4.0], [0.0, 1.0]], [1.0, -1.0], r"max \|\|x_i\|\| is 5\.0, expected 1"),
    ([[1.0, 0.0], [0.0, 1.0]], [1.0, 0.0], r"labels must be -1 or \+1, found \[0\.0\]"),
    ([[1.0, 0.0], [0.0, 1.0]], [1.0, 1.0], r"only one class"),
    ([[1.0, 0.0], [0.0, np.nan]], [1.0, -1.0], r"NaN or inf"),
    ([[1.0, 0.0]], [1.0, -1.0], r"mismatched lengths"),
    (np.zeros((0, 3)), np.zeros(0), r"empty"),
])
def test_dataset_validation_is_in_the_constructor(X, y, pattern):
    with pytest.raises(ValueError, match=r"^named: .*" + pattern):
        D.Dataset(np.asarray(X, dtype=float), np.asarray(y, dtype=float), name="named")


# ------------------------------------------------------------------ toy and Gaussian generators

def test_toy_is_reproducible_and_has_its_support_points():
    a, b = D.toy(), D.toy()
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.y, b.y)
    assert not np.array_equal(D.toy(seed=1).X, a.X)
    s = a.meta["scale"]
    np.testing.assert_allclose(a.X[:4], s * np.array([[0.5, 1.5], [1.5, 0.5], [-0.5, -1.5], [-1.5, -0.5]]),
                               rtol=0, atol=1e-16)
    np.testing.assert_array_equal(a.y[:4], [1, 1, -1, -1])
    u = np.array([1.0, 1.0]) / np.sqrt(2.0)
    m = a.Z @ u
    assert np.allclose(m[:4], a.meta["gamma"], rtol=1e-15)
    assert (m[4:] >= 1.25 * a.meta["gamma"] * (1 - 1e-12)).all()  # every extra point is off the margin
    assert D.toy(n_extra=0).n == 4


def test_gaussian_separable_properties_and_reproducibility():
    ds = D.gaussian_separable(80, 5, seed=3, margin_gap=0.2)
    assert (ds.n, ds.d) == (80, 5)
    assert abs(_maxnorm(ds) - 1.0) < 1e-15
    u = ds.meta["teacher"]
    assert abs(np.linalg.norm(u) - 1.0) < 1e-15
    # labelled by the teacher, with the gap (scaled by the normalisation)
    assert (ds.Z @ u >= 0.2 * ds.meta["scale"] * (1 - 1e-12)).all()
    again = D.gaussian_separable(80, 5, seed=3, margin_gap=0.2)
    assert ds.X.tobytes() == again.X.tobytes() and ds.y.tobytes() == again.y.tobytes()
    assert not np.array_equal(D.gaussian_separable(80, 5, seed=4, margin_gap=0.2).X, ds.X)
    assert set(D.gaussian_separable(2, 1, seed=0).y.tolist()) == {-1.0, 1.0}  # both classes always


@pytest.mark.parametrize("kw, pattern", [
    (dict(n=1, d=3), r"n = 1 is out of range"),
    (dict(n=10, d=0), r"d = 0 is out of range"),
    (dict(n=10.5, d=3), r"n must be an integer"),
    (dict(n=10, d=3, margin_gap=-0.1), r"margin_gap must be a finite number >= 0"),
    (dict(n=10, d=3, margin_gap=float("nan")), r"margin_gap must be a finite number"),
    (dict(n=10, d=3, margin_gap=5.0), r"keeps only a fraction"),
])
def test_gaussian_separable_rejects_bad_parameters(kw, pattern):
    with pytest.raises(ValueError, match=pattern):
        D.gaussian_separable(**kw)


# ------------------------------------------------------------------ scikit-learn tasks

def test_sklearn_tasks_listed_and_checked():
    t = D.sklearn_tasks(check=True).set_index("name")
    assert {"iris-setosa", "digits-0-1"} <= set(t.index)
    for name in ["iris-setosa", "digits-0-1", "wine-0-1", "breast-cancer"]:
        assert t.loc[name, "separable"], name
        assert t.loc[name, "gamma"] > 0
    assert not t.loc["iris-versicolor-virginica", "separable"]
    assert (t.loc["iris-setosa", "n"], t.loc["iris-setosa", "d"]) == (150, 4)
    assert t.loc["digits-0-1", "n"] == 360


def test_sklearn_task_preprocessing_is_recorded_and_applied():
    ds = D.sklearn_task("iris-setosa")
    assert "standardize" in ds.source and "centred" in ds.source and "no download" in ds.source
    assert abs(_maxnorm(ds) - 1.0) < 1e-15
    np.testing.assert_allclose(ds.X.mean(axis=0), 0.0, atol=1e-12)  # centred
    sd = ds.X.std(axis=0)
    np.testing.assert_allclose(sd / sd[0], 1.0, rtol=1e-12)  # equal spreads before the global rescale
    assert int((ds.y > 0).sum()) == 50
    dg = D.sklearn_task("digits-0-1")
    assert dg.meta["dropped_features"] == 64 - dg.d > 0  # the always-blank pixels
    assert "constant feature(s) dropped" in dg.source
    raw = D.sklearn_task("digits-0-1", preprocess="none")
    assert raw.d == 64 and (raw.X >= 0).all()


def test_centring_decides_separability_of_breast_cancer():
    # documented in sklearn_task: separable through the origin only without centring
    assert is_separable(D.sklearn_task("breast-cancer", preprocess="scale"))
    assert not is_separable(D.sklearn_task("breast-cancer", preprocess="standardize"))


def test_sklearn_task_rejects_unknown_names():
    with pytest.raises(ValueError, match=r"unknown scikit-learn task 'iris'"):
        D.sklearn_task("iris")
    with pytest.raises(ValueError, match=r"preprocess must be one of"):
        D.sklearn_task("iris-setosa", preprocess="whiten")


# ------------------------------------------------------------------ label flips

def test_flip_labels_by_fraction_and_indices():
    ds = D.toy()
    f = D.flip_labels(ds, 0.25, seed=2)
    assert len(f.meta["flipped"]) == 4
    idx = np.array(f.meta["flipped"])
    np.testing.assert_array_equal(f.y[idx], -ds.y[idx])
    keep = np.setdiff1d(np.arange(ds.n), idx)
    np.testing.assert_array_equal(f.y[keep], ds.y[keep])
    np.testing.assert_array_equal(f.X, ds.X)
    assert D.flip_labels(ds, 0.25, seed=2).meta["flipped"] == f.meta["flipped"]
    assert "flipped" in f.source and ds.y[0] == 1.0  # the original is untouched
    g = D.flip_labels(ds, indices=[0, 5])
    assert g.meta["flipped"] == [0, 5] and g.y[0] == -1.0
    assert "u_bar" not in g.meta  # the known answer no longer applies
    assert is_separable(ds) and not is_separable(g)


@pytest.mark.parametrize("kw, pattern", [
    (dict(), r"exactly one of"),
    (dict(fraction=0.1, indices=[1]), r"exactly one of"),
    (dict(fraction=0.0), r"fraction must be a number in \(0, 1\]"),
    (dict(fraction=1.5), r"fraction must be"),
    (dict(indices=[16]), r"indices must lie in \[0, 15\]"),
    (dict(indices=[1, 1]), r"indices repeat"),
    (dict(indices=[]), r"non-empty"),
])
def test_flip_labels_rejects_bad_arguments(kw, pattern):
    with pytest.raises(ValueError, match=pattern):
        D.flip_labels(D.toy(), **kw)


# ------------------------------------------------------------------ files

def test_load_csv_with_header_and_label_column(tmp_path):
    p = tmp_path / "mine.csv"
    p.write_text("a,label,b\n3,1,4\n# a comment line\n\n0,0,-2\n1,1,1\n")
    ds = D.load_file(p)
    assert ds.name == "mine" and ds.meta["label_column"] == "label" and ds.meta["features"] == ["a", "b"]
    assert ds.y.tolist() == [1.0, -1.0, 1.0]
    np.testing.assert_allclose(ds.X, np.array([[3, 4], [0, -2], [1, 1]]) / 5.0, rtol=0, atol=1e-15)
    assert ds.meta["sha256"] == hashlib.sha256(p.read_bytes()).hexdigest()
    assert "mine.csv" in ds.source


def test_load_csv_without_header_uses_last_column(tmp_path):
    p = tmp_path / "plain.csv"
    p.write_text("0.5,0.1,-1\n-0.2,0.3,1\n")
    ds = D.load_file(p)
    assert ds.y.tolist() == [-1.0, 1.0] and ds.d == 2


def test_load_npz(tmp_path):
    p = tmp_path / "arr.npz"
    np.savez(p, X=np.array([[2.0, 0.0], [0.0, 1.0]]), y=np.array([0, 1]))
    ds = D.load_file(p)
    assert ds.y.tolist() == [-1.0, 1.0] and _maxnorm(ds) == 1.0


@pytest.mark.parametrize("name, content, pattern", [
    ("nan.csv", "x1,x2,y\n1,2,1\n3,nan,-1\n", r"nan\.csv, line 3, column 'x2': value 'nan' is NaN or inf"),
    ("inf.csv", "1,2,1\n3,inf,-1\n", r"inf\.csv, line 2, column 'column 2': value 'inf' is NaN or inf"),
    ("word.csv", "x1,y\n1,1\nabc,-1\n", r"word\.csv, line 3, column 'x1': 'abc' is not a number"),
    ("ragged.csv", "x1,x2,y\n1,2,1\n3,-1\n", r"ragged\.csv, line 3: 2 values, expected 3"),
    ("labels.csv", "x,y\n1,1\n2,2\n", r"labels\.csv, label column 'y': labels must be two classes"),
    ("one.csv", "x,y\n1,1\n2,1\n", r"one\.csv, label column 'y': only one class"),
    ("empty.csv", "", r"empty\.csv: the file has no rows"),
    ("header.csv", "x,y\n", r"header\.csv: the file has a header but no data rows"),
    ("onecol.csv", "y\n1\n-1\n", r"onecol\.csv: need at least one feature column"),
    ("both.csv", "x,y,label\n1,1,1\n2,-1,-1\n", r"both 'y' and 'label'"),
    ("dup.csv", "x,x,y\n1,1,1\n2,2,-1\n", r"repeats a column name"),
    ("zero.csv", "x,y\n0,1\n0,-1\n", r"every x_i is zero"),
])
def test_load_csv_errors_name_file_and_problem(tmp_path, name, content, pattern):
    p = tmp_path / name
    p.write_text(content)
    with pytest.raises(ValueError, match=pattern):
        D.load_file(p)


def test_load_file_errors(tmp_path):
    with pytest.raises(ValueError, match=r"missing\.csv: file not found"):
        D.load_file(tmp_path / "missing.csv")
    (tmp_path / "data.txt").write_text("1,2,1\n")
    with pytest.raises(ValueError, match=r"data\.txt: unsupported file type '\.txt'; expected \.csv or \.npz"):
        D.load_file(tmp_path / "data.txt")
    with pytest.raises(ValueError, match=r"unsupported file type '\(no suffix\)'"):
        D.load_file(tmp_path / "noext")
    (tmp_path / "folder.csv").mkdir()
    with pytest.raises(ValueError, match=r"folder\.csv: not a regular file"):
        D.load_file(tmp_path / "folder.csv")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe\x00\x81")
    with pytest.raises(ValueError, match=r"bin\.csv: not a UTF-8 text CSV"):
        D.load_file(tmp_path / "bin.csv")
    (tmp_path / "junk.npz").write_bytes(b"not a zip file")
    with pytest.raises(ValueError, match=r"junk\.npz: (not a valid \.npz|cannot read)"):
        D.load_file(tmp_path / "junk.npz")
    np.savez(tmp_path / "keys.npz", A=np.ones((2, 2)), y=np.array([1, -1]))
    with pytest.raises(ValueError, match=r"keys\.npz: an \.npz data file must hold arrays 'X' and 'y'; found"):
        D.load_file(tmp_path / "keys.npz")
    np.savez(tmp_path / "mism.npz", X=np.ones((3, 2)), y=np.array([1, -1]))
    with pytest.raises(ValueError, match=r"mism\.npz: X and y have mismatched lengths"):
        D.load_file(tmp_path / "mism.npz")
    np.savez(tmp_path / "nan.npz", X=np.array([[1.0, 0.0], [np.nan, 1.0]]), y=np.array([1, -1]))
    with pytest.raises(ValueError, match=r"nan\.npz: X contains NaN or inf \(first at row 1, column 0\)"):
        D.load_file(tmp_path / "nan.npz")
    np.savez(tmp_path / "lab.npz", X=np.ones((2, 2)), y=np.array([3, 4]))
    with pytest.raises(ValueError, match=r"lab\.npz, array 'y': labels must be two classes"):
        D.load_file(tmp_path / "lab.npz")
    np.savez(tmp_path / "obj.npz", X=np.array([[1, "a"]], dtype=object), y=np.array([1]))
    with pytest.raises(ValueError, match=r"obj\.npz"):
        D.load_file(tmp_path / "obj.npz")


# ------------------------------------------------------------------ stored sets and checksums

def test_stored_sets_match_their_generators_bit_for_bit():
    assert {"toy", "gaussian-n40-d3"} <= set(D.stored_sets())
    t = D.load_stored("toy")
    assert t.X.tobytes() == D.toy().X.tobytes() and t.y.tobytes() == D.toy().y.tobytes()
    assert "verified" in t.source
    g = D.load_stored("gaussian-n40-d3")
    ref = D.gaussian_separable(40, 3, seed=0, margin_gap=0.1)
    assert g.X.tobytes() == ref.X.tobytes() and g.y.tobytes() == ref.y.tobytes()


def test_checksums_recorded_in_readme_and_sums_file_agree_with_the_files():
    sums = D._recorded_sums(D.DATA_DIR)
    readme = (D.DATA_DIR / "README.md").read_text()
    for fname, digest in sums.items():
        assert D.sha256_file(D.DATA_DIR / fname) == digest, fname
        row = [line for line in readme.splitlines() if f"`{fname}`" in line]
        assert row and digest in row[0], f"README row for {fname} lacks its checksum"
    assert set(re.findall(r"\b[0-9a-f]{64}\b", readme)) == set(sums.values())


def test_load_stored_refuses_a_changed_file(tmp_path):
    for f in ["toy.csv", "SHA256SUMS"]:
        shutil.copy(D.DATA_DIR / f, tmp_path / f)
    (tmp_path / "SHA256SUMS").write_text(
        "".join(line + "\n" for line in (tmp_path / "SHA256SUMS").read_text().splitlines() if "toy.csv" in line))
    assert D.load_stored("toy", root=tmp_path).n == 16
    text = (tmp_path / "toy.csv").read_text()
    (tmp_path / "toy.csv").write_text(text.replace("0.14457565908952053", "0.14457565908952054", 1))
    with pytest.raises(ValueError, match=r"toy\.csv: SHA-256 [0-9a-f]{64} does not match the recorded"):
        D.load_stored("toy", root=tmp_path)
    (tmp_path / "toy.csv").unlink()
    with pytest.raises(ValueError, match=r"listed in SHA256SUMS but the file is missing"):
        D.load_stored("toy", root=tmp_path)
    with pytest.raises(ValueError, match=r"no stored set 'nope'"):
        D.load_stored("nope")


def test_max_margin_of_stored_gaussian_set():
    r = max_margin(D.load_stored("gaussian-n40-d3"))
    assert r.assumption3 and r.dual_positive and r.alpha > 0 and r.n_support == 3
