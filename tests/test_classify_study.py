"""The study on your own data, end to end on real Caffe: a MedMNIST-format file of 3 classes ->
`medft import medmnist` -> `medft prep classify` -> `medft train` (1 epoch, two initialisations)
-> `medft predict` -> `medft report`, which opens with the answer."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from medft.cli import main
from medft.prep.synthetic.shapes import CLASSES, synth_image
from medft.schema import pb, read_prototxt

pytestmark = [pytest.mark.caffe, pytest.mark.slow]


def medmnist_file(path: Path, n=(24, 6, 15)) -> Path:
    """MedMNIST's layout (uint8 (N, 28, 28) images, uint8 (N, 1) labels) of the synthetic shapes."""
    rng = np.random.default_rng(0)
    arrays = {}
    for split, m in zip(("train", "val", "test"), n):
        labels = np.arange(m) % 3
        big = [synth_image(rng, CLASSES[k]) for k in labels]
        arrays[f"{split}_images"] = np.stack([np.rint(b[::2, ::2][:28, :28]) for b in big]).astype(np.uint8)
        arrays[f"{split}_labels"] = labels[:, None].astype(np.uint8)
    np.savez_compressed(path, **arrays)
    return path


def test_medmnist_file_to_report(tmp_path, capsys):
    npz = medmnist_file(tmp_path / "shapesmnist.npz")
    inp, data, runs, out = tmp_path / "input", tmp_path / "data", tmp_path / "runs", tmp_path / "report"
    assert main(["import", "medmnist", str(npz), "--out", str(inp), "--no-progress"]) == 0
    assert main(["prep", "classify", "--input", str(inp), "--out", str(data), "--crops", "2", "--max-patches", "48",
                 "--no-progress"]) == 0
    prep = json.loads((data / "classify" / "prep.json").read_text())
    assert prep["class_names"] == ["0", "1", "2"]
    for init in ("gaussian", "xavier"):
        which = ["classify", "scratch", "--init", init, "--data", str(data), "--runs", str(runs)]
        assert main(["train", *which, "--batch", "12", "--test-batch", "10", "--max-epochs", "1",
                     "--patience", "1"]) == 0
        assert main(["predict", *which, "--batch", "10"]) == 0
    run = runs / "classify" / "scratch"
    net = read_prototxt(run / "deploy.prototxt", pb.NetParameter())
    assert next(la for la in net.layer if la.name == "fc8_classify").inner_product_param.num_output == 3
    with open(run / "predictions.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 15 and {"p0", "p1", "p2"} <= set(rows[0])  # MedMNIST's 15 test images
    assert {r["label"] for r in rows} == {"0", "1", "2"}
    assert main(["report", "classify", "--runs", str(runs), "--data", str(data), "--out", str(out),
                 "--n-boot", "200"]) == 0
    lines = (out / "report.md").read_text().splitlines()
    assert lines[4] == "## The answer" and "All training data" in lines[6] and "scratch" in lines[6]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["data"]["classes"] == 3 and "each image is its own case" in summary["data"]["cases"]
    assert [c["class"] for c in summary["configs"]["scratch"]["per_class"]] == ["0", "1", "2"]
