"""The `medft` command: help for every stage, one-line errors; `python -m medft` is the same command."""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from medft.cli import STAGES, build_parser


def medft(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "medft.cli", *args], capture_output=True, text=True)


def test_top_help_lists_every_stage():
    out = medft("--help").stdout
    for stage in ("gen", "prep", "train", "predict", "score", "report", "doctor"):
        assert stage in out


@pytest.mark.parametrize("stage", list(STAGES))
def test_every_stage_has_help(stage):
    r = medft(stage, "--help")
    assert r.returncode == 0 and "usage: medft" in r.stdout


def test_every_flag_has_help_text():
    parser = build_parser()
    sub = next(a for a in parser._actions if a.dest == "stage")
    assert list(sub.choices) == list(STAGES)
    for stage, p in sub.choices.items():
        for action in p._actions:
            if action.dest not in ("help",):
                assert action.help, f"medft {stage} {action.option_strings} has no help"


def test_unknown_app_is_one_line():
    r = medft("gen", "--app", "liver", "--out", "/nonexistent-dir")
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0
    assert "unknown application 'liver'; valid: polyp, pe, frames, cimt" in r.stderr


@pytest.mark.parametrize("argv,expect", [
    (["train", "polyp", "ft-conv9"], "unknown configuration 'ft-conv9'; valid: ft-conv1, ft-conv2"),
    (["train", "lung", "scratch"], "unknown application 'lung'; valid: polyp, pe, frames, cimt"),
    (["train", "polyp", "scratch", "--init", "uniform"], "unknown init 'uniform'; valid: gaussian, xavier, msra"),
    (["predict", "polyp", "scratch", "--engine", "tensorflow", "--data", "/nonexistent"], None),
    (["prep", "liver", "--synthetic", "--out", "/tmp/x"], "valid: polyp, pe, frames, cimt"),
])
def test_bad_names_are_one_line_errors(argv, expect):
    r = medft(*argv)
    assert r.returncode == 2, r.stderr
    assert r.stderr.strip().count("\n") == 0, r.stderr
    if expect:
        assert expect in r.stderr


def test_python_dash_m_medft_is_the_medft_command():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, "-m", "medft", "--help"], capture_output=True, text=True)
    assert r.returncode == 0 and all(stage in r.stdout for stage in ("train", "predict", "bench"))


#: what a bare `medft --version` or `medft --help` has no use for
HEAVY = ("matplotlib", "google.protobuf", "numpy", "caffe", "lmdb", "medft.commands")


def modules_after(*argv: str) -> set[str]:
    """The modules loaded once the real entry point has handled ``medft <argv>``, in a fresh interpreter."""
    code = ("import sys\nfrom medft.cli import main\nsys.argv = ['medft', *sys.argv[1:]]\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\nprint('\\n'.join(sys.modules), file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True)
    return set(r.stderr.split())


@pytest.mark.parametrize("flag", ["--version", "--help"])
def test_version_and_help_import_no_stage(flag):
    loaded = modules_after(flag)
    assert "medft.cli" in loaded  # the probe saw the command run
    heavy = sorted(m for m in loaded if m.split(".")[0] in HEAVY or m.startswith(HEAVY))
    assert not heavy, f"medft {flag} imported {heavy}"


def test_a_stage_imports_its_own_module_only():
    loaded = modules_after("doctor", "--help")
    assert "medft.commands.doctor" in loaded
    others = {f"medft.commands.{m}" for m in ("train", "demo", "grid", "report", "bench", "score")}
    assert not loaded & others, f"medft doctor --help imported {sorted(loaded & others)}"


@pytest.mark.parametrize("stage", list(STAGES))
def test_the_stage_table_says_what_each_command_module_says(stage):
    from medft.cli import command_module

    mod = command_module(stage)
    assert getattr(mod, "HELP", STAGES[stage]) == STAGES[stage]


def test_every_default_is_printed_once():
    """One help convention: the value is appended unless the help states the default in words; never twice,
    never a bare None, False or []."""
    from medft.cli import HelpFormatter

    sub = next(a for a in build_parser()._actions if a.dest == "stage")
    for stage, p in sub.choices.items():
        fmt = HelpFormatter(prog=f"medft {stage}")
        for action in p._actions:
            if not action.option_strings or not action.help:
                continue
            shown = fmt._expand_help(action)
            where = f"medft {stage} {'/'.join(action.option_strings)}: {shown!r}"
            assert "%(default" not in action.help, where  # the formatter appends the value, not the text
            assert shown.count("(default:") <= 1, where
            assert not any(f"(default: {v})" in shown for v in (None, False, [])), where
            if "default" not in action.help and action.default not in (None, False, [], "==SUPPRESS=="):
                assert shown.endswith(f"(default: {action.default})"), where


def test_grid_help_states_no_default_twice():
    out = medft("grid", "--help").stdout
    assert "(default: None)" not in out and "(default: [])" not in out
    entries = re.split(r"\n  (?=-)", out.split("options:", 1)[1])  # one per option
    assert len(entries) > 20
    doubled = [e for e in entries if e.count("(default:") > 1]
    assert not doubled, doubled
