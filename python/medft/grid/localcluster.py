"""A one-node Slurm cluster on this machine, kept in one folder: to try the grid and to test it.

Debian's ``slurm-wlm`` and ``munge``, configured under ``folder``: ``munged`` on a socket and key of
its own, ``slurmctld`` and ``slurmd`` on free localhost ports, one CPU-only node with this
machine's cores, no accounting (``proctrack/linuxproc``, ``task/none``, ``select/cons_tres``). The
daemons run as root, as slurmd must to start jobs. Clients (``sbatch``, ``squeue``, ``medft grid``)
reach it through ``SLURM_CONF=<folder>/slurm.conf``.

    python3 -m medft.grid.localcluster --install-deps    # apt-get the packages (root), as `make test` does
    python3 -m medft.grid.localcluster --run /tmp/slurm  # start one; Ctrl-C stops it
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from medft.errors import MedftError

#: Debian packages of the cluster (measured on Debian 12: slurm-wlm 22.05, munge 0.5.15)
SLURM_DEBIAN_PACKAGES: tuple[str, ...] = ("slurm-wlm", "munge")
DAEMONS = {"munged": "/usr/sbin/munged", "slurmctld": "/usr/sbin/slurmctld", "slurmd": "/usr/sbin/slurmd"}


def unavailable_reason() -> str | None:
    """Why a local cluster cannot start here (not root, packages missing), or None if it can."""
    from medft.engines.build.debian import missing_debian_packages

    if os.geteuid() != 0:
        return "a local Slurm cluster runs slurmd as root; run as root"
    missing = missing_debian_packages(SLURM_DEBIAN_PACKAGES)
    if missing or not all(Path(p).is_file() for p in DAEMONS.values()):
        return (f"Debian packages {' '.join(missing or SLURM_DEBIAN_PACKAGES)} are not installed: "
                "`python3 -m medft.grid.localcluster --install-deps` (root) or `make test` installs them")
    return None


def install_deps() -> None:
    """apt-get install the cluster's packages that are missing (root only)."""
    from medft.engines.build.debian import install_debian_packages, missing_debian_packages

    missing = missing_debian_packages(SLURM_DEBIAN_PACKAGES)
    if missing:
        install_debian_packages(missing, purpose="The local Slurm cluster of the grid's test")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slurm_conf(folder: Path, host: str, cpus: int, memory_mb: int, ports: tuple[int, int]) -> str:
    """slurm.conf of a one-node cluster whose every file lies under ``folder``."""
    f = folder
    return "\n".join([
        "# one-node Slurm cluster written by medft.grid.localcluster",
        "ClusterName=medft", f"SlurmctldHost={host}(127.0.0.1)", f"SlurmctldPort={ports[0]}",
        f"SlurmdPort={ports[1]}", "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={f}/munge/munge.socket",
        f"StateSaveLocation={f}/state", f"SlurmdSpoolDir={f}/spool", f"SlurmctldPidFile={f}/slurmctld.pid",
        f"SlurmdPidFile={f}/slurmd.pid", f"SlurmctldLogFile={f}/slurmctld.log", f"SlurmdLogFile={f}/slurmd.log",
        f"TmpFS={f}/tmp", "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "MpiDefault=none",
        "SwitchType=switch/none", "SelectType=select/cons_tres", "SelectTypeParameters=CR_Core",
        "SchedulerType=sched/backfill", "SchedulerParameters=sched_interval=1,bf_interval=1",
        "JobAcctGatherType=jobacct_gather/none", "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none", "ReturnToService=2", "JobRequeue=1", "KillWait=5", "MinJobAge=600",
        "SlurmdTimeout=30", "InactiveLimit=0", "SlurmdParameters=config_overrides",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN",
        "PartitionName=main Nodes=ALL Default=YES MaxTime=INFINITE State=UP", ""])


