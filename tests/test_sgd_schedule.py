"""Table II as real Caffe applies it: for every ft-* configuration, over real SGD steps, frozen
layers stay bit-identical and each tuned layer moves with learning rate 0.001 x 0.95^k after
k epochs (fc8: 10x that).

The effective rate of a layer is read from Caffe's own update. With the whole (tiny) LMDB in
one batch and the same dropout seed, the gradient g of the step is known; with momentum set to 0
in this test (momentum is checked in the generated files), Caffe's SGD (h = mu h + rate (g + wd w);
w -= h) gives rate = dw / (g + wd w), read on the elements whose change is well above float32
rounding of w.
"""

from __future__ import annotations

import numpy as np
import pytest
from google.protobuf import text_format
from medft.alexnet import NetOptions, train_val_net
from medft.schedule import CONFIG_NAMES, GAMMA, get_config
from medft.solver import WEIGHT_DECAY, SolverOptions, solver
from medft.util.atomic import write_text_atomic

pytestmark = pytest.mark.caffe

FT_CONFIGS = [c for c in CONFIG_NAMES if c.startswith("ft-")]


@pytest.fixture(scope="module")
def lmdb4(tmp_path_factory):
    from tests.conftest import write_tiny_lmdb

    d = tmp_path_factory.mktemp("lmdb4")
    return write_tiny_lmdb(d / "train", 4, seed=5), write_tiny_lmdb(d / "val", 2, seed=6)


def _solver(caffe, config, lmdb4, tmp_path):
    opts = NetOptions(train_source=str(lmdb4[0]), val_source=str(lmdb4[1]), train_batch=4, test_batch=2)
    net = tmp_path / f"{config}.prototxt"
    write_text_atomic(net, text_format.MessageToString(train_val_net("polyp", config, options=opts)))
    # 4 patches in batches of 4: one iteration per epoch, so iteration k starts epoch k+1
    sp = solver(SolverOptions(n_train=4, n_val=2, train_batch=4, test_batch=2, net=str(net),
                              snapshot_prefix=str(tmp_path / "s"), max_epochs=10))
    assert sp.stepsize == 1
    sp.momentum = 0.0  # isolate the learning rate (see the module docstring)
    path = tmp_path / f"{config}_solver.prototxt"
    write_text_atomic(path, text_format.MessageToString(sp))
    return caffe.SGDSolver(str(path))


def _params(net):
    return {k: [b.data.copy() for b in v] for k, v in net.params.items()}


def _measured_rates(caffe, s, seed):
    """One SGD step; return (rate per layer and blob, weights before, weights after)."""
    for blobs in s.net.params.values():  # after step(), diffs hold Caffe's last update; backward adds
        for b in blobs:
            b.diff[...] = 0
    caffe.set_random_seed(seed)
    s.net.forward()
    s.net.backward()
    grads = {k: [b.diff.copy() for b in v] for k, v in s.net.params.items()}
    w0 = _params(s.net)
    caffe.set_random_seed(seed)  # the same dropout masks inside step()
    s.step(1)
    w1 = _params(s.net)
    rates = {}
    for name in w0:
        rates[name] = []
        for i, decay in enumerate((1.0, 0.0)):  # decay_mult: weights 1, biases 0
            num = w0[name][i] - w1[name][i]
            den = grads[name][i] + WEIGHT_DECAY * decay * w0[name][i]
            if not num.any():
                rates[name].append(0.0)
                continue
            ok = (np.abs(num) > 1e-4 * np.abs(w0[name][i])) & (np.abs(den) > 0)
            rates[name].append(float(np.median(num[ok] / den[ok])) if ok.any() else None)
    return rates, w0, w1


@pytest.mark.parametrize("config", FT_CONFIGS)
def test_frozen_layers_identical_tuned_layers_at_table_two_rates(caffe, config, lmdb4, tmp_path):
    cfg = get_config(config)
    s = _solver(caffe, config, lmdb4, tmp_path)
    start = _params(s.net)
    for k in range(2):  # epochs completed before this step: rate = 0.001 * 0.95^k
        rates, w0, w1 = _measured_rates(caffe, s, seed=100 + k)
        for name, (rw, rb) in rates.items():
            layer = "fc8" if name.startswith("fc8") else name
            want = 0.001 * GAMMA**k * cfg.lr_mult(layer)
            if want == 0:
                assert rw == rb == 0.0, f"{config} {name}"
            else:
                assert rw == pytest.approx(want, rel=2e-3), f"{config} {name} weights at epoch {k}"
                if rb is not None:  # None: every bias change was below float32 resolution
                    assert rb == pytest.approx(2 * want, rel=2e-3), f"{config} {name} bias at epoch {k}"
    end = _params(s.net)
    for name in start:
        layer = "fc8" if name.startswith("fc8") else name
        same = all(np.array_equal(a, b) for a, b in zip(start[name], end[name]))
        assert same == (layer in cfg.frozen_layers), f"{config} {name}"
    assert get_config(config).lr_mult("fc8") == 10
