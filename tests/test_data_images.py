"""The image loaders, run on tiny files written here in each dataset's own on-disk format.

The torchvision classes' class-level MD5 lists are monkeypatched to the MD5s of the files written,
so the real integrity checks run. Nothing is downloaded: every test runs with urlopen blocked.
"""

from __future__ import annotations

import hashlib
import pickle
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch
from PIL import Image
from torchvision.datasets import CIFAR10, SVHN, CelebA

from ali.data.images import DATASETS, DatasetMissingError, TinyImageNet, download, load, split_size, to_float


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Any attempt to reach the network fails, and the URLs tried are recorded."""
    tried: list[str] = []

    def refuse(request, *args, **kwargs):
        tried.append(request.full_url if isinstance(request, urllib.request.Request) else str(request))
        raise urllib.error.URLError("tests are offline")

    monkeypatch.setattr(urllib.request, "urlopen", refuse)
    return tried


# ----------------------------------------------------------------------------------------------------
# SVHN: <root>/svhn/{split}_32x32.mat with X (32, 32, 3, N) uint8 and y (N, 1), digit 0 stored as 10

SVHN_N = {"train": 7, "test": 5, "extra": 3}


@pytest.fixture
def svhn_root(tmp_path, monkeypatch):
    rng = np.random.default_rng(0)
    folder = tmp_path / "svhn"
    folder.mkdir()
    written, split_list = {}, {}
    for split, n in SVHN_N.items():
        x = rng.integers(0, 256, size=(32, 32, 3, n), dtype=np.uint8)
        y = np.array([10, 1, 2, 10, 9, 5, 3][:n], dtype=np.uint8).reshape(n, 1)
        url, filename, _ = SVHN.split_list[split]
        scipy.io.savemat(folder / filename, {"X": x, "y": y})
        split_list[split] = [url, filename, _md5(folder / filename)]
        written[split] = (x, y)
    monkeypatch.setattr(SVHN, "split_list", split_list)
    return tmp_path, written


def test_svhn_layout_and_pixels_round_trip(svhn_root):
    """(H, W, C, N) on disk -> (N, C, H, W) uint8, every pixel where it was written."""
    root, written = svhn_root
    for split, n in SVHN_N.items():
        images, labels = load("svhn", split, root)
        assert images.shape == (n, 3, 32, 32) and images.dtype == np.uint8 and images.flags.c_contiguous
        assert labels.shape == (n,) and labels.dtype == np.int64
        x, _ = written[split]
        np.testing.assert_array_equal(images, x.transpose(3, 2, 0, 1))
        assert images[1, 2, 3, 4] == x[3, 4, 2, 1]  # one pixel by hand: image 1, channel 2, row 3, column 4


def test_svhn_label_10_is_digit_0(svhn_root):
    """The .mat files store digit 0 as 10: torchvision itself maps it to 0, and so does our loader."""
    root, written = svhn_root
    _, y = written["train"]
    assert (y == 10).sum() == 2
    raw = SVHN(root / "svhn", split="train", download=False).labels  # the installed torchvision's mapping
    np.testing.assert_array_equal(raw, np.where(y.ravel() == 10, 0, y.ravel()))
    _, labels = load("svhn", "train", root)
    np.testing.assert_array_equal(labels, [0, 1, 2, 0, 9, 5, 3])
    assert labels.min() >= 0 and labels.max() <= 9


def test_svhn_corrupt_file_names_file_and_md5(svhn_root):
    root, _ = svhn_root
    path = root / "svhn" / "test_32x32.mat"
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))
    expected_md5 = SVHN.split_list["test"][2]
    with pytest.raises(DatasetMissingError) as err:
        load("svhn", "test", root)
    msg = str(err.value)
    assert "test_32x32.mat" in msg and expected_md5 in msg and "corrupt" in msg
    assert _md5(path) in msg  # the MD5 actually found
    assert f"ali download svhn --root {root}" in msg
    load("svhn", "train", root)  # the other splits are untouched


def test_svhn_missing_file_says_what_to_put_where(tmp_path):
    with pytest.raises(DatasetMissingError) as err:
        load("svhn", "extra", tmp_path)
    msg = str(err.value)
    url, filename, md5 = SVHN.split_list["extra"]
    assert isinstance(err.value, FileNotFoundError) and not isinstance(err.value, RuntimeError)
    for needle in (filename, md5, url, str(tmp_path / "svhn"), "missing", f"ali download svhn --root {tmp_path}"):
        assert needle in msg


# ----------------------------------------------------------------------------------------------------
# CIFAR10: <root>/cifar-10-batches-py/data_batch_1..5, test_batch, batches.meta (pickled dicts)

CIFAR_N = {"data_batch_1": 3, "data_batch_2": 2, "data_batch_3": 4, "data_batch_4": 1, "data_batch_5": 2,
           "test_batch": 3}


def _pickle(path: Path, obj: dict) -> None:
    # The real files are Python 2 pickles whose str keys torchvision reads with encoding="latin1", which
    # gives str keys ('data'); Python 3 bytes keys (b'data') would load as bytes and break torchvision.
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


@pytest.fixture
def cifar_root(tmp_path, monkeypatch):
    rng = np.random.default_rng(1)
    folder = tmp_path / CIFAR10.base_folder
    folder.mkdir()
    written = {}
    for name, n in CIFAR_N.items():
        data = rng.integers(0, 256, size=(n, 3072), dtype=np.uint8)  # each row: R plane, G plane, B plane
        labels = rng.integers(0, 10, size=n).tolist()
        _pickle(folder / name, {"batch_label": name, "data": data, "labels": labels})
        written[name] = (data, labels)
    _pickle(folder / "batches.meta", {"label_names": ["airplane", "automobile", "bird", "cat", "deer", "dog",
                                                     "frog", "horse", "ship", "truck"]})
    monkeypatch.setattr(CIFAR10, "train_list", [[f"data_batch_{i}", _md5(folder / f"data_batch_{i}")]
                                                for i in range(1, 6)])
    monkeypatch.setattr(CIFAR10, "test_list", [["test_batch", _md5(folder / "test_batch")]])
    monkeypatch.setattr(CIFAR10, "meta", {"filename": "batches.meta", "key": "label_names",
                                          "md5": _md5(folder / "batches.meta")})
    return tmp_path, written


def test_cifar10_layout_pixels_and_labels_round_trip(cifar_root):
    """Rows of 3072 bytes are CHW planes: torchvision's NHWC .data must come back as the same NCHW."""
    root, written = cifar_root
    images, labels = load("cifar10", "train", root)
    batches = [written[f"data_batch_{i}"] for i in range(1, 6)]
    n = sum(len(d) for d, _ in batches)
    assert images.shape == (n, 3, 32, 32) and images.dtype == np.uint8 and images.flags.c_contiguous
    np.testing.assert_array_equal(images, np.concatenate([d for d, _ in batches]).reshape(n, 3, 32, 32))
    np.testing.assert_array_equal(labels, sum((lab for _, lab in batches), []))
    assert labels.dtype == np.int64
    # one pixel by hand: image 0, channel 1 (G), row 2, column 5 sits at byte 1*1024 + 2*32 + 5 of the row
    assert images[0, 1, 2, 5] == batches[0][0][0, 1024 + 2 * 32 + 5]

    test_images, test_labels = load("cifar10", "test", root)
    data, lab = written["test_batch"]
    np.testing.assert_array_equal(test_images, data.reshape(-1, 3, 32, 32))
    np.testing.assert_array_equal(test_labels, lab)


