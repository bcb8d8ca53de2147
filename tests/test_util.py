"""medft.util: the small shared utilities."""

from __future__ import annotations


def test_one_duration_format():
    from medft.util.progress import duration, eta

    assert duration(59.6) == "1:00" and duration(3725) == "1:02:05" and duration(float("inf")) == "?"
    assert eta(25, 100, 10) == "0:30" and eta(0, 100, 10) == "?"


def test_prototxt_text_keeps_float32_values_short():
    from medft.schema import pb
    from medft.util.prototxt import to_text

    assert to_text(pb.SolverParameter(base_lr=0.001, gamma=0.95)).split() == ["base_lr:", "0.001", "gamma:", "0.95"]


def test_atomic_writes_keep_the_umask_mode(tmp_path):
    import os

    from medft.util.atomic import write_text_atomic

    old = os.umask(0o022)
    try:
        write_text_atomic(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o644