@dataclass
class LocalCluster:
    """A started cluster: its folder, the daemons (started by it) and the client environment."""

    folder: Path
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        """os.environ plus SLURM_CONF: what a client of this cluster runs with."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *argv: str, check: bool = True) -> subprocess.CompletedProcess:
        """A Slurm client command (``squeue``, ``scancel`` ...) against this cluster."""
        return subprocess.run(list(argv), env=self.env, capture_output=True, text=True, check=check, timeout=60)

    def stop(self) -> None:
        """Cancel every job and let them end, stop the daemons this cluster started (SIGTERM, then
        SIGKILL) and wait for them."""
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            self.run("scancel", "--user", "root", check=False)
            end = time.monotonic() + 30
            while self.run("squeue", "-h", check=False).stdout.strip() and time.monotonic() < end:
                time.sleep(0.5)
        for name in ("slurmd", "slurmctld", "munged"):
            p = self.procs.get(name)
            if p is None or p.poll() is not None:
                continue
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()

    def log_tail(self, lines: int = 20) -> str:
        """The last lines of every daemon log, for an error message."""
        out = []
        for name in ("munged.log", "slurmctld.log", "slurmd.log"):
            path = self.folder / name
            if path.is_file():
                out += [f"--- {path}", *path.read_text(errors="replace").splitlines()[-lines:]]
        return "\n".join(out)


def start(folder: str | Path, cpus: int | None = None, memory_mb: int = 4096, timeout: float = 60) -> LocalCluster:
    """Start munged, slurmctld and slurmd under ``folder`` and wait until the node is idle."""
    reason = unavailable_reason()
    if reason:
        raise MedftError(reason)
    folder = Path(folder).resolve()
    if len(str(folder / "munge" / "munge.socket")) > 100:
        raise MedftError(f"{folder}: too long a path for munge's socket (a UNIX socket path has at most 107 bytes)")
    for sub in ("munge", "state", "spool", "tmp"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    os.chmod(folder / "munge", 0o700)
    key = folder / "munge" / "munge.key"
    key.write_bytes(os.urandom(1024))
    os.chmod(key, 0o400)
    host = socket.gethostname().split(".")[0]
    (folder / "slurm.conf").write_text(slurm_conf(folder, host, cpus or os.cpu_count() or 1, memory_mb,
                                                  (_free_port(), _free_port())))
    cluster = LocalCluster(folder)
    try:
        cluster.procs["munged"] = _daemon(folder, "munged", "--foreground", "--force",
                                          f"--socket={folder}/munge/munge.socket", f"--key-file={key}",
                                          f"--pid-file={folder}/munge/munged.pid",
                                          f"--log-file={folder}/munged.log", f"--seed-file={folder}/munge/seed")
        _wait(lambda: (folder / "munge" / "munge.socket").exists(), timeout, "munged's socket", cluster)
        cluster.procs["slurmctld"] = _daemon(folder, "slurmctld", "-D", "-i", "-f", str(cluster.conf))
        cluster.procs["slurmd"] = _daemon(folder, "slurmd", "-D", "-f", str(cluster.conf), "-N", host)
        _wait(lambda: _node_state(cluster) in ("idle", "mixed", "allocated"), timeout, "the node to be idle",
              cluster)
    except BaseException:
        cluster.stop()
        raise
    return cluster


def _daemon(folder: Path, name: str, *args: str) -> subprocess.Popen:
    out = open(folder / f"{name}.out", "ab")  # noqa: SIM115 (the daemon keeps it)
    return subprocess.Popen([DAEMONS[name], *args], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)


def _node_state(cluster: LocalCluster) -> str:
    r = cluster.run("sinfo", "-h", "-N", "-o", "%t", check=False)
    return r.stdout.strip().rstrip("*~#!%$@^-").lower() if r.returncode == 0 else ""


def _wait(ready, timeout: float, what: str, cluster: LocalCluster) -> None:
    end = time.monotonic() + timeout
    while not ready():
        dead = [n for n, p in cluster.procs.items() if p.poll() is not None]
        if dead or time.monotonic() > end:
            why = f"{', '.join(dead)} exited" if dead else f"no {what} after {timeout:.0f} s"
            raise MedftError(f"local Slurm cluster in {cluster.folder}: {why}\n{cluster.log_tail()}")
        time.sleep(0.2)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python3 -m medft.grid.localcluster", description=__doc__.split("\n")[0])
    ap.add_argument("--install-deps", action="store_true",
                    help=f"apt-get install {' '.join(SLURM_DEBIAN_PACKAGES)} where missing (root only)")
    ap.add_argument("--run", metavar="FOLDER", default=None,
                    help="start a cluster kept in FOLDER and keep it until Ctrl-C (or SIGTERM)")
    args = ap.parse_args(argv)
    try:
        if args.install_deps:
            install_deps()
        reason = unavailable_reason()
        if args.run and not reason:
            return _serve(Path(args.run))
    except MedftError as e:
        print(f"medft: {e}", file=sys.stderr)
        return 1
    print(f"local Slurm cluster: {reason or 'can start here'}")
    return 1 if args.run else 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def _serve(folder: Path) -> int:
    """Start a cluster in ``folder``, say how to reach it, stop it on Ctrl-C or SIGTERM."""
    signal.signal(signal.SIGTERM, _interrupt)
    cluster = start(folder)
    try:
        print(f"local Slurm cluster up; in another shell: export SLURM_CONF={cluster.conf}\nCtrl-C stops it.",
              flush=True)
        while all(p.poll() is None for p in cluster.procs.values()):
            time.sleep(1)
        print(f"a daemon exited:\n{cluster.log_tail()}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
