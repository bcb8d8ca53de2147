"""The engine boundary: Caffe's command-line tools train the same weights as pycaffe."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
from medft.engines import make_engine
from medft.engines.cli import CliEngine, DockerRunner
from medft.errors import MedftError
from medft.paths import run_dir
from medft.schema import net_weights, pb, read_net, read_prototxt
from medft.train import train

from tests.conftest import train_opts as _opts


def test_engine_names():
    assert make_engine("docker:medft/cpu").runner.image == "medft/cpu"
    with pytest.raises(MedftError, match="valid: pycaffe, cli, docker:<image>"):
        make_engine("tensorflow")


def test_docker_command_line(tmp_path):
    """The container invocation: same absolute paths mounted, tool on PATH, GPU passed through."""
    eng = CliEngine(DockerRunner("medft/gpu-2016"))
    eng._mounts = [tmp_path / "run", tmp_path / "data" / "train_lmdb"]
    argv = eng.train_command(tmp_path / "run" / "solver.prototxt", weights=tmp_path / "w.caffemodel", gpu=0)
    assert argv[:3] == ["docker", "run", "--rm"]
    assert ["--gpus", "device=0"] == argv[argv.index("--gpus"):argv.index("--gpus") + 2]
    for m in (tmp_path / "run", tmp_path / "data" / "train_lmdb"):
        assert f"{m.resolve()}:{m.resolve()}" in argv
    image_at = argv.index("medft/gpu-2016")
    assert argv[image_at + 1:] == ["caffe", "train", f"--solver={tmp_path / 'run' / 'solver.prototxt'}",
                                   f"--weights={tmp_path / 'w.caffemodel'}", "--gpu=0"]
    ex = eng.extract_command(Path("/r/best.caffemodel"), Path("/r/f.prototxt"), Path("/r/out"), 3, None,
                             mounts=[Path("/d/test_lmdb")])
    assert ex[ex.index("medft/gpu-2016") + 1:] == ["extract_features", "/r/best.caffemodel", "/r/f.prototxt",
                                                   "prob", "/r/out", "3", "lmdb", "CPU"]
    assert "/d/test_lmdb:/d/test_lmdb" in ex


@pytest.mark.caffe
def test_cli_engine_trains_the_same_weights_as_pycaffe(dataset, tmp_path, caffe):
    """Four epochs with dropout on (AlexNet's 0.5) and validation after each: the newest snapshots
    of in-process pycaffe and of one `caffe train` process are the same weights (float rounding).
    Validation must draw nothing from Caffe's random stream, or dropout masks would diverge."""
    runs = {}
    for engine in ("pycaffe", "cli"):
        runs[engine] = tmp_path / engine
        record = train(_opts(dataset, runs[engine], max_epochs=4, patience=10, engine=engine), log=lambda *_: None)
        assert record["status"] == "done"
    tv = read_prototxt(run_dir(runs["cli"], "polyp", "scratch") / "train_val.prototxt", pb.NetParameter())
    assert [la.dropout_param.dropout_ratio for la in tv.layer if la.type == "Dropout"] == [0.5, 0.5]
    logs = {}
    for engine, root in runs.items():
        with open(run_dir(root, "polyp", "scratch") / "log.csv") as f:
            logs[engine] = list(csv.DictReader(f))
    assert [r["iteration"] for r in logs["cli"]] == [r["iteration"] for r in logs["pycaffe"]] == ["2", "4", "6", "8"]
    for a, b in zip(logs["cli"], logs["pycaffe"]):
        assert float(a["val_auc"]) == pytest.approx(float(b["val_auc"]), abs=1e-6)
        assert float(a["loss"]) == pytest.approx(float(b["loss"]), rel=1e-5), "per-epoch training loss"
    newest = {e: read_net(run_dir(r, "polyp", "scratch") / "snapshots" / "scratch_iter_8.caffemodel")
              for e, r in runs.items()}
    wa, wb = net_weights(newest["cli"]), net_weights(newest["pycaffe"])
    assert set(wa) == set(wb)
    start = 0
    for name in wa:
        for x, y in zip(wa[name], wb[name]):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7, err_msg=name)
            start += 1
    assert start == 16  # 8 learnable layers x (weights, bias)


