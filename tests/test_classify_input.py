"""classify's input forms and `medft import`: folders, labels.csv with cases, MedMNIST .npz files
(grey and RGB, 28 and 224 pixels, MedMNIST's key names, shapes and dtypes), and bad inputs, each
refused with one line naming the file and the rule."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from medft.cli import main
from medft.datum_lmdb import read_lmdb
from medft.errors import MedftError
from medft.prep import classify
from medft.prep.build import PrepConfig, build
from PIL import Image


def png(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(img).save(path)


def image(rng, k: int, size: int = 32, rgb: bool = False) -> np.ndarray:
    """A grey (or RGB) image whose mean grey level is 60 + 60 k: class k is readable from the pixels."""
    img = np.clip(rng.normal(60 + 60 * k, 10, (size, size, 3) if rgb else (size, size)), 0, 255)
    return img.astype(np.uint8)


def folder_input(root: Path, per_class=(10, 10, 10), size: int = 24) -> Path:
    rng = np.random.default_rng(0)
    for k, n in enumerate(per_class):
        for i in range(n):
            png(root / "images" / f"class_{'abc'[k]}" / f"img{i}.png", image(rng, k, size))
    return root


def csv_input(root: Path, patients: int = 6, labels: tuple = ("0", "1", "2"), cases: bool = True) -> Path:
    rng = np.random.default_rng(1)
    rows = []
    for p in range(patients):
        for k, lab in enumerate(labels):
            name = f"scans/p{p}_{k}.png"
            png(root / name, image(rng, k, 40, rgb=True))
            rows.append({"image": name, "label": lab, **({"case": f"patient{p}"} if cases else {})})
    with open(root / "labels.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return root


def medmnist_npz(path: Path, size: int = 28, rgb: bool = False, n=(30, 6, 15), classes: int = 3,
                 labels_shape: tuple | None = None, images_shape: tuple | None = None) -> Path:
    """A file in MedMNIST's exact layout: uint8 images (N, H, W[, 3]), uint8 labels (N, 1)."""
    rng = np.random.default_rng(size + rgb)
    arrays = {}
    for split, m in zip(("train", "val", "test"), n):
        lab = np.arange(m) % classes
        arrays[f"{split}_images"] = (np.stack([image(rng, k % 3, size, rgb) for k in lab]) if images_shape is None
                                     else rng.integers(0, 256, (m, *images_shape), dtype=np.uint8))
        arrays[f"{split}_labels"] = (lab[:, None].astype(np.uint8) if labels_shape is None
                                     else rng.integers(0, 2, (m, *labels_shape), dtype=np.uint8))
    np.savez_compressed(path, **arrays)
    return path


def prep(inp: Path, out: Path, **options) -> dict:
    return build(PrepConfig(app="classify", input=str(inp), out=str(out), max_patches=60, progress=False,
                            options={"crops": 2, **options}))


def test_folder_form_classes_are_the_folder_names(tmp_path):
    rec = prep(folder_input(tmp_path / "in"), tmp_path / "out")
    assert rec["class_names"] == ["class_a", "class_b", "class_c"]
    assert rec["input_stats"]["cases_given"] is False
    # every patch's label is its folder's class: the classes differ by 60 grey levels
    for name in ("train", "val", "test"):
        for _, img, label in read_lmdb(Path(rec["dir"]) / f"{name}_lmdb"):
            assert abs(img.mean() - (60 + 60 * label)) < 15
            assert np.array_equal(img[0], img[1]) and np.array_equal(img[1], img[2])  # grey: 3 equal channels


def test_csv_form_splits_by_patient(tmp_path):
    rec = prep(csv_input(tmp_path / "in"), tmp_path / "out")
    assert rec["class_names"] == ["0", "1", "2"] and rec["input_stats"]["cases"] == 6
    split = json.loads((Path(rec["dir"]) / "splits.json").read_text())
    assert not set(split["test"]) & set(split["train"]) and not set(split["test"]) & set(split["val"])
    assert set(split["test"]) <= {f"patient{p}" for p in range(6)}
    lines = classify.verify(tmp_path / "in")
    assert "6 cases" in lines[0]


