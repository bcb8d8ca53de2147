"""The Slurm executor: the grid's jobs as Slurm job arrays, submitted through submitit.

Per application, one array for its data sets' preps (one task at a time: they share the synthetic
input), one array for its cells and one job for its report; one job for the pretrained stand-in.
Each array waits (``afterany``) for the jobs its tasks need, so a failed cell never holds the
others and the report scores whatever finished. submitit asks Slurm for a signal before the time
limit and requeues a preempted or timed-out job; it runs again and resumes from its last snapshot.
Jobs run the submitting Python (the project's virtual environment) on a shared filesystem.
"""

from __future__ import annotations

import getpass
import shutil
import subprocess
from dataclasses import dataclass

from medft import paths
from medft.errors import MedftError
from medft.grid import records
from medft.grid.plan import KINDS, PREP, Job
from medft.grid.runner import JobRunner

#: squeue states of a job that has not ended
LIVE_STATES = {"PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED",
               "RESIZING", "SUSPENDED", "STAGE_OUT", "SIGNALING"}


@dataclass(frozen=True)
class SlurmResources:
    """What each job asks Slurm for. Prep and report jobs get no GPU."""

    partition: str | None = None  # None: the cluster's default partition
    gpus: int = 1  # per cell and pretrain job
    cpus: int = 8
    mem_gb: int = 32
    time_min: int = 720
    array_parallelism: int = 16  # cells of one application running at once
    sbatch: tuple[tuple[str, str], ...] = ()  # further sbatch options, e.g. (("account", "lab"), ("qos", "high"))

    def parameters(self, job: Job) -> dict:
        """submitit's SlurmExecutor parameters for ``job``."""
        gpus = self.gpus if job.wants_accelerator else 0
        return {"partition": self.partition, "gpus_per_node": gpus or None, "cpus_per_task": self.cpus,
                "mem": f"{self.mem_gb}G", "time": self.time_min, "stderr_to_stdout": True,
                "additional_parameters": dict(self.sbatch) or None}

    def describe(self, job: Job) -> str:
        gpus = self.gpus if job.wants_accelerator else 0
        extra = "".join(f" --{k}={v}" for k, v in self.sbatch)
        return (f"partition={self.partition or '(default)'} gpus={gpus} cpus={self.cpus} mem={self.mem_gb}G "
                f"time={self.time_min // 60}:{self.time_min % 60:02d}:00{extra}")


@dataclass
class Group:
    """Jobs submitted together: one Slurm array (or one job), with one dependency list."""

    label: str  # medft-<app>-<kind> or medft-pretrain: the Slurm job name
    jobs: list[Job]
    parallelism: int


def groups(jobs: list[Job], res: SlurmResources) -> list[Group]:
    """``jobs`` gathered into arrays: per application and kind, in the plan's order."""
    out: dict[tuple, Group] = {}
    for job in jobs:
        key = (job.kind, job.app)
        if key not in out:
            label = "medft-" + "-".join(p for p in (job.app, job.kind) if p)
            out[key] = Group(label, [], 1 if job.kind == PREP else res.array_parallelism)
        out[key].jobs.append(job)
    return sorted(out.values(), key=lambda g: KINDS.index(g.jobs[0].kind))


def dependency(group: Group, ids: dict[str, str]) -> str | None:
    """``afterany:<id>:...`` on the jobs ``group`` needs that are queued or submitted (``ids``)."""
    needed = sorted({ids[n] for j in group.jobs for n in j.needs if n in ids})
    return "afterany:" + ":".join(needed) if needed else None