def test_cifar10_corrupt_batch_names_file_and_md5(cifar_root):
    root, _ = cifar_root
    path = root / CIFAR10.base_folder / "data_batch_3"
    data = bytearray(path.read_bytes())
    data[200] ^= 0x01
    path.write_bytes(bytes(data))
    with pytest.raises(DatasetMissingError) as err:
        load("cifar10", "test", root)  # torchvision checks every batch whichever split is asked for
    msg = str(err.value)
    assert "data_batch_3" in msg and CIFAR10.train_list[2][1] in msg and "corrupt" in msg
    assert "data_batch_1" not in msg  # only the bad file is listed


def test_cifar10_missing_says_what_to_put_where(tmp_path):
    with pytest.raises(DatasetMissingError) as err:
        load("cifar10", "train", tmp_path)
    msg = str(err.value)
    for needle in (str(tmp_path / CIFAR10.base_folder), "data_batch_5", "test_batch", "batches.meta",
                   CIFAR10.url, CIFAR10.tgz_md5, f"ali download cifar10 --root {tmp_path}"):
        assert needle in msg


# ----------------------------------------------------------------------------------------------------
# CelebA: <root>/celeba/img_align_celeba/*.jpg and five text lists

CELEBA_PARTITION = [0, 0, 0, 1, 1, 2, 2]  # torchvision cannot select a one-image split, so two or more each


