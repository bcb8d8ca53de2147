"""``medft``: one command, a subcommand per stage of the study.

Each stage is the module ``medft.commands.<stage>``; it is imported only when its stage runs, so
``medft --help`` and ``medft --version`` start without numpy, protobuf, matplotlib or Caffe.
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys
from collections.abc import Iterable

from medft import __version__
from medft.errors import MedftError

#: the stages, in the order of the study, each with the one line ``medft --help`` shows for it
STAGES: dict[str, str] = {
    "doctor": "which Caffe builds are installed (CPU, GPU), their tools, and the GPU: name, compute capability, "
              "CUDA, cuDNN",
    "gen": "write prototxt/ and solvers/ for every app x configuration (Tables I and II)",
    "synth": "write the synthetic input set of an application",
    "import": "convert a public data set, a MedMNIST file or an image folder into an input folder of `medft prep`",
    "candidates": "generate polyp candidates for frames that have none, and measure their recall",
    "prep": "build the LMDBs of an application (section VI)",
    "pretrain": "make the offline stand-in for the ImageNet AlexNet (or --download-bvlc the real one)",
    "train": "train one app x configuration with real Caffe; keep the best validation-AUC snapshot",
    "predict": "per-patch probabilities of a trained run, aggregated to candidates/frames",
    "score": "FROC/ROC/box-plot statistics with 95% CIs and pairwise comparisons",
    "report": "figures (PNG/PDF) and a Markdown report of an application",
    "cell": "one cell of the study: prep, pretrain, train, predict and score in turn (--dry-run prints them)",
    "grid": "run every missing cell of the study's grid, locally or on a Slurm cluster, then the report",
    "status": "a table of every cell of the grid: pending, running, done (best val AUC, epoch), failed (error)",
    "demo": "the main job: a small study on synthetic data, from data to report (about 10 min)",
    "bench": "time the LMDB writer, training, AlexNet, bootstrap FROC and dense CIMT beside Caffe's own tools",
}

#: stages whose module name differs (``import`` is a Python keyword)
MODULES: dict[str, str] = {"import": "importdata"}

DESCRIPTION = ("medft: full training or fine tuning? The study of Tajbakhsh et al. (IEEE TMI 2016) on real Caffe, "
               "one subcommand per stage; `medft STAGE --help` shows a stage's flags and defaults.")


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """The one convention for defaults in ``medft STAGE --help``: an option's default value is appended as
    ``(default: X)`` unless its help already states its default in words (it says "default": a computed or
    per-application value) or there is no value to state (None, an off switch, an empty list)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        none = action.default is None or action.default is False or action.default == []
        if "default" in text or none:
            return text
        return super()._get_help_string(action)


def command_module(stage: str):
    """The module ``medft.commands.<stage>``: its ``add_arguments`` and ``run``."""
    return importlib.import_module(f"medft.commands.{MODULES.get(stage, stage)}")


def build_parser(stages: Iterable[str] | None = None) -> argparse.ArgumentParser:
    """The ``medft`` parser; only the subcommands in ``stages`` (all when None) get their flags, which
    imports their modules. Every stage is listed either way."""
    loaded = set(STAGES if stages is None else stages)
    ap = argparse.ArgumentParser(
        prog="medft", description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--version", action="version", version=f"medft {__version__}")
    sub = ap.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for stage, line in STAGES.items():
        if stage not in loaded:
            sub.add_parser(stage, help=line.replace("%", "%%"))
            continue
        mod = command_module(stage)
        p = sub.add_parser(stage, help=line.replace("%", "%%"), description=(mod.__doc__ or line),
                           formatter_class=HelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return ap


def stage_of(argv: list[str]) -> str | None:
    """The stage ``argv`` names: its first word that is not an option (``medft`` has no option that takes
    a value), or None (``medft --help``, ``medft --version``)."""
    return next((a for a in argv if not a.startswith("-")), None)


def _terminate(signum, frame) -> None:
    """SIGTERM (a scheduler, `kill`) unwinds like Ctrl-C, so every ``finally`` closes its engine."""
    raise KeyboardInterrupt


def os_error_line(e: OSError) -> str:
    """``<reason>: <file>``; for a copy that filled the disk, the file being written (``filename2``),
    not the one read."""
    name = e.filename2 if e.errno == errno.ENOSPC and e.filename2 else e.filename
    return f"{e.strerror or e}" + (f": {name}" if name else "")


#: stages that load Caffe into this process: run in a supervised child, so a Caffe abort is one line
SUPERVISED = ("train", "predict")


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    args = build_parser([stage_of(words)]).parse_args(argv)
    import signal

    from medft import guard

    if argv is None and args.stage in SUPERVISED and not guard.supervised():
        return guard.supervise(args.stage, sys.argv[1:])
    signal.signal(signal.SIGTERM, _terminate)
    try:
        rc = int(args._run(args) or 0)
        sys.stdout.flush()  # here, not at exit, so a reader that has left is handled below
        return rc
    except BrokenPipeError:  # `medft doctor | head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except MedftError as e:
        print(f"medft {args.stage}: error: {e}", file=sys.stderr)
        from medft import checks

        if checks.ABANDONED:  # a diverged Caffe solver would abort when freed at exit
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(2)
        return 2
    except KeyboardInterrupt:
        print(f"medft {args.stage}: interrupted", file=sys.stderr)
        return 130
    except OSError as e:  # a full disk, a read-only folder, a vanished file: one line, not a traceback
        print(f"medft {args.stage}: error: {os_error_line(e)}", file=sys.stderr)
        return 2
    except Exception as e:
        if type(e).__module__.split(".")[0] == "lmdb":  # lmdb's own errors (disk full, map full)
            print(f"medft {args.stage}: error: LMDB: {e}", file=sys.stderr)
            return 2
        raise


if __name__ == "__main__":
    sys.exit(main())