def queue_states(ids: list[str] | None = None) -> dict[str, str]:
    """{job id: state} of this user's jobs that Slurm still lists (array tasks as ``<array>_<task>``)."""
    try:
        r = subprocess.run(["squeue", "-h", "-r", "-u", getpass.getuser(), "-o", "%i %T"], capture_output=True,
                           text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise MedftError(f"squeue: {e}") from None
    if r.returncode != 0:
        last = (r.stderr.strip().splitlines() or [f"exit {r.returncode}"])[-1]
        raise MedftError(last if last.startswith("squeue") else f"squeue: {last}")
    states = dict(line.split(None, 1) for line in r.stdout.splitlines() if line.strip())
    return {k: v.strip() for k, v in states.items() if ids is None or k in ids}


def live_jobs(names: list[str], runs: str) -> dict[str, str]:
    """{job name: Slurm id} of the jobs among ``names`` whose Slurm job is queued or running."""
    recorded = {n: r for n in names if (r := records.read(runs, n)).get("executor") == "slurm"
                and r.get("state") in ("submitted", "running", "stopped")}
    if not recorded:
        return {}
    states = queue_states()
    return {n: r["job_id"] for n, r in recorded.items() if states.get(r["job_id"]) in LIVE_STATES}


def submit(jobs: list[Job], res: SlurmResources, runs: str, live: dict[str, str], log=print) -> dict[str, str]:
    """Submit ``jobs`` (those not in ``live``) as arrays; record each; return {name: Slurm id}."""
    import submitit

    if shutil.which("sbatch") is None:
        raise MedftError("sbatch not found: --executor slurm submits from a machine of a Slurm cluster")
    ids = dict(live)
    executor = submitit.SlurmExecutor(folder=paths.slurm_dir(runs))
    for group in groups([j for j in jobs if j.name not in live], res):
        after = dependency(group, ids)
        executor.update_parameters(job_name=group.label, dependency=after, array_parallelism=group.parallelism,
                                   **res.parameters(group.jobs[0]))
        try:
            with executor.batch():
                submitted = [executor.submit(JobRunner(job, runs)) for job in group.jobs]
        except (submitit.core.utils.FailedJobError, subprocess.SubprocessError, OSError) as e:
            last = (str(e).strip().splitlines() or [type(e).__name__])[-1]
            done = f"; submitted before it: {', '.join(sorted(set(ids) - set(live)))}" if len(ids) > len(live) else ""
            raise MedftError(f"Slurm refused {group.label}: {last}{done}") from None
        for job, sj in zip(group.jobs, submitted):
            ids[job.name] = sj.job_id
            started = records.read(runs, job.name).get("job_id") == sj.job_id  # the job wrote first
            records.write(runs, job.name, kind=job.kind, executor="slurm", job_id=sj.job_id,
                          log=str(paths.job_log(runs, job.name)), slurm_log=str(sj.paths.stdout),
                          **({} if started else {"state": "submitted", "error": ""}))
        array = submitted[0].job_id.split("_")[0]
        log(f"medft grid: submitted {group.label}: Slurm job {array}"
            + (f", {len(group.jobs)} tasks" if len(group.jobs) > 1 else "") + (f", after {after}" if after else ""))
    return ids


def describe_plan(jobs: list[Job], res: SlurmResources, live: dict[str, str]) -> list[str]:
    """The lines `medft grid --dry-run` prints: each array, its resources and dependency, its tasks' commands."""
    lines = []
    names = {j.name: g.label for g in groups(jobs, res) for j in g.jobs}
    for name, job_id in live.items():
        lines.append(f"{name}: already queued as Slurm job {job_id}; not submitted again")
    for group in groups([j for j in jobs if j.name not in live], res):
        needs = sorted({names.get(n) or f"job {live[n]}" for j in group.jobs for n in j.needs
                        if n in names or n in live})
        at_once = min(group.parallelism, len(group.jobs))
        tasks = f"array of {len(group.jobs)}, {at_once} at a time" if len(group.jobs) > 1 else "one job"
        lines.append(f"{group.label} ({tasks}): {res.describe(group.jobs[0])}"
                     + (f" after {', '.join(needs)} (afterany)" if needs else ""))
        for job in group.jobs:
            lines.append(f"  {job.name}")
            lines += [f"    {c}" for c in job.commands()]
    return lines