def _celeba_lists(names: list[str]) -> dict[str, str]:
    attrs = [f"Attr_{k}" for k in range(40)]
    marks = "lefteye_x lefteye_y righteye_x righteye_y nose_x nose_y leftmouth_x leftmouth_y rightmouth_x rightmouth_y"
    n = len(names)
    return {
        "list_eval_partition.txt": "".join(f"{f} {p}\n" for f, p in zip(names, CELEBA_PARTITION)),
        "identity_CelebA.txt": "".join(f"{f} {k + 1}\n" for k, f in enumerate(names)),
        "list_bbox_celeba.txt": f"{n}\nimage_id x_1 y_1 width height\n"
                                + "".join(f"{f} 95 71 226 313\n" for f in names),
        "list_landmarks_align_celeba.txt": f"{n}\n{marks}\n"
                                           + "".join(f"{f} 69 109 106 113 77 142 73 152 108 154\n" for f in names),
        "list_attr_celeba.txt": f"{n}\n{' '.join(attrs)}\n" + "".join(f"{f} {' '.join(['-1', '1'] * 20)}\n"
                                                                      for f in names),
    }


@pytest.fixture
def celeba_root(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    folder = tmp_path / CelebA.base_folder
    (folder / "img_align_celeba").mkdir(parents=True)
    names = [f"{k + 1:06d}.jpg" for k in range(len(CELEBA_PARTITION))]
    for f in names:  # smooth random faces-sized images, 178 wide by 218 high
        small = rng.integers(0, 256, size=(11, 9, 3), dtype=np.uint8)
        Image.fromarray(small).resize((178, 218), Image.Resampling.BILINEAR).save(folder / "img_align_celeba" / f)
    md5s = {}
    for filename, text in _celeba_lists(names).items():
        (folder / filename).write_text(text)
        md5s[filename] = _md5(folder / filename)
    monkeypatch.setattr(CelebA, "file_list", [(fid, md5s.get(fn, md5), fn) for fid, md5, fn in CelebA.file_list])
    return tmp_path, names


def test_celeba_splits_shape_and_preprocessing(celeba_root):
    """Official partition, 64x64, labels -1, and each face is Fuel's resize-to-64x78-then-crop recipe."""
    root, names = celeba_root
    for split, code in (("train", 0), ("valid", 1), ("test", 2)):
        images, labels = load("celeba", split, root)
        chosen = [f for f, p in zip(names, CELEBA_PARTITION) if p == code]
        assert images.shape == (len(chosen), 3, 64, 64) and images.dtype == np.uint8
        np.testing.assert_array_equal(labels, -1)
        for image, f in zip(images, chosen):
            face = Image.open(root / "celeba" / "img_align_celeba" / f).convert("RGB")
            expected = np.asarray(face.resize((64, 78), Image.Resampling.LANCZOS).crop((0, 7, 64, 71)))
            np.testing.assert_array_equal(image, expected.transpose(2, 0, 1))


def test_celeba_missing_images_folder_names_the_zip(celeba_root):
    root, _ = celeba_root
    (root / "celeba" / "img_align_celeba").rename(root / "celeba" / "elsewhere")
    with pytest.raises(DatasetMissingError) as err:
        load("celeba", "train", root)
    msg = str(err.value)
    assert "img_align_celeba/" in msg and "img_align_celeba.zip" in msg and "00d2c5bc6d35e252742224ab0c1e8fcb" in msg
    assert "list_eval_partition.txt" not in msg  # present and intact: not listed


# ----------------------------------------------------------------------------------------------------
# Tiny ImageNet: <root>/tiny-imagenet-200/{wnids.txt, train/<wnid>/images/*.JPEG, val/..., test/...}

TINY_WNIDS = ["n02000002", "n01000001"]  # wnids.txt is not sorted; class k is the k-th *sorted* id
TINY_COLOURS = {"n01000001": (200, 30, 30), "n02000002": (20, 40, 220)}


def _jpeg(path: Path, colour, mode: str = "RGB") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (64, 64), colour).convert(mode).save(path, quality=95)


