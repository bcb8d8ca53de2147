"""The study's grid: every cell (application x configuration x init x training fraction) as a job.

    cells.py      which cells the study has, and which of them a run folder shows done
    plan.py       the jobs for what is missing: prep per data set, pretrain, a job a cell, report per app
    runner.py     one job: its medft commands in turn, output to its log, state to its record
    records.py    the job records (<runs>/grid/<job>.json): state, scheduler id, log, first error line
    local.py      the local executor: the jobs one after the other on this machine
    slurm.py      the Slurm executor (submitit): job arrays with dependencies, requeue on preemption
    status.py     the table of every cell, from run folders, records and the scheduler
    orchestrate.py  `medft grid`: plan, then run or submit
    localcluster.py a one-node Slurm cluster in a folder, to try and test the Slurm executor
"""
