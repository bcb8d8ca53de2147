  SnapshotSolverState(model_filename);
}