@pytest.mark.caffe
@pytest.mark.slow
def test_cli_engine_fine_tunes_from_the_pretrained_weights(dataset, tmp_path, caffe):
    """ft-conv3 (conv1, conv2 frozen) from a source model this test makes (the cimt net: its fc8_cimt
    is not the polyp net's fc8_polyp): `caffe train --weights` and pycaffe reach the same newest
    snapshot, whose frozen layers are the source's bit for bit, and both write the same weights.json,
    which records the verified copy. A tool that ignores --weights fails here."""
    import hashlib
    import json

    from medft.alexnet import deploy_net
    from medft.copy_check import caffemodel_blobs
    from medft.util.prototxt import to_text

    (tmp_path / "src.prototxt").write_text(to_text(deploy_net("cimt", "scratch")))
    source = tmp_path / "source.caffemodel"
    caffe.Net(str(tmp_path / "src.prototxt"), caffe.TEST).save(str(source))
    runs, reports = {}, {}
    for engine in ("pycaffe", "cli"):
        runs[engine] = run_dir(tmp_path / engine, "polyp", "ft-conv3")
        record = train(_opts(dataset, tmp_path / engine, config="ft-conv3", weights=str(source), max_epochs=1,
                             engine=engine), log=lambda *_: None)
        assert record["status"] == "done"
        reports[engine] = json.loads((runs[engine] / "weights.json").read_text())
    src = caffemodel_blobs(source)
    newest = {e: caffemodel_blobs(r / "snapshots" / "ft-conv3_iter_2.caffemodel") for e, r in runs.items()}
    for e in runs:
        for name in ("conv1", "conv2"):  # frozen by Table II: the source's values, exactly
            assert all(np.array_equal(a, b) for a, b in zip(newest[e][name], src[name])), f"{e}: {name} moved"
        for name in ("conv3", "fc6"):  # tuned: moved from the source
            assert not np.array_equal(newest[e][name][0], src[name][0]), f"{e}: {name} was not trained"
    for name in newest["cli"]:
        for x, y in zip(newest["cli"][name], newest["pycaffe"][name], strict=True):
            np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-7, err_msg=name)
    assert reports["cli"] == reports["pycaffe"]
    rep = reports["cli"]
    assert rep["copied"] == ["conv1", "conv2", "conv3", "conv4", "conv5", "fc6", "fc7"]
    assert rep["initialised"] == ["fc8_polyp"] and rep["ignored"] == ["fc8_cimt"]
    assert rep["source"] == str(source) and rep["description"]
    ver = rep["verified"]
    assert ver["frozen"] == ["conv1", "conv2"] and ver["iteration"] == 2
    from medft.schema import blob_to_array

    small = {la.name: [blob_to_array(b) for b in la.blobs]  # protobuf's own conversion, hashed here
             for la in read_net(source).layer if la.name.startswith("conv")}
    for name in rep["copied"]:
        assert ver["layers"][name]["start_equal"] is True, name
        if name.startswith("conv"):
            want = [hashlib.sha1(np.asarray(b, "<f4").tobytes()).hexdigest() for b in small[name]]
            assert ver["layers"][name]["source_sha1"] == want, name
    assert ver["layers"]["conv2"]["after_equal"] is True and "after_sha1" not in ver["layers"]["conv3"]
    assert f"Finetuning from {source.resolve()}" in (runs["cli"] / "caffe_train.log").read_text()


@pytest.mark.caffe
@pytest.mark.slow
@pytest.mark.parametrize("engine", ["pycaffe", "cli"])
def test_a_killed_run_resumes_to_the_weights_of_an_uninterrupted_one(engine, dataset, tmp_path):
    """SIGKILLed after each epoch's log row and rerun until done, and SIGKILLed five times at seeded random
    moments, a run ends with the snapshot bytes and log.csv of one that was never stopped. Dropout (0.5)
    draws from Caffe's random stream, and 8 patches in batches of 3 make each epoch end 1 record further
    into the LMDB, so both the random stream and the Data layer's position must continue across the
    restore."""
    import os
    import random
    import signal
    import subprocess
    import sys
    import time

    def argv(runs: Path) -> list[str]:
        return [sys.executable, "-m", "medft", "train", "polyp", "scratch", "--data", str(dataset.parent),
                "--runs", str(runs), "--batch", "3", "--test-batch", "3", "--max-epochs", "2", "--patience", "5",
                "--engine", engine]

    def medft_train(runs: Path, fault: str | None) -> subprocess.CompletedProcess:
        env = {k: v for k, v in os.environ.items() if k != "MEDFT_FAULT"}
        if fault:
            env["MEDFT_FAULT"] = fault
        return subprocess.run(argv(runs), capture_output=True, text=True, env=env)

    t0 = time.monotonic()
    r = medft_train(tmp_path / "whole", None)
    whole_s = time.monotonic() - t0
    assert r.returncode == 0, r.stderr[-2000:]
    # five SIGKILLs of the whole process group at seeded random moments (start-up, an iteration, a
    # snapshot, validation, the run's records), each followed by the same command
    rng, env = random.Random(f"kill-{engine}"), {k: v for k, v in os.environ.items() if k != "MEDFT_FAULT"}
    for _ in range(5):
        proc = subprocess.Popen(argv(tmp_path / "random"), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                env=env, start_new_session=True)
        try:
            proc.wait(timeout=rng.uniform(0.3, 1.0) * whole_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    r = medft_train(tmp_path / "random", None)
    assert r.returncode == 0, r.stderr[-2000:]
    random_run = run_dir(tmp_path / "random", "polyp", "scratch")
    kills = 0
    while (r := medft_train(tmp_path / "killed", "train:after-log")).returncode == -9:
        kills += 1
        assert kills <= 2, "the run does not progress between kills"
    assert r.returncode == 0 and kills == 2, r.stderr[-2000:]
    whole, killed = run_dir(tmp_path / "whole", "polyp", "scratch"), run_dir(tmp_path / "killed", "polyp", "scratch")
    assert (killed / "log.csv").read_text().splitlines()[1:] != []
    for name in ("epoch", "iteration", "loss", "val_auc"):
        with open(whole / "log.csv") as f, open(killed / "log.csv") as g:
            assert [row[name] for row in csv.DictReader(f)] == [row[name] for row in csv.DictReader(g)], name
    newest = "snapshots/scratch_iter_6.caffemodel"
    assert (killed / newest).read_bytes() == (whole / newest).read_bytes(), "resumed weights differ"
    assert (random_run / newest).read_bytes() == (whole / newest).read_bytes(), "weights differ after random kills"
    with open(whole / "log.csv") as f, open(random_run / "log.csv") as g:
        assert ([r["loss"] for r in csv.DictReader(f)] == [r["loss"] for r in csv.DictReader(g)])
