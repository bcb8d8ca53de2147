"""The one glog parser (medft/engines/caffe_log.py) on lines copied from real Caffe output."""

from __future__ import annotations

import pytest
from medft.engines.caffe_log import chunk_rate, parse_caffe_time, parse_train_log, train_rate
from medft.errors import MedftError

CAFFE_TIME_OUT = """\
I20261125 19:24:12.371680 18881 caffe.cpp:387] Iteration: 1 forward-backward time: 168 ms.
I20261125 19:24:12.625062 18881 caffe.cpp:401] Average Forward pass: 186.719 ms.
I20261125 19:24:12.625073 18881 caffe.cpp:403] Average Backward pass: 19.854 ms.
I20261125 19:24:12.625077 18881 caffe.cpp:405] Average Forward-Backward: 210.5 ms.
I20261125 19:24:12.625082 18881 caffe.cpp:407] Total Time: 421 ms.
"""

# the rc3 build medft compiles (no rate in parentheses)
CAFFE_TRAIN_LOG = """\
I20261125 23:59:58.000000 18854 solver.cpp:231] Iteration 0, loss = 0.708594
I20261125 23:59:58.000010 18854 solver.cpp:247]     Train net output #0: accuracy = 0.25
I20261125 23:59:58.000020 18854 solver.cpp:247]     Train net output #1: loss = 0.708594 (* 1 = 0.708594 loss)
I20261125 23:59:58.100000 18854 sgd_solver.cpp:106] Iteration 0, lr = 0.001
I20261125 23:59:59.000000 18854 solver.cpp:231] Iteration 1, loss = 0.676845
I20261125 23:59:59.000100 18854 sgd_solver.cpp:106] Iteration 1, lr = 0.001
I20261126 00:00:01.000000 18854 solver.cpp:231] Iteration 3, loss = 0.697836
I20261126 00:00:01.500000 18854 solver.cpp:446] Snapshotting to binary proto file /r/s_iter_4.caffemodel
I20261126 00:00:01.600000 1 sgd_solver.cpp:273] Snapshotting solver state to binary proto file /r/s_iter_4.solverstate
I20261126 00:00:02.000000 18854 solver.cpp:320] Iteration 4, loss = 0.722495
"""

# BVLC Caffe 1.0 (rate and time in parentheses)
BVLC_LINE = "I0412 10:00:00.000000  1234 solver.cpp:218] Iteration 20 (3.5 iter/s, 5.7s/20 iters), loss = 0.693147"


def test_parse_caffe_time():
    assert parse_caffe_time(CAFFE_TIME_OUT) == {"forward_ms": 186.719, "backward_ms": 19.854,
                                                "forward_backward_ms": 210.5}
    with pytest.raises(MedftError, match="Average"):
        parse_caffe_time("F1125 Check failed")


def test_train_rate_uses_timestamps_across_midnight():
    # iterations 1 -> 3 take 2 s: 2 iterations x batch 4 / 2 s = 4 images/s
    assert train_rate(CAFFE_TRAIN_LOG, batch=4, first=1, last=3) == pytest.approx((4.0, 2.0))
    old_glog = CAFFE_TRAIN_LOG.replace("I2026", "I")  # glog without the year
    assert train_rate(old_glog, batch=4, first=1, last=3) == pytest.approx((4.0, 2.0))
    with pytest.raises(MedftError, match="Iteration 2"):
        train_rate(CAFFE_TRAIN_LOG, batch=4, first=1, last=2)


def test_losses_outputs_and_snapshots():
    log = parse_train_log(CAFFE_TRAIN_LOG)
    assert log.losses == {0: 0.708594, 1: 0.676845, 3: 0.697836, 4: 0.722495}
    assert log.outputs[0] == {"accuracy": 0.25, "loss": 0.708594}
    assert log.snapshots == {4: "/r/s_iter_4"}


def test_both_iteration_formats_give_the_loss():
    assert parse_train_log(BVLC_LINE).losses == {20: 0.693147}
    assert parse_train_log("I0412 10:00:00.0 1 solver.cpp:1] Iteration 7, loss = nan").losses[7] != 0


def test_a_snapshot_counts_only_when_a_later_line_follows():
    lines = CAFFE_TRAIN_LOG.splitlines(keepends=True)
    upto = next(i for i, ln in enumerate(lines) if ".solverstate" in ln) + 1
    from medft.engines.caffe_log import TrainLog

    log = TrainLog()
    log.feed("".join(lines[:upto]))
    assert log.snapshots == {}  # the solverstate may still be being written
    log.feed("".join(lines[upto:]))
    assert log.snapshots == {4: "/r/s_iter_4"}
    log2 = TrainLog()
    log2.feed("".join(lines[:upto]))
    log2.finish()  # the process exited: its last snapshot is complete
    assert 4 in log2.snapshots


def test_chunk_rate_times_each_iteration_once_by_the_log_clock():
    """Iterations 0-3 of batch 10: from iteration 0's line (23:59:58) to iteration 3's (00:00:01),
    3 iterations in 3 s; iterations 4 and on (none logged after 4): from iteration 3 to 4, 1 s."""
    log = parse_train_log(CAFFE_TRAIN_LOG)
    assert chunk_rate(log, 10, 0, 4) == pytest.approx(30 / 3.0)
    assert chunk_rate(log, 10, 4, 5) == pytest.approx(10 / 1.0)
    assert chunk_rate(log, 10, 2, 4) == pytest.approx(20 / 2.0)  # from iteration 1's line to 3's
    assert chunk_rate(log, 10, 3, 5) is None  # iteration 2 has no loss line
    assert chunk_rate(parse_train_log(BVLC_LINE.replace("I0412 10:00:00.000000", "x")), 10, 0, 21) is None