@pytest.fixture
def tiny_root(tmp_path):
    base = tmp_path / TinyImageNet.base_folder
    base.mkdir()
    (base / "wnids.txt").write_text("\n".join(TINY_WNIDS) + "\n")
    for w in TINY_WNIDS:
        for k in range(3):
            _jpeg(base / "train" / w / "images" / f"{w}_{k}.JPEG", TINY_COLOURS[w])
    _jpeg(base / "train" / "n01000001" / "images" / "n01000001_3.JPEG", (128, 128, 128), mode="L")  # greyscale
    val = [("val_0.JPEG", "n02000002"), ("val_1.JPEG", "n01000001"), ("val_2.JPEG", "n02000002")]
    for f, w in val:
        _jpeg(base / "val" / "images" / f, TINY_COLOURS[w])
    (base / "val" / "val_annotations.txt").write_text("".join(f"{f}\t{w}\t0\t0\t63\t63\n" for f, w in val))
    _jpeg(base / "test" / "images" / "test_0.JPEG", (90, 90, 90))
    return tmp_path


def test_tiny_imagenet_labels_and_pixels(tiny_root):
    images, labels = load("tiny_imagenet", "train", tiny_root)
    assert images.shape == (7, 3, 64, 64) and images.dtype == np.uint8
    np.testing.assert_array_equal(labels, [0, 0, 0, 0, 1, 1, 1])  # n01000001 is class 0
    colour = np.array(TINY_COLOURS["n02000002"]).reshape(3, 1, 1)
    assert np.abs(images[-1].astype(int) - colour).max() <= 3  # JPEG of a flat colour: near exact
    grey = images[3]  # n01000001_3, the greyscale JPEG, comes back as three equal channels
    assert (grey[0] == grey[1]).all() and (grey[1] == grey[2]).all()

    _, val_labels = load("tiny_imagenet", "valid", tiny_root)
    np.testing.assert_array_equal(val_labels, [1, 0, 1])  # val_annotations.txt order
    test_images, test_labels = load("tiny_imagenet", "test", tiny_root)
    assert test_images.shape == (1, 3, 64, 64)
    np.testing.assert_array_equal(test_labels, [-1])


def test_tiny_imagenet_missing_class_folder(tiny_root):
    folder = tiny_root / TinyImageNet.base_folder / "train" / "n02000002" / "images"
    folder.rename(folder.parent / "moved")
    with pytest.raises(DatasetMissingError) as err:
        load("tiny_imagenet", "valid", tiny_root)
    msg = str(err.value)
    assert "n02000002" in msg and TinyImageNet.url in msg and TinyImageNet.md5 in msg


def test_tiny_imagenet_corrupt_kept_zip(tiny_root):
    (tiny_root / TinyImageNet.filename).write_bytes(b"not the archive")
    with pytest.raises(DatasetMissingError) as err:
        load("tiny_imagenet", "train", tiny_root)
    msg = str(err.value)
    assert TinyImageNet.filename in msg and TinyImageNet.md5 in msg and "corrupt" in msg


def test_tiny_imagenet_missing(tmp_path):
    with pytest.raises(DatasetMissingError) as err:
        load("tiny_imagenet", "train", tmp_path)
    msg = str(err.value)
    assert "wnids.txt" in msg and TinyImageNet.url in msg and TinyImageNet.md5 in msg
    assert f"ali download tiny_imagenet --root {tmp_path}" in msg


# ----------------------------------------------------------------------------------------------------
# digits: the smoke stand-in


