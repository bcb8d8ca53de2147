"""``medft``: one command, a subcommand per stage of the study.

    medft doctor     which Caffe builds are installed (CPU, GPU) and what the GPU is
    medft gen        write prototxt/ and solvers/ (Tables I and II)
    medft synth      write the synthetic input set of an application
    medft import     a public data set, MedMNIST or your own image folder as an input folder
    medft candidates polyp candidates for frames that have none, and their recall
    medft prep       build the LMDBs of an application (section VI)
    medft pretrain   make the offline stand-in for the ImageNet AlexNet
    medft train      train one cell of the study on real Caffe
    medft predict    per-patch probabilities of a trained net
    medft score      FROC/ROC/box-plot statistics with 95% CIs
    medft report     figures and a Markdown report
    medft grid       every missing cell of the study, locally or on Slurm, then the report
    medft status     a table of every cell of the grid
    medft demo       the main job: a small study on synthetic data, data to report
    medft bench      timings beside their Caffe references
"""

from __future__ import annotations

import argparse
import errno
import importlib
import os
import sys

from medft import __version__
from medft.errors import MedftError

#: the stages, in the order of the study; each is the module medft.commands.<stage>
STAGES: tuple[str, ...] = ("doctor", "gen", "synth", "import", "candidates", "prep",
                           "pretrain", "train", "predict", "score", "report",
                           "grid", "status", "demo", "bench")

#: stages whose module name differs (``import`` is a Python keyword)
MODULES: dict[str, str] = {"import": "importdata"}


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="medft", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--version", action="version", version=f"medft {__version__}")
    sub = ap.add_subparsers(dest="stage", metavar="STAGE", required=True)
    for stage in STAGES:
        mod = importlib.import_module(f"medft.commands.{MODULES.get(stage, stage)}")
        p = sub.add_parser(stage, help=mod.HELP.replace("%", "%%"), description=(mod.__doc__ or mod.HELP),
                           formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return ap


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
    args = build_parser().parse_args(argv)
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
