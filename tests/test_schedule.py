"""Table II, typed again by hand from the paper, against medft.schedule and the generated files."""

from __future__ import annotations

import pytest
from medft import schedule
from medft.errors import MedftError
from medft.schema import pb, read_prototxt

from tests.conftest import ROOT

# Table II of Tajbakhsh et al. 2016: mu, alpha conv1..fc8, gamma. Typed from the paper.
PAPER_TABLE_II = {
    "Fine-tuned AlexNet:conv1-fc8": "0.9 0.001 0.001 0.001 0.001 0.001 0.001 0.001 0.01 0.95",
    "Fine-tuned AlexNet:conv2-fc8": "0.9 0 0.001 0.001 0.001 0.001 0.001 0.001 0.01 0.95",
    "Fine-tuned AlexNet:conv3-fc8": "0.9 0 0 0.001 0.001 0.001 0.001 0.001 0.01 0.95",
    "Fine-tuned AlexNet:conv4-fc8": "0.9 0 0 0 0.001 0.001 0.001 0.001 0.01 0.95",
    "Fine-tuned AlexNet:conv5-fc8": "0.9 0 0 0 0 0.001 0.001 0.001 0.01 0.95",
    "Fine-tuned AlexNet:fc6-fc8": "0.9 0 0 0 0 0 0.001 0.001 0.01 0.95",
    "Fine-tuned AlexNet:fc7-fc8": "0.9 0 0 0 0 0 0 0.001 0.01 0.95",
    "Fine-tuned AlexNet:only fc8": "0.9 0 0 0 0 0 0 0 0.01 0.95",
    "AlexNet scratch": "0.9 0.001 0.001 0.001 0.001 0.001 0.001 0.001 0.001 0.95",
}
TOKENS = ["ft-conv1", "ft-conv2", "ft-conv3", "ft-conv4", "ft-conv5", "ft-fc6", "ft-fc7", "ft-fc8", "scratch"]


def paper_row(token: str) -> tuple[float, list[float], float]:
    name = schedule.get_config(token).paper_name
    values = [float(v) for v in PAPER_TABLE_II[name].split()]
    return values[0], values[1:9], values[9]


def test_tokens_and_rows_match_paper():
    assert list(schedule.CONFIG_NAMES) == TOKENS
    assert {schedule.get_config(t).paper_name for t in TOKENS} == set(PAPER_TABLE_II)
    for token in TOKENS:
        mu, alphas, gamma = paper_row(token)
        assert schedule.MOMENTUM == mu
        assert schedule.GAMMA == gamma
        assert list(schedule.get_config(token).alphas) == alphas


def test_base_lr_and_bias_factor():
    assert schedule.BASE_LR == 0.001
    assert schedule.BIAS_LR_FACTOR == 2


def test_derived_properties():
    c = schedule.get_config("ft-conv3")
    assert c.frozen_layers == ("conv1", "conv2")
    assert c.tuned_layers == ("conv3", "conv4", "conv5", "fc6", "fc7", "fc8")
    assert c.short_label() == "FT:conv3-fc8"
    assert schedule.get_config("ft-fc8").short_label() == "FT:only fc8"
    assert not schedule.get_config("scratch").pretrained


@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("app", ["polyp", "cimt"])
def test_generated_multipliers_read_back(app, token):
    """lr_mult x base_lr of every learnable layer in the committed files equals Table II."""
    mu, alphas, gamma = paper_row(token)
    for form in ("train_val", "deploy"):
        net = read_prototxt(ROOT / f"prototxt/{app}/{token}/{form}.prototxt", pb.NetParameter())
        learnable = [layer for layer in net.layer if len(layer.param)]
        assert [layer.name for layer in learnable] == [*schedule.LAYERS[:7], f"fc8_{app}"]
        for layer, alpha in zip(learnable, alphas):
            w, b = layer.param
            assert w.lr_mult * 0.001 == pytest.approx(alpha, rel=1e-6), layer.name
            assert b.lr_mult == 2 * w.lr_mult, layer.name
            assert (w.decay_mult, b.decay_mult) == (1, 0), layer.name
    solver = read_prototxt(ROOT / f"solvers/{app}/{token}/solver.prototxt", pb.SolverParameter())
    assert solver.base_lr == pytest.approx(0.001)
    assert solver.momentum == pytest.approx(mu)
    assert solver.gamma == pytest.approx(gamma)
    assert solver.lr_policy == "step"


@pytest.mark.parametrize("bad,kind", [("ft-conv9", "configuration"), ("imagenet", "configuration")])
def test_unknown_config_lists_valid(bad, kind):
    with pytest.raises(MedftError) as e:
        schedule.get_config(bad)
    msg = str(e.value)
    assert kind in msg and bad in msg and "ft-conv1" in msg and "scratch" in msg and "\n" not in msg


def test_unknown_init_and_variant():
    with pytest.raises(MedftError, match="gaussian, xavier, msra"):
        schedule.check_init("uniform")
    assert schedule.variant_name("scratch", "xavier") == "scratch-xavier"
    assert schedule.variant_name("ft-conv1") == "ft-conv1"
    with pytest.raises(MedftError):
        schedule.variant_name("ft-conv1", "msra")