def test_digits_shapes_splits_and_values():
    from sklearn.datasets import load_digits

    train, train_labels = load("digits", "train")
    test, test_labels = load("digits", "test")
    assert train.shape == (1497, 3, 32, 32) and test.shape == (300, 3, 32, 32)
    assert train.dtype == np.uint8 and train_labels.dtype == np.int64
    for images in (train, test):
        assert (images[:, 0] == images[:, 1]).all() and (images[:, 1] == images[:, 2]).all()
    assert set(train_labels.tolist()) == set(range(10)) == set(test_labels.tolist())
    target = load_digits().target
    np.testing.assert_array_equal(np.concatenate([train_labels, test_labels]), target)  # first 1,497 / last 300
    assert train.max() == 255 and train.min() == 0
    # Each 4x4 block of the upsampled image tracks the 8x8 original it came from.
    original = load_digits().images[:100] * 255 / 16
    pooled = torch.nn.functional.avg_pool2d(torch.from_numpy(train[:100, :1]).float(), 4).numpy()[:, 0]
    assert np.corrcoef(original.ravel(), pooled.ravel())[0, 1] > 0.97
    assert np.abs(original.mean() - pooled.mean()) < 2.0


def test_digits_are_deterministic():
    a, la = load("digits", "train")
    b, lb = load("digits", "train")
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)


# ----------------------------------------------------------------------------------------------------
# float conversion, registry, download


def test_to_float_range_and_exact_ends():
    x = np.array([0, 1, 128, 254, 255], dtype=np.uint8)
    y = to_float(x)
    assert y.dtype == np.float32 and y[0] == 0.0 and y[-1] == 1.0
    assert ((y >= 0) & (y <= 1)).all()
    np.testing.assert_allclose(y, x / 255.0, rtol=1e-7)
    t = to_float(torch.from_numpy(x))
    assert t.dtype == torch.float32 and t[-1].item() == 1.0
    np.testing.assert_array_equal(t.numpy(), y)
    images, _ = load("digits", "test")
    f = to_float(images)
    assert f.shape == images.shape and f.min() == 0.0 and f.max() == 1.0
    with pytest.raises(TypeError):
        to_float(y)  # already float: converting twice would shrink the range


def test_registry_and_argument_errors():
    assert set(DATASETS) == {"svhn", "cifar10", "celeba", "tiny_imagenet", "digits"}
    assert DATASETS["svhn"].splits == ("train", "test", "extra")
    assert DATASETS["svhn"].sizes["train"] == 73_257 and DATASETS["cifar10"].sizes["train"] == 50_000
    assert DATASETS["celeba"].image_size == 64 and DATASETS["digits"].image_size == 32
    assert all(d.channels == 3 for d in DATASETS.values())
    assert DATASETS["digits"].sizes == {"train": 1_497, "test": 300}
    assert split_size("svhn", "extra") == 531_131 and split_size("digits", "test") == len(load("digits", "test")[0])
    with pytest.raises(ValueError, match="split"):
        split_size("svhn", "valid")
    with pytest.raises(ValueError, match="unknown dataset"):
        load("mnist", "train")
    with pytest.raises(ValueError, match="split"):
        load("cifar10", "extra", "/nonexistent")
    with pytest.raises(ValueError, match="root"):
        load("svhn", "train")


def test_download_skips_verified_files_offline(svhn_root, cifar_root, tiny_root, no_network):
    """Present, intact files are not fetched again: download needs no network for them."""
    download("svhn", svhn_root[0])
    download("cifar10", cifar_root[0])
    download("tiny_imagenet", tiny_root)
    download("digits")
    assert no_network == []


def test_download_fetches_with_torchvision_from_the_published_url(tmp_path, no_network):
    with pytest.raises(urllib.error.URLError):
        download("svhn", tmp_path)
    assert no_network[0] == SVHN.split_list["train"][0]
    with pytest.raises(urllib.error.URLError):
        download("tiny_imagenet", tmp_path)
    assert no_network[-1] == TinyImageNet.url


def test_check_raises_before_torchvision(tmp_path, monkeypatch):
    """Our check runs first, so torchvision's generic RuntimeError is never what the user sees."""
    def boom(*args, **kwargs):
        raise AssertionError("torchvision class constructed before the files were checked")

    monkeypatch.setattr(SVHN, "__init__", boom)
    with pytest.raises(DatasetMissingError):
        load("svhn", "train", tmp_path)
