"""`medft bench` (medft/bench/): the output files, and the smallest real runs.

No timing thresholds: only that every number is positive and finite and the table is well formed.
"""

from __future__ import annotations

import argparse
import csv
import json
import math

import pytest
from medft import bench
from medft.commands import bench as bench_cmd
from medft.errors import MedftError

TINY = bench.BenchOptions(lmdb_patches=20, batch=2, train_iters=3, time_iters=1, configs=("ft-fc8",),
                          n_boot=40, naive_boot=10, froc_candidates=400, froc_cases=12, roi=(1, 2),
                          stand_in_roi=(2, 3), report_roi=(4, 5), dense_batch=2)

def test_only_names_are_checked():
    assert bench.parse_only("cimt,lmdb") == ("lmdb", "cimt")  # run order
    assert bench.parse_only(None) == bench.DEFAULT_BENCHMARKS and "torch" not in bench.DEFAULT_BENCHMARKS
    with pytest.raises(MedftError, match="valid: lmdb, train, time, froc, cimt, torch"):
        bench.parse_only("lmdb,gpu")


def test_quick_keeps_explicit_sizes():
    q = bench.quick_options(bench.BenchOptions(batch=4))
    assert q.batch == 4 and q.lmdb_patches == bench.QUICK.lmdb_patches and q.roi == bench.QUICK.roi


def test_naive_bootstrap_equals_vectorised():
    r = bench.bench_froc(400, 12, n_boot=30, naive_boot=30, log=lambda m: None)
    assert r["same_sensitivities"] is True


def _check_rows(rows: list[dict]) -> None:
    assert rows
    for r in rows:
        assert set(r) == set(bench.ROW_COLUMNS)
        assert math.isfinite(r["medft"]) and r["medft"] > 0, r
        if r["reference"] is not None:
            assert math.isfinite(r["reference"]) and r["reference"] > 0, r
            assert math.isfinite(r["medft_speed"]) and r["medft_speed"] > 0, r


def _check_files(out, n_rows: int) -> dict:
    result = json.loads((out / "bench.json").read_text())
    assert {"created", "options", "machine", "results", "rows", "failed", "seconds", "load_average"} <= set(result)
    assert result["failed"] == []
    _check_rows(result["rows"])
    with open(out / "bench.csv") as f:
        table = list(csv.DictReader(f))
    assert len(table) == n_rows and list(table[0]) == list(bench.ROW_COLUMNS)
    md = (out / "bench.md").read_text()
    assert md.count("\n| ") == n_rows + 1  # header + rows (the separator line starts with "|-")
    return result


def test_froc_only_writes_json_md_csv(tmp_path):
    result = bench.run_benchmarks(TINY, ("froc",), work=tmp_path / "work", log=lambda m: None)
    bench.write_results(result, tmp_path / "out")
    r = _check_files(tmp_path / "out", 1)
    assert r["results"]["froc"]["n_boot"] == 40
    assert r["results"]["froc"]["naive_resamples_measured"] == 10


def _args(*argv: str) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    bench_cmd.add_arguments(p)
    return p.parse_args(list(argv))


def test_command_flags_and_quick():
    a = _args("--quick", "--batch", "4")
    o = bench_cmd.options_from_args(a)
    assert o.batch == 4 and o.train_iters == bench.QUICK.train_iters
    assert bench_cmd.options_from_args(_args()) == bench.BenchOptions()
    with pytest.raises(MedftError, match="unknown configuration"):
        bench_cmd.options_from_args(_args("--configs", "ft-fc9"))


@pytest.mark.caffe
def test_command_time_and_cimt_smallest(caffe, tmp_path, capsys):
    rc = bench_cmd.run(_args("--only", "time,cimt", "--out", str(tmp_path / "out"), "--batch", "2",
                             "--time-iters", "1", "--configs", "ft-fc8", "--roi", "1", "2",
                             "--stand-in-roi", "2", "3", "--dense-batch", "2"))
    assert rc == 0
    printed = capsys.readouterr().out
    assert "| benchmark | medft | reference |" in printed and "AlexNet forward-backward, ft-fc8" in printed
    r = _check_files(tmp_path / "out", 4)
    assert r["machine"]["blas"] and r["machine"]["blas_threads"] >= 1
    assert r["results"]["cimt"]["net_batch"] == 2


@pytest.mark.caffe
def test_lmdb_and_train_smallest(caffe, tmp_path):
    res = bench.bench_lmdb(20, tmp_path, log=lambda m: None)
    assert res["same_records"] is True
    _check_rows(res["rows"])
    res = bench.bench_train("ft-fc8", batch=2, iters=3, work=tmp_path, log=lambda m: None)
    assert res["timed_iterations"] == 1
    _check_rows(res["rows"])


def test_torch_alexnet_has_the_shapes_of_table_i():
    """PyTorch's stand-in for Caffe's AlexNet: the same parameter shapes, layer by layer, as the
    generated Caffe net (compared with medft.shapes, which follows Caffe's own shape rules)."""
    torch = pytest.importorskip("torch")
    from medft.alexnet import deploy_net
    from medft.shapes import net_shapes

    _, caffe_params = net_shapes(deploy_net("polyp", "scratch"), (1, 3, 227, 227))
    mods = [m for m in bench.torch_alexnet() if isinstance(m, (torch.nn.Conv2d, torch.nn.Linear))]
    assert [tuple(m.weight.shape) for m in mods] == [tuple(p[0]) for p in caffe_params.values()]
    assert tuple(bench.torch_alexnet()(torch.zeros(2, 3, 227, 227)).shape) == (2, 2)