def test_mirror_flips_every_second_crop(tmp_path):
    ds = classify.load(folder_input(tmp_path / "in"), crops=2, mirror=True)
    specs = classify.plan(ds)
    assert [s.geom[3] for s in specs[:2]] == [False, True] and "mirror" in specs[1].aug
    assert not any(s.geom[3] for s in classify.plan(classify.load(tmp_path / "in", crops=2)))


def test_small_images_are_resized_to_256_large_ones_cropped_as_they_are():
    assert classify.work_size(28, 28) == (256, 256)
    assert classify.work_size(224, 224) == (256, 256)
    assert classify.work_size(100, 200) == (256, 512)
    assert classify.work_size(227, 300) == (227, 300)
    assert classify.work_size(600, 400) == (600, 400)


@pytest.mark.parametrize("size,rgb", [(28, False), (224, True)])
def test_medmnist_import_keeps_its_split_and_pixels(tmp_path, size, rgb, capsys):
    npz = medmnist_npz(tmp_path / "set.npz", size, rgb, n=(9, 3, 6))
    assert main(["import", "medmnist", str(npz), "--out", str(tmp_path / "in"), "--no-progress"]) == 0
    assert "next: medft prep classify" in capsys.readouterr().out
    with open(tmp_path / "in" / "split.csv", newline="") as f:
        split = {r["case"]: r["subset"] for r in csv.DictReader(f)}
    assert sum(v == "test" for v in split.values()) == 6 and sum(v == "train" for v in split.values()) == 12
    with open(tmp_path / "in" / "labels.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    src = np.load(npz)
    first_test = next(r for r in rows if r["image"].startswith("images/test/"))
    assert np.array_equal(np.asarray(Image.open(tmp_path / "in" / first_test["image"])), src["test_images"][0])
    assert int(first_test["label"]) == int(src["test_labels"][0, 0])
    record = json.loads((tmp_path / "in" / "import.json").read_text())
    import hashlib
    assert record["input_files"][0]["sha256"] == hashlib.sha256(npz.read_bytes()).hexdigest()
    assert record["channels"] == ("RGB" if rgb else "grey") and record["classes"] == 3
    # an existing --out is refused without --force
    assert main(["import", "medmnist", str(npz), "--out", str(tmp_path / "in"), "--no-progress"]) == 2
    assert "exists; pass --force" in capsys.readouterr().err


def test_folder_import_of_one_folder_per_class(tmp_path):
    rng = np.random.default_rng(3)
    for k in range(3):
        for i in range(3):
            png(tmp_path / "mine" / f"kind{k}" / f"{i}.png", image(rng, k))
    from medft.importers import importer

    rec = importer("folder").run(tmp_path / "mine", tmp_path / "in", progress=False)
    assert rec["classes"] == ["kind0", "kind1", "kind2"] and rec["images"] == 9
    assert (tmp_path / "in" / "images" / "kind2" / "1.png").is_file()
    assert classify.load(tmp_path / "in").class_names == ("kind0", "kind1", "kind2")


def one_line_error(argv: list[str], capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    return err


def _unreadable(root: Path) -> Path:
    folder_input(root)
    (root / "images" / "class_b" / "img1.png").write_bytes(b"not a png at all")
    return root


def _one_image(root: Path) -> Path:
    return folder_input(root, per_class=(10, 1, 10))


def _out_of_range(root: Path) -> Path:
    return csv_input(root, labels=("0", "1", "5"))


@pytest.mark.parametrize("make,expect", [
    (_one_image, "class 'class_b' has 1 image(s); every class needs at least 3"),
    (_unreadable, "img1.png: unreadable image"),
    (_out_of_range, "label 5 out of range: integer labels must be 0..2"),
])
def test_bad_inputs_are_one_line_errors(tmp_path, capsys, make, expect):
    root = make(tmp_path / "in")
    err = one_line_error(["prep", "classify", "--input", str(root), "--verify"], capsys)
    assert expect in err and "input rule classify-" in err


@pytest.mark.parametrize("kw,expect", [
    ({"labels_shape": (14,)}, "a multi-label set (as ChestMNIST)"),
    ({"images_shape": (28, 28, 28)}, "3-D volumes (N, D, H, W), as in OrganMNIST3D"),
    ({"classes": 5, "n": (30, 6, 15)}, None),
])
def test_medmnist_refusals(tmp_path, capsys, kw, expect):
    npz = medmnist_npz(tmp_path / "bad.npz", **kw)
    argv = ["import", "medmnist", str(npz), "--out", str(tmp_path / "in"), "--no-progress"]
    if expect is None:  # five classes 0..4 are fine
        assert main(argv) == 0
        return
    err = one_line_error(argv, capsys)
    assert str(npz) in err and expect in err
    assert not (tmp_path / "in").exists()


def test_medmnist_labels_out_of_range(tmp_path, capsys):
    npz = medmnist_npz(tmp_path / "gap.npz")
    arrays = dict(np.load(npz))
    arrays["test_labels"] = arrays["test_labels"].copy()
    arrays["test_labels"][0, 0] = 7  # classes 0, 1, 2 and 7: 3..6 have no image
    np.savez(npz, **arrays)
    err = one_line_error(["import", "medmnist", str(npz), "--out", str(tmp_path / "in")], capsys)
    assert "label 7 out of range" in err
    arrays["train_labels"] = arrays["train_labels"].astype(np.int64) - 1  # -1: out of range
    np.savez(npz, **arrays)
    assert "label -1, out of range" in one_line_error(["import", "medmnist", str(npz), "--out",
                                                       str(tmp_path / "in")], capsys)


def test_missing_keys_named(tmp_path, capsys):
    np.savez(tmp_path / "x.npz", images=np.zeros((2, 28, 28), np.uint8))
    err = one_line_error(["import", "medmnist", str(tmp_path / "x.npz"), "--out", str(tmp_path / "in")], capsys)
    assert "missing train_images, train_labels" in err


def test_classes_come_from_the_data_in_the_nets(tmp_path):
    from medft.alexnet import NetOptions, deploy_net
    from medft.apps import classes_of, get_app

    app = get_app("classify")
    with pytest.raises(MedftError, match="comes from the prepared data set"):
        deploy_net("classify", "ft-conv1")
    net = deploy_net("classify", "ft-conv1", options=NetOptions(num_classes=5))
    assert next(la for la in net.layer if la.name == "fc8_classify").inner_product_param.num_output == 5
    assert classes_of(app, {"class_names": ["a", "b", "c"]}) == ("a", "b", "c")
    with pytest.raises(MedftError, match="run `medft prep classify` first"):
        classes_of(app, {})


def test_synthetic_classes_have_no_global_shortcut():
    """A multinomial logistic regression on global image features (mean, spread, 16-bin histogram)
    stays near chance on the synthetic 3-class set (macro AUC <= 0.65), while the same features catch a
    global cue of 20 grey levels added to one class (that class's one-vs-rest AUC > 0.8): the test can fail."""
    from medft.prep.synthetic.shapes import CLASSES, synth_image
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(7)
    labels = np.arange(600) % 3
    images = np.stack([synth_image(rng, CLASSES[k]) for k in labels])

    def held_out_probs(imgs: np.ndarray) -> np.ndarray:
        flat = imgs.reshape(len(imgs), -1)
        hist = np.stack([np.histogram(f, bins=16, range=(0, 256))[0] / f.size for f in flat])
        x = np.c_[flat.mean(1), flat.std(1), hist]
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=5000)).fit(x[:400], labels[:400])
        return model.predict_proba(x[400:])

    assert roc_auc_score(labels[400:], held_out_probs(images), multi_class="ovr") <= 0.65
    cued = held_out_probs(images + 20.0 * (labels == 1)[:, None, None])
    assert roc_auc_score(labels[400:] == 1, cued[:, 1]) > 0.8
